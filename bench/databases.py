"""Fresh, throw-away databases for the benchmark, and the refusal to touch any other.

SQLite: the two files must live in MISSIONHUB_VAR_DIR and that folder's name must
contain "bench" (var/bench, var/bench-pg); its *.sqlite3* files are deleted first.
PostgreSQL: both database names must end with `_bench`; they are dropped and created
again through the `postgres` maintenance database. Then both are migrated.
"""

from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from psycopg import sql

ALIASES = ("default", "accounts")
SQLITE = "django.db.backends.sqlite3"
POSTGRESQL = "django.db.backends.postgresql"
PG_SUFFIX = "_bench"
MAINTENANCE_DB = "postgres"


class UnsafeDatabase(Exception):
    """The configured databases might hold someone's data: the benchmark will not run."""


def _engine(alias: str) -> str:
    return settings.DATABASES[alias]["ENGINE"]


def _check_sqlite(alias: str, var_dir: Path) -> None:
    path = Path(settings.DATABASES[alias]["NAME"]).resolve()
    if "bench" not in var_dir.name:
        raise UnsafeDatabase(f"MISSIONHUB_VAR_DIR={var_dir} is not a bench folder (its name must contain 'bench').")
    if path.parent != var_dir:
        raise UnsafeDatabase(f"the {alias!r} SQLite file {path} is not in MISSIONHUB_VAR_DIR={var_dir}.")


def _check_postgresql(alias: str) -> None:
    name = settings.DATABASES[alias]["NAME"]
    if not name.endswith(PG_SUFFIX):
        raise UnsafeDatabase(f"the {alias!r} database {name!r} does not end with {PG_SUFFIX!r}.")


def check_safe() -> str:
    """Raise UnsafeDatabase unless both databases are bench databases; return the engine."""
    engines = {_engine(alias) for alias in ALIASES}
    if len(engines) != 1:
        raise UnsafeDatabase("set both DATABASE_URL and ACCOUNTS_DATABASE_URL, or neither.")
    engine = engines.pop()
    var_dir = Path(settings.VAR_DIR).resolve()
    for alias in ALIASES:
        if engine == SQLITE:
            _check_sqlite(alias, var_dir)
        elif engine == POSTGRESQL:
            _check_postgresql(alias)
        else:
            raise UnsafeDatabase(f"unsupported database engine {engine}.")
    return engine


def _remove_sqlite_files() -> None:
    for path in Path(settings.VAR_DIR).glob("*.sqlite3*"):
        path.unlink()


def _maintenance_connection(alias: str) -> psycopg.Connection:
    config = settings.DATABASES[alias]
    return psycopg.connect(
        dbname=MAINTENANCE_DB,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        autocommit=True,
    )


def _recreate_postgresql(alias: str) -> None:
    name = sql.Identifier(settings.DATABASES[alias]["NAME"])
    with _maintenance_connection(alias) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def reset(engine: str) -> None:
    """Empty both databases and migrate them. Call before anything opens a connection."""
    connections.close_all()
    if engine == SQLITE:
        _remove_sqlite_files()
    else:
        for alias in ALIASES:
            _recreate_postgresql(alias)
    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)


def _server_version(alias: str) -> str:
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if connection.vendor == "sqlite" else "show server_version")
        return str(cursor.fetchone()[0]).split()[0]


def _name(alias: str) -> str:
    name = settings.DATABASES[alias]["NAME"]
    return str(Path(name).relative_to(settings.BASE_DIR)) if _engine(alias) == SQLITE else name


def describe() -> str:
    """e.g. "postgresql 15.20 (default: missionhub_bench, accounts: missionhub_accounts_bench)"."""
    versions = " / ".join(sorted({_server_version(alias) for alias in ALIASES}))
    names = ", ".join(f"{alias}: {_name(alias)}" for alias in ALIASES)
    return f"{connections['default'].vendor} {versions} ({names})"
