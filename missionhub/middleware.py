"""Project middleware: the viewer's time zone, no caching of private API answers, and
django-csp's header built once."""

import http.client
import zoneinfo
from functools import cache

from csp import middleware as csp_middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from django.utils.cache import patch_cache_control

TZ_COOKIE = "mh_tz"


class ViewerTimezoneMiddleware:
    """Show times in the viewer's time zone.

    The browser tells it once through a cookie set by static/js/missionhub.js; without
    JavaScript (or with an unknown zone) pages show UTC.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.COOKIES.get(TZ_COOKIE, "")
        try:
            zone = zoneinfo.ZoneInfo(name) if name and len(name) < 64 else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return self.get_response(request)


# Answers here carry secrets even to an anonymous caller: tokens, a new account.
_ALWAYS_PRIVATE = ("/api/auth/",)


class PrivateApiNoStoreMiddleware:
    """`Cache-Control: no-store` on every /api/ answer that may hold someone's data.

    That is every answer to a signed-in caller (wallet, transactions, users/me, top-ups,
    withdrawals, webhooks: whatever the endpoint, so a new one cannot forget it) and every
    answer under /api/auth/. DRF authenticates inside the view and sets `request.user` on
    the Django request too, so by the time the response passes here the caller is known.
    Public reads asked anonymously stay cacheable.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        path = request.path_info
        if path.startswith("/api/") and (path.startswith(_ALWAYS_PRIVATE) or _signed_in(request)):
            patch_cache_control(response, private=True, no_store=True)
        return response


def _signed_in(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


# What a view's csp decorators (csp_update, csp_replace, csp_exempt...) leave on a response.
_CSP_VIEW_ATTRIBUTES = (
    "_csp_config", "_csp_update", "_csp_replace", "_csp_exempt",
    "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro",
)  # fmt: skip


@cache
def _settings_policies() -> tuple[str, str]:
    """The policy and the report-only policy of settings alone, as django-csp builds them."""
    return build_policy(), build_policy(report_only=True)


@receiver(setting_changed)
def _settings_policies_forget(*, setting, **kwargs):
    if setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        _settings_policies.cache_clear()


class CSPMiddleware(csp_middleware.CSPMiddleware):
    """django-csp's middleware, without rebuilding the same header for every response.

    django-csp 4.0 turns the settings into the header string twice per response (policy and
    report-only), through `dataclasses.asdict`: the largest cost of our middleware stack.
    A response that no csp decorator touched, whose request used no nonce, gets the headers
    built once from settings (again when a test changes them); any other goes through
    django-csp's own code.
    """

    def process_response(self, request, response):
        if (
            getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _CSP_VIEW_ATTRIBUTES)
            or (settings.DEBUG and response.status_code in (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND))
        ):
            return super().process_response(request, response)
        policy, report_only = _settings_policies()
        for header, value, setting in (
            (HEADER, policy, "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, report_only, "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if value and header not in response and not request.path_info.startswith(tuple(prefixes)):
                response[header] = value
        # As django-csp does: a nonce asked for after the header was written is an error.
        request.csp_nonce = csp_middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response
