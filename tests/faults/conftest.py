"""Fixtures of the fault tests: each test gets its own broker (a redis-server on a free
port), its own worker and beat processes on it, its own mailbox, and a one-line summary of
what it did and what it broke, printed at the end of the run."""

import json

import pytest

from missionhub.celery import app as celery_app
from tests.faults.harness import Mailbox, PgOperator, RedisServer, celery_broker
from tests.worker import BeatProcess, CeleryProcess, WorkerProcess, process_env

_SUMMARIES: list[str] = []


@pytest.fixture
def broker(tmp_path) -> RedisServer:
    """A broker of this test's own; this process enqueues to it."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        with celery_broker(server.url):
            yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(tmp_path) -> Mailbox:
    return Mailbox(tmp_path)


class Processes:
    """Starts workers and beats on the test's broker; whatever still runs at the end of
    the test is killed (before the database is flushed)."""

    def __init__(self, broker: RedisServer, mailbox: Mailbox):
        self.broker = broker
        self.mailbox = mailbox
        self.started: list[CeleryProcess] = []

    def env(self, **extra: str) -> dict[str, str]:
        return process_env(
            CELERY_BROKER_URL=self.broker.url,
            # The web side reads task results (the readiness ping) from its own backend.
            CELERY_RESULT_BACKEND=celery_app.conf.result_backend,
            **self.mailbox.env(delay=float(extra.pop("MAIL_DELAY", 0))),
            **extra,
        )

    def worker(self, *, ready: bool = True, **env: str) -> WorkerProcess:
        """A worker (`ready`: once it has answered a ping through the broker)."""
        worker = WorkerProcess(self.env(**env))
        self.started.append(worker)
        if ready:
            worker.wait_until_ready()
        return worker

    def beat(self, **env: str) -> BeatProcess:
        beat = BeatProcess(self.env(**env))
        self.started.append(beat)
        return beat

    def kill_all(self) -> None:
        for process in self.started:
            if process.process.poll() is None:
                process.process.kill()
            process.process.wait(timeout=20)
            process._log_file.close()


@pytest.fixture
def processes(broker, mailbox) -> Processes:
    started = Processes(broker, mailbox)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def pg_operator() -> PgOperator:
    operator = PgOperator()
    try:
        yield operator
    finally:
        operator.close()


class FaultReport:
    """One line per test: what it did, which faults it injected, what was lost."""

    def __init__(self, test: str):
        self.test = test
        self.figures: dict[str, object] = {}

    def record(self, *, operations: int, faults: int, lost: int, **figures: object) -> None:
        self.figures = {"operations": operations, "faults": faults, "lost": lost, **figures}

    def line(self) -> str:
        return f"{self.test}: " + " ".join(f"{k}={v}" for k, v in self.figures.items())


@pytest.fixture
def fault_report(request, record_property) -> FaultReport:
    report = FaultReport(request.node.name)
    yield report
    if report.figures:
        record_property("faults", json.dumps(report.figures))
        _SUMMARIES.append(report.line())


def pytest_terminal_summary(terminalreporter):
    if _SUMMARIES:
        terminalreporter.section("fault tests")
        for line in _SUMMARIES:
            terminalreporter.write_line(line)
