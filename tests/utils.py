import threading
from collections.abc import Callable
from contextlib import contextmanager

import pytest
from django.db import connections

from ledger import sqlite_guards

ALL_DATABASES = ["default", "accounts"]

# Marks every test in a module as using both databases.
both_databases = pytest.mark.django_db(databases=ALL_DATABASES)


def on_postgresql() -> bool:
    return connections["default"].vendor == "postgresql"


requires_postgresql = pytest.mark.skipif(
    not on_postgresql(),
    reason="needs PostgreSQL (row locks, triggers, SKIP LOCKED); CI runs it with DATABASE_URL set",
)


@contextmanager
def sqlite_guards_lifted(connection):
    """SQLite's `pgtrigger.ignore()`: drop the ledger's guard triggers, put them back after.

    For the suite's flush and for tests that corrupt history on purpose; a no-op elsewhere.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        lifted = [(name, sql) for name, sql in cursor.fetchall() if name in sqlite_guards.TRIGGER_NAMES]
        for name, _sql in lifted:
            cursor.execute(f"DROP TRIGGER {name}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _name, sql in lifted:
                cursor.execute(sql)


def query_counts(request) -> dict[str, int]:
    """How many statements `request()` runs on each database; its response must be a 200."""
    from django.test.utils import CaptureQueriesContext

    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in ALL_DATABASES}
    for context in contexts.values():
        context.__enter__()
    try:
        response = request()
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)
    assert response.status_code == 200, response.content[:300]
    return {alias: len(context) for alias, context in contexts.items()}


def run_together(jobs: list[Callable[[], object]]) -> list[object]:
    """Run each job in its own thread, all released at once; returns results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def worker(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = job()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
