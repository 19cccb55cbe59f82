"""Project middleware: the viewer's time zone, and no caching of private API answers."""

import zoneinfo

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
