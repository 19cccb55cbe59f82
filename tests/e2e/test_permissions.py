"""Only the mission's streamer decides: viewers see no decision buttons and no dashboard."""

import pytest
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

DECISIONS = ("Accept", "Reject", "Succeeded", "Failed")


def test_a_viewer_sees_no_decision_buttons_and_no_dashboard(person):
    streamer = person("streamer", "viewer")
    streamer.sign_up(streamer=True)
    alice = person("alice", "viewer")
    alice.sign_up()
    alice.top_up(10_000, quick=True)
    mission_id = alice.create_mission(streamer=streamer.username, title="Only melee weapons", amount=1_000)

    bob = person("bob", "viewer")
    bob.sign_up()
    bob.goto(f"/missions/{mission_id}", shot="01-mission-other-viewer")
    for name in DECISIONS:
        expect(bob.page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(bob.page.get_by_role("heading", name="Your decision")).to_have_count(0)
    expect(bob.page.get_by_role("heading", name="Add to the pot")).to_be_visible()
    expect(bob.page.get_by_role("link", name="Dashboard")).to_have_count(0)

    # Not even the mission's creator decides.
    alice.goto(f"/missions/{mission_id}")
    for name in DECISIONS:
        expect(alice.page.get_by_role("button", name=name, exact=True)).to_have_count(0)

    bob.goto("/dashboard")
    expect(bob.page).to_have_url(bob.base_url + "/")
    expect(bob.page.locator(".message.info")).to_contain_text("The dashboard is for streamers.")
    bob.shoot("02-dashboard-redirected")

    # The streamer does see them, on the same page.
    streamer.goto(f"/missions/{mission_id}", shot="03-mission-streamer")
    expect(streamer.page.get_by_role("heading", name="Your decision")).to_be_visible()
    for name in DECISIONS:
        expect(streamer.page.get_by_role("button", name=name, exact=True)).to_be_visible()

    bob.goto("/logout", shot="04-logout")
    bob.page.get_by_role("button", name="Sign out").click()
    expect(bob.page.locator(".message.info")).to_contain_text("You are signed out.")
    expect(bob.page.get_by_role("link", name="Sign in")).to_be_visible()
