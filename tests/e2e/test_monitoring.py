"""The staff monitoring page in a real browser: its charts on a desktop and on a phone
(within the screen, under the Content Security Policy), and the ledger check that the
real worker runs when staff press the button."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from missions.monitoring import _hour_labels, hour_slots
from tests.accounts.factories import UserFactory
from tests.e2e.browser import PASSWORD, PHONE, TIMEOUT_MS
from tests.missions import monitoring_data as data

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

CHARTS = ["chart-pledges", "chart-pledged-cash", "chart-outcomes", "chart-latency", "chart-emails"]


@pytest.fixture
def two_days_of_missions(suffix) -> str:
    """A staff member and some history, written before the browser starts (the ORM cannot
    run beside Playwright's loop); returns the name of the hour that got two pledges."""
    UserFactory(username=f"staff{suffix}", password=PASSWORD, is_staff=True)
    now = timezone.now()
    hours = hour_slots(now)
    mission = data.created_at(amount=1_000, at=hours[-3] + timedelta(minutes=5), title="Tom & Jerry <b>")
    data.pledged_at(mission, amount=500, at=hours[-2] + timedelta(minutes=10))
    data.pledged_at(mission, amount=700, at=hours[-2] + timedelta(minutes=20))
    for i, status in enumerate(["succeeded", "failed", "rejected", "expired", "cancelled"]):
        data.ended(status, decided_at=now - timedelta(days=3 * i, hours=1), settled_after=timedelta(seconds=2 + i))
    return _hour_labels(hours)[0][-2]


def _csp_violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def test_staff_see_the_charts_on_a_desktop_and_a_phone_and_check_the_ledger(
    two_days_of_missions, person, browser, live_server
):
    staff = person("staff", "monitoring")
    violations = _csp_violations(staff.page)
    staff.sign_in()

    page = staff.goto("/staff/monitoring", shot="01-charts")

    expect(page.get_by_role("heading", name="Monitoring", level=1)).to_be_visible()
    assert page.locator("figure.chart").evaluate_all("els => els.map(e => e.id)") == CHARTS
    pledges = page.locator("#chart-pledges")
    pledges.get_by_text("The numbers").click()
    row = pledges.locator("tbody tr", has=page.get_by_role("rowheader", name=two_days_of_missions, exact=True))
    expect(row.locator("td")).to_have_text("2")
    expect(page.get_by_role("img", name="Missions ended per day, by outcome")).to_be_visible()
    assert violations == []

    # On a phone: every chart fits the screen, and nothing scrolls sideways.
    phone = browser.new_context(base_url=live_server.url, **PHONE)
    try:
        phone.add_cookies(staff.context.cookies())
        small = phone.new_page()
        small.set_default_timeout(TIMEOUT_MS)
        small.goto("/staff/monitoring")
        width = small.evaluate("window.innerWidth")
        assert small.evaluate("document.documentElement.scrollWidth") <= width
        boxes = small.locator("svg.chart-svg").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"
        )
        assert len(boxes) == len(CHARTS)
        assert all(left >= 0 and right <= width and right - left >= 0.75 * width for left, right in boxes)
    finally:
        phone.close()

    # The ledger check: asked for here, run by the worker, its stored result shown.
    page.get_by_role("button", name="Check the ledger now").click()
    expect(page.locator(".message.success")).to_contain_text("Ledger check asked for.")
    result = page.get_by_test_id("ledger-check-result")
    deadline = time.monotonic() + 30
    while "Sound" not in result.inner_text():
        assert time.monotonic() < deadline, f"no ledger check result: {result.inner_text()}"
        time.sleep(0.5)
        page.reload()
    expect(result).to_contain_text(f"Asked for by staff ({staff.username})")
    staff.shoot("02-ledger-checked")
