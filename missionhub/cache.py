"""Django's Redis cache, with one redis client per connection pool instead of one per call.

Django's RedisCacheClient builds a `redis.Redis` for every cache call (`get_client`), which
costs about as much as the round trip itself on a busy request path. A client is only a
façade over its pool, and Django keeps one cache object per thread, so one client per pool
is safe to reuse. `RedisCache.redis()` hands that client to the few callers that need more
than the cache API in one round trip (the throttles' pipeline).
"""

import redis
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key=None, *, write=False) -> redis.Redis:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """settings.CACHES' backend where REDIS_URL is set."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient

    def redis(self) -> redis.Redis:
        """The client of the server keys are written to, for pipelines. Keys passed to it
        raw must be made with `make_and_validate_key`, as the cache API does."""
        return self._cache.get_client(write=True)
