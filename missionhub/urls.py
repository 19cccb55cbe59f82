from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import AdminLoginView

from . import error_views, health

# Swagger UI with its initialiser served as a separate script (`?script`), so the page
# keeps `script-src 'self'`; its stylesheet draws a few icons from data: URIs.
api_docs = csp_update({"img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html")
)

api_patterns = [
    # users/me comes before accounts' users/<username>.
    path("", include("ledger.api_urls")),
    path("", include("accounts.api_urls")),
    path("", include("missions.api_urls")),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", api_docs, name="api-docs"),
    # Last: any other /api/ path is a JSON 404, in DEBUG too.
    re_path(r"", error_views.api_not_found),
]

# The probes and the API first: Django tries the patterns in order, and every page pattern
# tried before a match costs a request (most of /healthz's own time once they came last).
# No page path starts with api/ or names a probe, so the order changes no match.
urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("api/", include(api_patterns)),
    path("", include("missions.urls")),
    path("", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # Before the admin's own login: the same sign-in limits as the API and /login.
    path("admin/login/", AdminLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
]

handler400 = error_views.bad_request
handler403 = error_views.permission_denied
handler404 = error_views.page_not_found
handler500 = error_views.server_error
