"""A persistent database connection that drops between requests (a restart, a failover, a
proxy) is replaced, with CONN_HEALTH_CHECKS off as shipped: the request that finds it dead
fails, and the next one is served on a new connection. Each dead connection fails one
request: here the default's, then the accounts' (the list reads default first).

Requests go through Django's WSGI handler in this thread, so they keep this thread's
connections between them and fire request_started / request_finished, as under gunicorn
(Django's test client disconnects the connection handling from those signals)."""

import io
import wsgiref.util

import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections

from tests.missions.factories import make_mission
from tests.utils import ALL_DATABASES, requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)]


def _get(path: str) -> int:
    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": "GET",
        "wsgi.input": io.BytesIO(),
        "HTTP_ACCEPT": "application/json",
    }
    wsgiref.util.setup_testing_defaults(environ)
    statuses = []
    response = WSGIHandler()(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        b"".join(response)
    finally:
        response.close()  # request_finished: Django closes what is unusable or too old
    return int(statuses[0].split()[0])


def _drop_connections() -> None:
    """Terminate this thread's backends from another connection, as a database restart would."""
    pids = [connections[alias].connection.info.backend_pid for alias in ALL_DATABASES]
    settings = connections["default"].settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"], dbname="postgres", autocommit=True
    ) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def health_checks(request):
    """Sets CONN_HEALTH_CHECKS on both connections (as settings.py would) for one test."""
    enabled = request.param
    saved = {alias: connections[alias].settings_dict["CONN_HEALTH_CHECKS"] for alias in ALL_DATABASES}
    for alias in ALL_DATABASES:
        connections[alias].close()
        connections[alias].settings_dict["CONN_HEALTH_CHECKS"] = enabled
    yield enabled
    for alias, value in saved.items():
        connections[alias].close()
        connections[alias].settings_dict["CONN_HEALTH_CHECKS"] = value


class TestDroppedConnection:
    def test_connections_are_kept_between_requests_and_not_checked_as_shipped(self):
        make_mission()  # the list reads both databases
        assert _get("/api/missions") == 200
        pids = [connections[alias].connection.info.backend_pid for alias in ALL_DATABASES]

        assert _get("/api/missions") == 200

        assert [connections[alias].connection.info.backend_pid for alias in ALL_DATABASES] == pids
        assert [connections[alias].health_check_enabled for alias in ALL_DATABASES] == [False, False]

    @pytest.mark.parametrize(
        ("health_checks", "after_the_drop"),
        [(False, [500, 500, 200]), (True, [200, 200, 200])],
        indirect=["health_checks"],
        ids=["without-health-checks", "with-health-checks"],
    )
    def test_a_dropped_connection_fails_one_request_and_is_replaced(self, health_checks, after_the_drop):
        make_mission()
        assert _get("/api/missions") == 200

        _drop_connections()
        statuses = [_get("/api/missions") for _ in range(3)]

        assert statuses == after_the_drop
