#!/bin/bash
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d). Creates MissionHub's two databases, owned by
# $POSTGRES_USER:
#   missionhub           -> DATABASE_URL          (missions, ledger, beat schedule)
#   missionhub_accounts  -> ACCOUNTS_DATABASE_URL (users, auth, sessions, admin, JWT blacklist)
# Safe to run again: a database that already exists is left alone.
set -e

for db in missionhub missionhub_accounts; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<-EOSQL
	SELECT format('CREATE DATABASE %I OWNER %I', '$db', current_user)
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
	EOSQL
done
