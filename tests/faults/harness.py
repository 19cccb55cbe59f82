"""The parts the fault tests break, and the tools that break and watch them.

- RedisServer: a broker of the test's own, a `redis-server` process on a free port that
  can be stopped (its queues are lost: nothing is saved) and started again on that port.
- celery_broker: points this process's Celery app (the web side, which enqueues on
  commit) at that broker.
- PgOperator: an autocommit connection of its own that watches the test database's
  backends (pg_stat_activity, pg_locks), holds a table lock to stop a transaction at a
  known statement, and kills a backend (pg_terminate_backend).
- Mailbox: what tests.faults.mail.RecordingBackend delivered and refused.
"""

import json
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connections

from bench.stack import free_port
from missionhub.celery import app as celery_app
from missions.verify import CHECKS as MISSION_CHECKS

requires_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server program (a broker the test can stop)"
)


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_settled(mission_id: int, *, timeout: float, what: str) -> None:
    """Until the mission has been settled (by whichever worker or sweep), or fail naming `what`."""
    from missions.models import Mission

    wait_for(
        lambda: Mission.objects.filter(pk=mission_id, settled_at__isnull=False).exists(), timeout=timeout, what=what
    )


class RedisServer:
    """A redis-server of the test's own; `stop` and `start` again keep its port."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.stops = 0
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        log = (self.directory / f"redis-{self.port}.log").open("a")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: self._answers(client), timeout=15, what=f"redis-server on port {self.port}")
        self.starts += 1

    def _answers(self, client) -> bool:
        import redis

        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(self.directory / f'redis-{self.port}.log').read_text()}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def freeze(self) -> None:
        """SIGSTOP: the server stops answering, its connections stay open (a partition, a
        hung host)."""
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.process.terminate()
        self.process.wait(timeout=15)
        self.stops += 1


def _forget_broker_connections() -> None:
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """This process enqueues to `url` inside the block (Celery's CELERY_BROKER_URL from the
    environment outranks `broker_url`, so the read and write URLs are the ones set)."""
    conf = celery_app.conf
    saved = {key: conf.get(key) for key in ("broker_read_url", "broker_write_url", "broker_transport_options")}
    _forget_broker_connections()
    conf.update(
        broker_read_url=url,
        broker_write_url=url,
        broker_transport_options=django_settings.MISSIONHUB_REDIS_BROKER_OPTIONS,
    )
    try:
        yield
    finally:
        _forget_broker_connections()
        conf.update(saved)


class PgOperator:
    """An operator at the database's console: its own autocommit connection."""

    def __init__(self, alias: str = "default"):
        import psycopg

        settings = connections[alias].settings_dict
        self.kwargs = {
            "host": settings["HOST"] or "127.0.0.1",
            "port": settings["PORT"] or 5432,
            "user": settings["USER"],
            "password": settings["PASSWORD"] or None,
            "dbname": settings["NAME"],
        }
        self.dbname = settings["NAME"]
        self.connection = psycopg.connect(autocommit=True, **self.kwargs)
        self.terminated = 0

    def close(self) -> None:
        self.connection.close()

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def waiting_backend(self, *, statement_prefix: str) -> dict | None:
        """The backend waiting on a lock in a statement starting with `statement_prefix`
        (its pid, and whether its transaction has written anything), or None."""
        rows = self._rows(
            "SELECT pid, backend_xid IS NOT NULL FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND starts_with(query, %s)",
            (self.dbname, statement_prefix),
        )
        assert len(rows) <= 1, rows
        return {"pid": rows[0][0], "has_written": rows[0][1]} if rows else None

    def holds_write_lock(self, pid: int, table: str) -> bool:
        """The backend `pid` has written to `table` in its open transaction."""
        return bool(
            self._rows(
                "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = %s AND c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.granted",
                (pid, table),
            )
        )

    def backend_alive(self, pid: int) -> bool:
        return bool(self._rows("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)))

    def terminate(self, pid: int) -> None:
        ((done,),) = self._rows("SELECT pg_terminate_backend(%s)", (pid,))
        assert done, f"backend {pid} was not terminated"
        self.terminated += 1

    @contextmanager
    def table_locked(self, table: str) -> Iterator[None]:
        """Hold `LOCK TABLE ... IN SHARE MODE` on `table` from another connection: reads go
        on, and the first INSERT into it waits (after whatever its transaction wrote before)
        until the block ends."""
        import psycopg

        with psycopg.connect(**self.kwargs) as holder:
            holder.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
            try:
                yield
            finally:
                holder.rollback()


class Mailbox:
    """The mailbox of tests.faults.mail.RecordingBackend, and its "provider is down" flag."""

    def __init__(self, directory: Path):
        self.path = directory / "mailbox.jsonl"
        self.down_flag = directory / "email-provider-down"
        self.path.touch()

    def env(self, *, delay: float = 0) -> dict[str, str]:
        return {
            "EMAIL_BACKEND": "tests.faults.mail.RecordingBackend",
            "MISSIONHUB_FAULTS_MAILBOX": str(self.path),
            "MISSIONHUB_FAULTS_MAIL_DOWN": str(self.down_flag),
            "MISSIONHUB_FAULTS_MAIL_DELAY": str(delay),
        }

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def delivered(self) -> Counter:
        """How many times each (recipient, subject) was delivered."""
        return Counter(
            (r["to"][0], r["subject"]) for r in self.records() if r["outcome"] == "delivered"
        )  # fmt: skip

    def refused(self) -> int:
        return sum(r["outcome"] == "refused" for r in self.records())


# Celery's own log line for a task that returned: "Task <name>[<id>] succeeded in 0.1s: <result>".
_SUCCEEDED = re.compile(r"Task (?P<name>[\w.]+)\[[\w-]+\] succeeded in [\d.e-]+s: (?P<result>.*)$", re.MULTILINE)


def task_results(*logs: Path, name: str) -> list[str]:
    """What each run of task `name` returned, as the workers logged it."""
    return [m["result"] for log in logs for m in _SUCCEEDED.finditer(log.read_text()) if m["name"] == name]


def assert_sound() -> str:
    """`manage.py ledger_verify` passes: the ledger's checks and the missions' own."""
    out = StringIO()
    try:
        call_command("ledger_verify", stdout=out, no_color=True)
    except CommandError as exc:
        raise AssertionError(f"{exc}\n{out.getvalue()}") from exc
    report = out.getvalue()
    assert "ledger is sound" in report, report
    for name in MISSION_CHECKS:
        assert f"ok   {name}" in report, report
    return report
