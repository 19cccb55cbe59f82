import pgtrigger
import pytest
from django.core.cache import cache
from django.core.management.commands import flush
from django.db import DEFAULT_DB_ALIAS, connections
from rest_framework.test import APIClient

from ledger.verify import ledger_verify
from missionhub.celery import app as celery_app
from tests.accounts.factories import UserFactory
from tests.utils import sqlite_guards_lifted

# Transactional tests end with `flush`, which TRUNCATEs (PostgreSQL) or DELETEs (SQLite)
# every table; the ledger's append-only triggers refuse that on both, as they should
# anywhere but here. On SQLite the triggers are dropped for the flush and put back.
_flush_handle = flush.Command.handle


def _flush_ignoring_ledger_triggers(self, *args, **options):
    with pgtrigger.ignore(), sqlite_guards_lifted(connections[options.get("database", DEFAULT_DB_ALIAS)]):
        return _flush_handle(self, *args, **options)


flush.Command.handle = _flush_ignoring_ledger_triggers


@pytest.fixture(autouse=True)
def _ledger_stays_sound(request):
    """After every test that touches the database, every invariant of the ledger holds.

    Tests that break the ledger on purpose are marked `ledger_unsound`.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None or "ledger_unsound" in request.keywords:
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up first, so torn down after this check
    yield
    problems = {name: found for name, found in ledger_verify().items() if found}
    assert not problems, f"ledger_verify after the test: {problems}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and other cached state never leak from one test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _user_cache_on(settings):
    """The JWT user cache (accounts.user_cache) on, as production has it with REDIS_URL, on
    every run: on SQLite the test and the requests it makes share one local-memory cache."""
    settings.MISSIONHUB_USER_CACHE_SECONDS = 300


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings, request):
    """Argon2 is deliberately slow; tests that are not about hashing use a fast hasher."""
    if "argon2" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class TaskQueue:
    """Stands in for the broker in tests that run no worker: records what was sent and
    runs it in this process on demand, with on-commit callbacks executed."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def send_task(self, name, args=None, kwargs=None, **options):
        self.sent.append((name, dict(kwargs or {})))

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    def run_all(self) -> None:
        from django.test import TestCase

        celery_app.loader.import_default_modules()  # the autodiscovered tasks modules
        while self.sent:
            name, kwargs = self.sent.pop(0)
            with TestCase.captureOnCommitCallbacks(using="default", execute=True):
                celery_app.tasks[name].apply(kwargs=kwargs, throw=True)


@pytest.fixture(autouse=True)
def task_queue(request, monkeypatch):
    """Tests marked `worker` use the real broker; the others get a TaskQueue."""
    if "worker" in request.keywords:
        yield None
        return
    queue = TaskQueue()
    monkeypatch.setattr(celery_app, "send_task", queue.send_task)
    yield queue


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def streamer(db):
    return UserFactory(is_streamer=True)


@pytest.fixture
def auth_client(user):
    """An API client signed in as `user` with a real access token."""
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """One real worker for the session, reading the test databases."""
    from tests.worker import WorkerProcess, process_env

    with django_db_blocker.unblock():
        worker = WorkerProcess(process_env())
        try:
            worker.wait_until_ready()
            yield worker
        finally:
            worker.stop()
