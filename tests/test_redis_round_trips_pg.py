"""Redis round trips and commands per request, where Redis is the cache (PostgreSQL + Redis
runs, as CI's). Round trips are counted in the client (each send to the server is one, a
pipeline included); commands by the server itself, with MONITOR on the cache's database."""

import secrets
import threading
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = [
    both_databases,
    pytest.mark.skipif(
        settings.CACHES["default"]["BACKEND"] != "missionhub.cache.RedisCache",
        reason="needs Redis as the cache (REDIS_URL); CI runs it on PostgreSQL and Redis",
    ),
]


@contextmanager
def redis_traffic(monkeypatch):
    """Yields a dict filled, on exit, with the round trips the cache's client made and the
    commands the server ran on the cache's database meanwhile."""
    db = cache.redis().connection_pool.connection_kwargs["db"]
    seen: dict = {"round_trips": 0, "commands": []}
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        if self.db == db:
            seen["round_trips"] += 1
        return original(self, command, check_health)

    sentinel = f"end-{secrets.token_hex(4)}"
    monitor_client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    monitor_client.ping()  # connected (and its SELECT sent) before the watch begins
    ready = threading.Event()

    def watch():
        with redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).monitor() as monitor:
            ready.set()
            while True:
                command = monitor.next_command()
                if sentinel in command["command"]:
                    return
                if command["db"] == db:
                    seen["commands"].append(command["command"].split()[0].upper())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    try:
        yield seen
    finally:
        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", original)
        monitor_client.echo(sentinel)
        watcher.join(10)
        monitor_client.close()


@pytest.fixture
def viewer_client():
    viewer = UserFactory()
    fund(viewer, 100_000)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(viewer)}")
    assert client.get("/api/wallet").status_code == 200  # the JWT's user, cached
    return client


class TestRedisPerRequest:
    def test_a_pledge_is_two_round_trips_its_user_and_its_throttles(self, viewer_client, monkeypatch):
        mission = make_mission()

        with redis_traffic(monkeypatch) as seen:
            response = viewer_client.post(f"/api/missions/{mission.pk}/pledges", {"amount": 100}, format="json")

        assert response.status_code == 201
        assert seen["round_trips"] == 2
        # The user and its generation in one MGET; the user and money budgets in one pipeline.
        assert sorted(seen["commands"]) == sorted(["MGET", "INCRBY", "EXPIRE", "INCRBY", "EXPIRE"])

    def test_a_signed_in_read_is_two_round_trips(self, viewer_client, monkeypatch):
        with redis_traffic(monkeypatch) as seen:
            response = viewer_client.get("/api/wallet")

        assert response.status_code == 200
        assert seen["round_trips"] == 2
        assert sorted(seen["commands"]) == sorted(["MGET", "INCRBY", "EXPIRE"])

    def test_an_anonymous_read_is_one_round_trip_for_both_its_throttles(self, db, monkeypatch):
        with redis_traffic(monkeypatch) as seen:
            response = APIClient().get("/api/missions")

        assert response.status_code == 200
        assert seen["round_trips"] == 1
        assert sorted(seen["commands"]) == sorted(["INCRBY", "EXPIRE", "INCRBY", "EXPIRE"])
