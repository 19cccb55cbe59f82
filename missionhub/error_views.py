"""Django's error views (handler400/403/404/500): JSON with a `code` under /api/, our
pages elsewhere.

DRF renders the errors its views raise (missionhub.errors.api_exception_handler); these
answer what happens outside them: a path that matches no route, a server error, a
refused Host header. `api_not_found` is the API's last route, so an unknown /api/ path is
JSON even with DEBUG on (where Django would show its technical 404 page instead of
handler404).
"""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _api_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


@csrf_exempt  # it changes nothing; without this a POST would meet the CSRF check's HTML 403 first
def api_not_found(request, *args, **kwargs):
    return _api_error(404, "not_found", _("Not found."))


def bad_request(request, exception):
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _api_error(413, "request_too_large", _("The request body is too large."))
    return _api_error(400, "bad_request", _("Bad request."))


def permission_denied(request, exception):
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return _api_error(403, "permission_denied", _("You do not have permission to perform this action."))


def page_not_found(request, exception):
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return api_not_found(request)


def server_error(request):
    if not _is_api(request):
        return defaults.server_error(request)
    return _api_error(500, "server_error", _("Something broke on our side. No cash moved unless you saw it confirmed."))
