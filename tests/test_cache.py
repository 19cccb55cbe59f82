from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

from missionhub.cache import RedisCache


class TestRedisCache:
    def test_reuses_one_client_per_pool(self):
        cache = RedisCache("redis://127.0.0.1:6379/0", {})

        clients = {id(cache._cache.get_client(write=write)) for write in (True, False, True)}

        assert clients == {id(cache.redis())}

    def test_djangos_own_builds_a_client_per_call(self):
        """What the subclass is for: Django 5.2 builds a new client for every cache call."""
        client = DjangoRedisCacheClient(["redis://127.0.0.1:6379/0"])

        assert client.get_client() is not client.get_client()
