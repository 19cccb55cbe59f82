"""Cache-backed throttles whose rates are read at request time from settings.

DRF's own classes copy the rates when they are imported; reading them per request lets
the environment and tests set them.
"""

from collections.abc import Mapping

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class _SettingsRate:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class AnonThrottle(_SettingsRate, AnonRateThrottle):
    """Other calls, per anonymous address."""


class UserThrottle(_SettingsRate, UserRateThrottle):
    """Other calls, per signed-in user."""


class LoginThrottle(_SettingsRate, SimpleRateThrottle):
    """Sign-in attempts, per (username, address): guessing one account's password is slow."""

    scope = "login"

    def get_cache_key(self, request, view):
        data = getattr(request, "data", None) or request.POST
        # A JSON body that is no object, or a username that is no string, names nobody: the
        # view answers 400.
        username = data.get("username", "") if isinstance(data, Mapping) else ""
        username = username.strip().lower()[:150] if isinstance(username, str) else ""
        return self.cache_format % {"scope": self.scope, "ident": f"{username}|{self.get_ident(request)}"}


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
