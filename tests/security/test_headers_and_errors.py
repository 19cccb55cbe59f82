"""Contract hygiene: every /api/ error is JSON with a `code` (deeply nested, malformed and
oversized bodies, unknown paths, server errors), pages carry a strict Content Security
Policy and refuse framing (except the overlay), private API answers are never stored by a
cache, and /metrics answers only Prometheus in production."""

import re
from html.parser import HTMLParser

import pytest
from csp.utils import build_policy
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from ledger.models import Account, Event, IdempotencyRecord, Notification, Posting, Transaction
from missions.models import Mission
from tests.accounts.factories import PASSWORD, UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases


# --- helpers ------------------------------------------------------------------------------


def _nested(key: str, depth: int) -> str:
    """`{"<key>": [[[...]]]}` with `depth` lists: depth 1,000 is a 2 KB body."""
    return '{"' + key + '": ' + "[" * depth + "]" * depth + "}"


def _state() -> dict:
    """Everything a POST could change: row counts, every balance, every mission's status."""
    models = (User, Mission, Transaction, Posting, Event, IdempotencyRecord, Notification)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "tokens": (OutstandingToken.objects.count(), BlacklistedToken.objects.count()),
        "balances": dict(Account.objects.values_list("pk", "balance")),
        "missions": dict(Mission.objects.values_list("pk", "status")),
    }


def _bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def _directives(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy", "")
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


class _InlineCode(HTMLParser):
    """Collects what a strict CSP refuses: inline <script> and <style> blocks, on*
    handler attributes, style attributes and javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            self._open = "script"
        if tag == "style":
            self._open = "style"
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")

    def handle_data(self, data):
        if self._open and data.strip():
            self.found.append(f"inline <{self._open}>: {data.strip()[:60]}")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._open = None


def _inline_code(response) -> list[str]:
    parser = _InlineCode()
    parser.feed(response.content.decode())
    return parser.found


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def viewer(db):
    user = UserFactory()
    fund(user, 50_000)
    return user


@pytest.fixture
def mission(streamer):
    """A pending mission of `streamer`, created (and funded) by someone else."""
    return make_mission(streamer=streamer, amount=1_000)


@pytest.fixture
def signed_in(client, viewer):
    """The page client, signed in as `viewer`."""
    client.force_login(viewer)
    return client


# --- request bodies -----------------------------------------------------------------------


def _post_cases(viewer, streamer, mission) -> dict[str, tuple[APIClient, str, str]]:
    """Every POST of the API: (a client allowed to make it, its path, the field to nest)."""
    anonymous = APIClient()
    cases = {
        "register": (anonymous, "/api/auth/register", "username"),
        "token": (anonymous, "/api/auth/token", "username"),
        "refresh": (anonymous, "/api/auth/token/refresh", "refresh"),
        "logout": (_bearer(viewer), "/api/auth/logout", "refresh"),
        "topup": (_bearer(viewer), "/api/wallet/topups", "amount"),
        "mission": (_bearer(viewer), "/api/missions", "title"),
        "pledge": (_bearer(viewer), f"/api/missions/{mission.pk}/pledges", "amount"),
    }
    for decision in ("accept", "reject", "success", "fail"):
        cases[decision] = (_bearer(streamer), f"/api/missions/{mission.pk}/{decision}", "reason")
    return cases


POSTS = ["register", "token", "refresh", "logout", "topup", "mission", "pledge", "accept", "reject", "success", "fail"]


class TestNestedJson:
    @pytest.mark.parametrize("name", POSTS)
    def test_a_2_kb_nested_body_is_a_parse_error_that_changes_nothing(self, name, viewer, streamer, mission):
        client, path, field = _post_cases(viewer, streamer, mission)[name]
        before = _state()

        response = client.post(path, _nested(field, 1_000), content_type="application/json")

        assert response.status_code == 400, response.content[:300]
        assert response.json()["code"] == "parse_error"
        assert _state() == before

    @pytest.mark.parametrize("name", POSTS)
    def test_a_body_nested_past_the_limit_but_not_past_python_is_refused_too(self, name, viewer, streamer, mission):
        client, path, field = _post_cases(viewer, streamer, mission)[name]
        before = _state()

        response = client.post(path, _nested(field, 100), content_type="application/json")

        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"
        assert _state() == before

    def test_an_idempotent_top_up_with_an_extra_field_nested_past_the_limit_moves_nothing(self, viewer):
        body = '{"amount": 1000, "note": ' + "[" * 5_000 + "]" * 5_000 + "}"
        client = _bearer(viewer)
        before = _state()

        response = client.post(
            "/api/wallet/topups", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nested-1"
        )

        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"
        assert _state() == before

    def test_a_body_exactly_at_the_limit_still_goes_through_the_idempotency_fingerprint(self, viewer):
        from missionhub.parsers import JSONParser

        # {"amount": 1000, "note": [[...]]}: the object is one level, the lists the rest.
        depth = JSONParser.max_depth - 1
        body = '{"amount": 1000, "note": ' + "[" * depth + "]" * depth + "}"

        response = _bearer(viewer).post(
            "/api/wallet/topups", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="at-the-limit"
        )

        assert response.status_code == 201
        assert IdempotencyRecord.objects.filter(user_id=viewer.pk, key="at-the-limit").exists()

    def test_the_field_error_renderer_does_not_recurse_without_bound(self):
        from rest_framework.exceptions import ErrorDetail

        from missionhub.errors import _field_errors, _first_error

        detail: object = [ErrorDetail("deep", code="invalid")]
        for _ in range(5_000):
            detail = [detail]

        errors = _field_errors({"field": detail})

        assert _first_error(errors) == {"message": "deep", "code": "invalid"}

    def test_malformed_json_is_a_parse_error_that_changes_nothing(self, viewer):
        client = _bearer(viewer)
        before = _state()

        response = client.post("/api/wallet/topups", '{"amount": 10', content_type="application/json")

        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"
        assert _state() == before


class TestOversizedBody:
    @pytest.mark.parametrize("path", ["/api/wallet/topups", "/api/auth/register"])
    def test_a_body_over_the_upload_limit_is_a_json_413_that_changes_nothing(self, settings, viewer, path):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        client = _bearer(viewer) if path == "/api/wallet/topups" else APIClient()
        body = '{"amount": 1000, "username": "big", "pad": "' + "x" * 20_000 + '"}'
        before = _state()

        response = client.post(path, body, content_type="application/json")

        assert response.status_code == 413
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "request_too_large"
        assert _state() == before

    def test_the_default_limit_applies_to_a_3_mb_body(self, viewer):
        body = '{"amount": 1000, "pad": "' + "x" * 3_000_000 + '"}'
        client = _bearer(viewer)
        before = _state()

        response = client.post("/api/wallet/topups", body, content_type="application/json")

        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"
        assert _state() == before


# --- unknown paths and server errors --------------------------------------------------------


UNKNOWN_API_PATHS = ["/api/missions/-1", "/api/nope", "/api/missions/abc", "/api/wallet/", "/api/"]


class TestApiErrorsAreJson:
    @pytest.mark.parametrize("path", UNKNOWN_API_PATHS)
    @pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
    def test_an_unknown_api_path_answers_a_json_404(self, client, settings, path, debug):
        settings.DEBUG = debug

        response = client.get(path)

        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"

    def test_an_unknown_api_path_is_a_404_for_a_post_too_and_changes_nothing(self, viewer):
        client = _bearer(viewer)
        before = _state()

        response = client.post("/api/missions/-1/pledges", {"amount": 500}, format="json")

        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert _state() == before

    def test_an_unknown_api_path_is_a_json_404_for_a_post_without_a_csrf_token(self, viewer):
        client = Client(enforce_csrf_checks=True)
        client.force_login(viewer)

        response = client.post("/api/nope", {"amount": 500}, content_type="application/json")

        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_an_unknown_page_still_answers_the_html_404_page(self, client):
        response = client.get("/no-such-page")

        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert b"<html" in response.content

    def test_a_server_error_under_the_api_is_a_json_500(self, viewer, monkeypatch):
        def broken(**kwargs):
            raise RuntimeError("the database fell over")

        monkeypatch.setattr("ledger.selectors.wallet_balance", broken)
        client = Client(raise_request_exception=False)
        client.force_login(viewer)

        response = client.get("/api/wallet")

        assert response.status_code == 500
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "server_error"
        assert "fell over" not in response.content.decode()

    def test_a_server_error_on_a_page_is_the_html_500_page(self, viewer, monkeypatch):
        def broken(**kwargs):
            raise RuntimeError("the database fell over")

        monkeypatch.setattr("missions.selectors.missions_live", broken)
        client = Client(raise_request_exception=False)

        response = client.get("/")

        assert response.status_code == 500
        assert response["Content-Type"].startswith("text/html")


# --- Content Security Policy and framing ---------------------------------------------------


def _pages(streamer, mission) -> list[str]:
    return [
        "/",
        "/login",
        "/signup",
        f"/missions/{mission.pk}",
        "/missions/new",
        f"/streamers/{streamer.username}",
        "/wallet",
        "/admin/login/",
        "/api/docs",
        "/no-such-page",
    ]


class TestContentSecurityPolicy:
    def test_every_page_carries_a_policy_that_allows_no_inline_script(self, signed_in, streamer, mission):
        for path in [*_pages(streamer, mission), f"/overlay/{streamer.username}"]:
            response = signed_in.get(path)

            policy = _directives(response)
            assert policy, f"{path}: no Content-Security-Policy"
            assert policy["default-src"] == ["'self'"], path
            assert policy["script-src"] == ["'self'"], path
            assert policy["object-src"] == ["'none'"], path
            assert "'unsafe-inline'" not in policy.get("script-src", []), path
            assert "'unsafe-eval'" not in policy.get("script-src", []), path

    def test_our_pages_keep_styles_strict_too(self, signed_in, streamer, mission):
        for path in [*_pages(streamer, mission), f"/overlay/{streamer.username}"]:
            response = signed_in.get(path)

            assert _directives(response)["style-src"] == ["'self'"], path

    def test_no_page_has_inline_script_or_style(self, client, signed_in, streamer, mission):
        anonymous = ["/", "/login", "/signup", f"/missions/{mission.pk}", "/admin/login/", "/api/docs"]
        for path in [*anonymous, "/no-such-page", f"/overlay/{streamer.username}"]:
            response = Client().get(path)

            assert response.status_code == (404 if path == "/no-such-page" else 200), path
            assert _inline_code(response) == [], path

    def test_no_signed_in_or_staff_page_has_inline_script_or_style(self, client, streamer, mission):
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        pages = [
            "/",
            f"/missions/{mission.pk}",
            "/missions/new",
            f"/streamers/{streamer.username}",
            "/wallet",
            "/staff/monitoring",
            "/admin/",
            "/admin/missions/mission/",
            f"/admin/missions/mission/{mission.pk}/change/",
        ]
        for path in pages:
            response = client.get(path)

            assert response.status_code == 200, path
            assert _inline_code(response) == [], path

    def test_the_streamer_dashboard_has_no_inline_script(self, client, streamer, mission):
        client.force_login(streamer)

        response = client.get("/dashboard")

        assert response.status_code == 200
        assert _inline_code(response) == []

    def test_htmx_is_told_not_to_inject_its_indicator_style(self, client, streamer):
        for path in ("/", f"/overlay/{streamer.username}"):
            html = client.get(path).content.decode()

            assert re.search(r'<meta name="htmx-config" content=\'\{[^}]*"includeIndicatorStyles": ?false', html), path

    def test_the_api_docs_render_with_the_strict_policy_from_separate_files(self, client):
        response = client.get("/api/docs")

        assert response.status_code == 200
        assert _directives(response)["script-src"] == ["'self'"]
        assert _inline_code(response) == []
        scripts = re.findall(r'<script src="([^"]+)"', response.content.decode())
        assert len(scripts) == 3  # swagger-ui-bundle, the standalone preset, our initialiser
        initialiser = client.get(scripts[-1].replace("&amp;", "&"))
        assert initialiser.status_code == 200
        assert initialiser["Content-Type"].startswith("application/javascript")
        assert b"SwaggerUIBundle" in initialiser.content


class TestPolicyBuiltOnce:
    """missionhub.middleware.CSPMiddleware builds settings' policy once; views that relax it
    (the overlay's csp_replace, the docs' csp_update) still get django-csp's own."""

    def test_a_response_no_view_changed_carries_the_policy_of_settings(self, client):
        for path in ("/", "/login", "/healthz", "/api/missions"):
            response = client.get(path)

            assert response.headers["Content-Security-Policy"] == build_policy(), path

    def test_views_that_relax_the_policy_still_relax_it(self, client, streamer):
        overlay = _directives(client.get(f"/overlay/{streamer.username}"))
        docs = _directives(client.get("/api/docs"))
        plain = _directives(client.get("/"))

        assert (overlay["frame-ancestors"], plain["frame-ancestors"]) == (["*"], ["'none'"])
        assert (docs["img-src"], plain["img-src"]) == (["'self'", "data:"], ["'self'"])

    def test_a_change_of_the_settings_changes_the_header(self, client, settings):
        client.get("/")
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}

        response = client.get("/")

        assert _directives(response) == {"default-src": ["'none'"]}

    def test_a_report_only_policy_in_settings_is_sent_too(self, client, settings):
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"script-src": ["'self'"]}}

        response = client.get("/")

        assert response.headers["Content-Security-Policy-Report-Only"] == build_policy(report_only=True)
        assert "script-src 'self'" in response.headers["Content-Security-Policy-Report-Only"]


class TestFraming:
    def test_pages_and_the_api_refuse_to_be_framed(self, signed_in, streamer, mission):
        for path in [*_pages(streamer, mission), "/api/missions", "/api/wallet"]:
            response = signed_in.get(path)

            assert response.headers.get("X-Frame-Options") == "DENY", path
            assert _directives(response)["frame-ancestors"] == ["'none'"], path

    def test_the_overlay_may_be_framed_by_any_site(self, client, streamer, mission):
        response = client.get(f"/overlay/{streamer.username}")

        assert response.status_code == 200
        assert "X-Frame-Options" not in response.headers
        assert _directives(response)["frame-ancestors"] == ["*"]
        assert _directives(response)["script-src"] == ["'self'"]

    def test_the_overlays_live_part_may_be_framed_too(self, client, streamer, mission):
        response = client.get(f"/overlay/{streamer.username}", HTTP_HX_REQUEST="true")

        assert response.status_code == 200
        assert "X-Frame-Options" not in response.headers

    def test_an_unknown_streamers_overlay_is_an_ordinary_404_page(self, client):
        response = client.get("/overlay/nobody-at-all")

        assert response.status_code == 404
        assert response.headers.get("X-Frame-Options") == "DENY"


# --- private answers -----------------------------------------------------------------------


class TestNoStore:
    @pytest.mark.parametrize("path", ["/api/wallet", "/api/wallet/transactions", "/api/users/me"])
    def test_private_reads_are_never_stored(self, viewer, path):
        response = _bearer(viewer).get(path)

        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]

    def test_a_top_up_is_never_stored(self, viewer):
        response = _bearer(viewer).post("/api/wallet/topups", {"amount": 1_000}, format="json")

        assert response.status_code == 201
        assert "no-store" in response["Cache-Control"]

    def test_a_replayed_top_up_is_never_stored_either(self, viewer):
        client = _bearer(viewer)
        client.post("/api/wallet/topups", {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

        response = client.post("/api/wallet/topups", {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

        assert response["Idempotent-Replayed"] == "true"
        assert "no-store" in response["Cache-Control"]

    def test_private_reads_through_the_session_are_never_stored(self, signed_in):
        response = signed_in.get("/api/wallet")

        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]

    def test_tokens_are_never_stored(self, viewer):
        response = APIClient().post(
            "/api/auth/token", {"username": viewer.username, "password": PASSWORD}, format="json"
        )

        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]

    def test_a_public_list_asked_anonymously_may_be_cached(self, api_client, mission):
        response = api_client.get("/api/missions")

        assert response.status_code == 200
        assert "no-store" not in response.get("Cache-Control", "")


# --- /metrics ------------------------------------------------------------------------------


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = "scrape-me-0123456789abcdef"
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16", "fd00::/8"]
    return settings


class TestMetricsAccess:
    def test_refused_without_its_token(self, client, production):
        response = client.get("/metrics")

        assert response.status_code == 403
        assert b"missionhub_" not in response.content

    @pytest.mark.parametrize(
        "authorization",
        ["Bearer wrong-token", "Bearer ", "scrape-me-0123456789abcdef", "Basic c2NyYXBlLW1lOg==",
         "Bearer scrape-me-0123456789abcdeF"],
    )  # fmt: skip
    def test_refused_with_a_wrong_token(self, client, production, authorization):
        response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)

        assert response.status_code == 403

    def test_answers_its_bearer_token(self, client, production):
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-0123456789abcdef")

        assert response.status_code == 200
        assert b"missionhub_missions_created_total" in response.content

    @pytest.mark.parametrize("address", ["10.20.3.4", "fd00::1"])
    def test_answers_an_allowed_network(self, client, production, address):
        response = client.get("/metrics", REMOTE_ADDR=address)

        assert response.status_code == 200

    def test_a_forwarded_for_header_is_not_trusted_without_proxies(self, client, production):
        response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.20.3.4")

        assert response.status_code == 403

    def test_behind_one_proxy_the_client_is_the_proxys_last_hop(self, client, production):
        production.REST_FRAMEWORK = {**production.REST_FRAMEWORK, "NUM_PROXIES": 1}

        allowed = client.get("/metrics", REMOTE_ADDR="10.99.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.20.3.4")
        spoofed = client.get("/metrics", REMOTE_ADDR="10.99.0.1", HTTP_X_FORWARDED_FOR="10.20.3.4, 203.0.113.9")

        assert allowed.status_code == 200
        assert spoofed.status_code == 403

    def test_an_empty_token_setting_accepts_no_token(self, client, production):
        production.METRICS_TOKEN = ""

        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")

        assert response.status_code == 403

    def test_open_with_debug_on(self, client, settings):
        settings.DEBUG = True
        settings.METRICS_TOKEN = ""
        settings.METRICS_ALLOWED_NETWORKS = []

        response = client.get("/metrics")

        assert response.status_code == 200
