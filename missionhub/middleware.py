"""Show times in the viewer's time zone.

The browser tells it once through a cookie set by static/js/missionhub.js; without
JavaScript (or with an unknown zone) pages show UTC.
"""

import zoneinfo

from django.utils import timezone

TZ_COOKIE = "mh_tz"


class ViewerTimezoneMiddleware:
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
