"""The URL patterns are tried in order: the probes and the API come before the pages."""

import pytest
from django.urls import resolve

FIRST = {"healthz", "readyz", "metrics", "api/"}


def _top_patterns_tried(path: str) -> list[str]:
    """The top-level patterns Django tried for `path`, the matching one included."""
    return [str(tried[0].pattern) for tried in resolve(path).tried]


class TestPatternOrder:
    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
    def test_a_probe_matches_without_trying_any_page(self, path):
        assert set(_top_patterns_tried(path)) <= FIRST

    @pytest.mark.parametrize("path", ["/api/wallet", "/api/missions/7/pledges", "/api/no-such-thing"])
    def test_an_api_call_tries_no_page_pattern(self, path):
        assert set(_top_patterns_tried(path)) <= FIRST

    @pytest.mark.parametrize(
        ("path", "name"),
        [("/", "home"), ("/wallet", "wallet"), ("/missions/7", "mission-detail"), ("/login", "login"),
         ("/admin/login/", "admin-login"), ("/i18n/setlang/", "set_language")],
    )  # fmt: skip
    def test_pages_still_match_their_views(self, path, name):
        assert resolve(path).url_name == name
