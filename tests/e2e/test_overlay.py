"""The OBS overlay follows the pot live: htmx polls it, nobody reloads the page."""

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import DESKTOP

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]


def test_the_overlay_shows_a_new_pledge_without_a_reload(person, browser, live_server, camera):
    streamer = person("streamer", "overlay")
    streamer.sign_up(streamer=True)
    alice = person("alice", "overlay")
    alice.sign_up()
    alice.top_up(10_000, quick=True)
    mission_id = alice.create_mission(streamer=streamer.username, title="Speedrun under an hour", amount=2_500)

    # OBS's browser source: no sign-in, its own context.
    obs = browser.new_context(base_url=live_server.url, **DESKTOP)
    try:
        overlay = obs.new_page()
        overlay.goto(f"/overlay/{streamer.username}")
        pot = overlay.get_by_test_id("overlay-pot")
        expect(pot).to_have_count(1)
        expect(pot).to_contain_text("2,500")
        expect(overlay.locator(".overlay-title")).to_have_text("Speedrun under an hour")
        shoot = camera()
        shoot(overlay, "overlay")
        overlay.evaluate("window.stillTheSamePage = true")

        alice.pledge(mission_id, 1_000, quick=True)

        expect(pot).to_contain_text("3,500", timeout=10_000)  # the next poll (every 3s)
        assert overlay.evaluate("window.stillTheSamePage") is True, "the overlay page was reloaded"
        shoot(overlay, "overlay-updated")
    finally:
        obs.close()
