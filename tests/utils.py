import pytest
from django.db import connections

ALL_DATABASES = ["default", "accounts"]

# Marks every test in a module as using both databases.
both_databases = pytest.mark.django_db(databases=ALL_DATABASES)


def on_postgresql() -> bool:
    return connections["default"].vendor == "postgresql"


requires_postgresql = pytest.mark.skipif(
    not on_postgresql(),
    reason="needs PostgreSQL (row locks, triggers, SKIP LOCKED); CI runs it with DATABASE_URL set",
)
