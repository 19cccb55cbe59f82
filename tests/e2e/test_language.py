"""The footer's language select switches the pages to Korean."""

import pytest
from django.utils import translation
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]


def korean(text: str) -> str:
    """The Korean for `text`, or `text` itself while the catalog is not compiled (no .mo)."""
    with translation.override("ko"):
        return translation.gettext(text)


def test_the_footer_switches_the_page_to_korean(person):
    visitor = person("visitor", "language")
    page = visitor.goto("/", shot="01-home-en")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.locator("footer").get_by_label("Language").select_option(label="한국어")  # submits on change

    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page).to_have_url(visitor.base_url + "/")
    expect(page.locator("#language")).to_have_value("ko")
    heading = korean("Live missions")
    if heading != "Live missions":  # translations compiled: the words are Korean too
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        expect(page.get_by_role("heading", name="Live missions")).to_have_count(0)
    visitor.shoot("02-home-ko")
    visitor.goto("/signup", shot="03-signup-ko")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
