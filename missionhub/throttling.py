"""Cache-backed throttles whose rates are read at request time from settings.

DRF's own classes copy the rates when they are imported; reading them per request lets
the environment and tests set them.

Each throttle is a counter per key over a fixed window that the key's first request opens
(`rate` requests, then refusals until the window's `duration` has passed). DRF's
SimpleRateThrottle keeps a list of timestamps instead, read and written back whole, two
round trips per class per request. Here the classes a view lists together are one
`throttle_group`, and on Redis the group is one pipeline: INCR and EXPIRE NX per key
(Redis 7), so a request costs one round trip whatever it is throttled by; only a refused
one asks the key's remaining time (`Retry-After`). Without Redis (the embedded default's
local memory) the same counters live in the cache under a process lock. A refused request
counts too; a window never lengthens, so at most `rate` requests pass per window.

Sign-in has one mechanism for every way in: the API's token view lists LOGIN_THROTTLES,
and the sign-in pages (`/login`, `/admin/login/`) ask `login_throttle_wait`, which runs
the same classes on the same cache keys, so the doors share one count.
"""

import hashlib
import math
import threading
import time
from collections.abc import Mapping, Sequence

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle, UserRateThrottle

from accounts.usernames import username_canonical


class _SettingsRate:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class CounterThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle (rate, scope, cache key) counted as described above."""

    # Not DRF's `throttle_%(scope)s_%(ident)s`: those keys hold DRF's timestamp lists.
    cache_format = "throttle:%(scope)s:%(ident)s"
    key: str | None = None
    count = 0
    remaining: float | None = None  # seconds left in the window, when already known

    def allow_request(self, request, view):
        return not _throttles_hit([self], request, view)

    def throttle_refused(self) -> bool:
        return self.key is not None and self.count > self.num_requests

    def wait(self):
        """Seconds until the window that refused this request closes."""
        if self.key is None:
            return None
        if self.remaining is None:
            self.remaining = _window_remaining(self.key, self.duration)
        return self.remaining


def throttle_group(*classes: type[CounterThrottle]) -> type[BaseThrottle]:
    """One throttle class that counts all of `classes` in one round trip; it refuses when
    any of them does, and waits for the longest of those that refused."""

    class ThrottleGroup(BaseThrottle):
        members = classes
        refused: Sequence[CounterThrottle] = ()

        def allow_request(self, request, view):
            self.refused = _throttles_hit([cls() for cls in classes], request, view)
            return not self.refused

        def wait(self):
            waits = [wait for wait in (throttle.wait() for throttle in self.refused) if wait is not None]
            return max(waits, default=None)

    ThrottleGroup.__name__ = ThrottleGroup.__qualname__ = "+".join(cls.__name__ for cls in classes)
    return ThrottleGroup


def _throttles_hit(throttles: list[CounterThrottle], request, view) -> list[CounterThrottle]:
    """Count this request against every throttle that applies to it; those that refuse it."""
    counted = []
    for throttle in throttles:
        throttle.key = None if throttle.rate is None else throttle.get_cache_key(request, view)
        if throttle.key is not None:
            counted.append(throttle)
    if not counted:
        return []
    redis_of = getattr(cache, "redis", None)
    if redis_of is not None:
        pipeline = redis_of().pipeline(transaction=False)
        for throttle in counted:
            key = cache.make_and_validate_key(throttle.key)
            pipeline.incr(key)
            pipeline.expire(key, throttle.duration, nx=True)
        for throttle, count in zip(counted, pipeline.execute()[0::2], strict=True):
            throttle.count = count
    else:
        for throttle in counted:
            throttle.count, throttle.remaining = _local_hit(throttle.key, throttle.duration)
    return [throttle for throttle in counted if throttle.throttle_refused()]


# The local-memory cache is one per process, and so is this lock: increments stay exact
# across threads. (Another cache without Redis would count as DRF does: get, then set.)
_local_lock = threading.Lock()


def _local_hit(key: str, duration: int) -> tuple[int, float]:
    with _local_lock:
        now = time.time()
        count, closes_at = cache.get(key, (0, 0.0))
        if closes_at <= now:
            count, closes_at = 0, now + duration
        count += 1
        cache.set(key, (count, closes_at), timeout=max(1, math.ceil(closes_at - now)))
    return count, closes_at - now


def _window_remaining(key: str, duration: int) -> float:
    redis_of = getattr(cache, "redis", None)
    if redis_of is None:
        _, closes_at = cache.get(key, (0, 0.0))
        remaining = closes_at - time.time()
    else:
        remaining = redis_of().pttl(cache.make_and_validate_key(key)) / 1000
    return remaining if remaining > 0 else float(duration)


class AnonThrottle(_SettingsRate, CounterThrottle, AnonRateThrottle):
    """Other calls, per anonymous address."""


class UserThrottle(_SettingsRate, CounterThrottle, UserRateThrottle):
    """Other calls, per signed-in user."""


def _posted_username(request) -> str:
    """The username a sign-in posts: JSON through DRF, form fields on the pages."""
    data = getattr(request, "data", None) or request.POST
    # A JSON body that is no object, or a username that is no string, names nobody: the
    # view answers 400.
    username = data.get("username", "") if isinstance(data, Mapping) else ""
    return username if isinstance(username, str) else ""


class LoginThrottle(_SettingsRate, CounterThrottle):
    """Sign-in attempts per account, from any address: guessing one password is slow.

    Keyed by the canonical form of the posted username (accounts.usernames), so every
    look-alike spelling of a name (full-width, mathematical bold, sub- and superscript
    letters, any case) counts against that one account.
    """

    scope = "login"

    def get_cache_key(self, request, view):
        # Hashed: a cache key stays short and printable whatever was typed.
        ident = hashlib.sha256(username_canonical(_posted_username(request).strip()).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginAddressThrottle(_SettingsRate, CounterThrottle):
    """Sign-in attempts per address, whatever the username: password spraying is slow."""

    scope = "login_address"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# Every way in checks both, the API (as throttle_classes) and the pages (login_throttle_wait).
LOGIN_THROTTLES = [throttle_group(LoginThrottle, LoginAddressThrottle)]


def login_throttle_wait(request) -> float | None:
    """For a sign-in page's POST: None when it may try a password, else seconds to wait.

    Every throttle sees the attempt, as DRF's `check_throttles` does for the API.
    """
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 0.0)
    return max(waits) if waits else None


class RegisterThrottle(_SettingsRate, CounterThrottle):
    """Registrations, per address."""

    scope = "register"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class MoneyThrottle(_SettingsRate, CounterThrottle):
    """POSTs that move cash, per user."""

    scope = "money"

    def get_cache_key(self, request, view):
        if request.method != "POST" or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


def page_money_wait(request) -> int | None:
    """For a page form that moves cash: count this POST against the user's money budget.

    The budget is the API's own (`MoneyThrottle`, the same cache key), so API calls and
    page posts spend one `THROTTLE_MONEY`. None when the post may go ahead; otherwise
    the whole seconds to wait (for `Retry-After`).
    """
    throttle = MoneyThrottle()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


# settings.REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES: every other call, per address or user.
DefaultThrottles = throttle_group(AnonThrottle, UserThrottle)
# The API's cash-moving POSTs (pledges, missions, top-ups) also spend the money budget.
MONEY_THROTTLES = [throttle_group(AnonThrottle, UserThrottle, MoneyThrottle)]
