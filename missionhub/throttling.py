"""Cache-backed throttles whose rates are read at request time from settings.

DRF's own classes copy the rates when they are imported; reading them per request lets
the environment and tests set them.

Sign-in has one mechanism for every way in: the API's token view lists LOGIN_THROTTLES,
and the sign-in pages (`/login`, `/admin/login/`) ask `login_throttle_wait`, which runs
the same classes on the same cache keys, so the doors share one count.
"""

import hashlib
import math
from collections.abc import Mapping

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from accounts.usernames import username_canonical


class _SettingsRate:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class AnonThrottle(_SettingsRate, AnonRateThrottle):
    """Other calls, per anonymous address."""


class UserThrottle(_SettingsRate, UserRateThrottle):
    """Other calls, per signed-in user."""


def _posted_username(request) -> str:
    """The username a sign-in posts: JSON through DRF, form fields on the pages."""
    data = getattr(request, "data", None) or request.POST
    # A JSON body that is no object, or a username that is no string, names nobody: the
    # view answers 400.
    username = data.get("username", "") if isinstance(data, Mapping) else ""
    return username if isinstance(username, str) else ""


class LoginThrottle(_SettingsRate, SimpleRateThrottle):
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


class LoginAddressThrottle(_SettingsRate, SimpleRateThrottle):
    """Sign-in attempts per address, whatever the username: password spraying is slow."""

    scope = "login_address"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# Every way in checks both, the API (as throttle_classes) and the pages (login_throttle_wait).
LOGIN_THROTTLES = [LoginThrottle, LoginAddressThrottle]


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


class RegisterThrottle(_SettingsRate, SimpleRateThrottle):
    """Registrations, per address."""

    scope = "register"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class MoneyThrottle(_SettingsRate, SimpleRateThrottle):
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
