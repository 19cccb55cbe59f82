"""The whole story through the pages, as newcomers live it: a streamer and two viewers sign
up, the viewers top up, one starts a mission and the other adds to its pot, the streamer
decides on the dashboard, and the real worker settles the money."""

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Person, cash

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

TITLE = "Beat the boss without healing"
ALICE_TOPUP, ALICE_STAKE = 10_000, 3_000  # alice tops up with the quick button, stakes the first pledge
BOB_TOPUP, BOB_QUICK, BOB_TYPED = 5_000, 1_000, 750  # bob tops up with the form, pledges twice
POT = ALICE_STAKE + BOB_QUICK + BOB_TYPED


def mission_row(streamer: Person, mission_id: int):
    page = streamer.page
    return page.locator("#dashboard-live tr", has=page.locator(f'a[href="/missions/{mission_id}"]'))


def wait_until_settled(streamer: Person, mission_id: int, timeout: float = 30) -> None:
    """Reload the dashboard until the mission's outcome row no longer says "settling…"."""
    deadline = time.monotonic() + timeout
    while True:
        row = mission_row(streamer, mission_id)
        if row.count() == 1 and "settling" not in row.inner_text():
            return
        assert time.monotonic() < deadline, (
            f"mission {mission_id} not settled within {timeout}s: {row.all_inner_texts()}"
        )
        time.sleep(0.5)
        streamer.page.reload()


def play_the_story(person, decision: str, story: str) -> tuple[Person, Person, Person]:
    """Up to the settled decision ("Succeeded" or "Failed"); returns the streamer, alice and bob."""
    # The streamer signed up earlier, on another device.
    signup_device = person("streamer", story)
    signup_device.goto("/", shot="01-home")
    expect(signup_device.page.get_by_role("heading", name="Live missions")).to_be_visible()
    signup_device.sign_up(streamer=True, shot="02-signup")
    signup_device.close()

    alice = person("alice", story)
    alice.sign_up()
    alice.goto("/wallet", shot="03-wallet-empty")
    alice.top_up(ALICE_TOPUP, quick=True)
    alice.shoot("04-wallet-topped-up")
    mission_id = alice.create_mission(
        streamer=signup_device.username, title=TITLE, amount=ALICE_STAKE, shot="05-mission-new"
    )
    expect(alice.page.get_by_test_id("pot")).to_have_text(f"{ALICE_STAKE:,}")
    alice.shoot("06-mission")

    bob = person("bob", story)
    bob.sign_up()
    bob.top_up(BOB_TOPUP, quick=False)
    bob.goto(f"/missions/{mission_id}", shot="07-mission-bob")
    bob.pledge(mission_id, BOB_QUICK, quick=True)
    bob.pledge(mission_id, BOB_TYPED, quick=False)
    expect(bob.page.get_by_test_id("pot")).to_have_text(f"{POT:,}")
    expect(bob.page.get_by_test_id("contributor-count")).to_have_text("2")
    bob.shoot("08-mission-pledged")

    streamer = person("streamer", story)
    streamer.sign_in(shot="09-login")
    streamer.page.get_by_role("link", name="Dashboard").click()
    card = streamer.page.locator(f'article[data-mission="{mission_id}"]')
    expect(card).to_contain_text(TITLE)
    expect(card.locator(".pot")).to_contain_text(f"{POT:,}")
    streamer.shoot("10-dashboard")

    card.get_by_role("button", name=decision, exact=True).click()  # accepts the confirm() dialog
    expect(streamer.page.locator(".message.success")).to_contain_text(f"Mission marked as {decision.lower()}")
    expect(card).to_have_count(0)
    streamer.shoot("11-dashboard-decided")
    wait_until_settled(streamer, mission_id)
    expect(mission_row(streamer, mission_id).locator(".badge")).to_have_text(decision)
    streamer.shoot("12-dashboard-settled")

    streamer.goto(f"/missions/{mission_id}")
    expect(streamer.page.locator(".timeline li.event-settled")).to_have_count(1)
    expect(streamer.page.get_by_test_id("pot")).to_have_text(f"{POT:,}")
    expect(streamer.page.get_by_role("button", name=decision)).to_have_count(0)  # decided once
    streamer.shoot("13-mission-settled")
    return streamer, alice, bob


def history_row(someone: Person, kind: str):
    return someone.page.locator("table tbody tr", has_text=kind)


def test_success_pays_the_pot_to_the_streamer(person):
    streamer, alice, bob = play_the_story(person, "Succeeded", story="")

    assert streamer.wallet_balance(shot="14-wallet-streamer") == POT
    expect(history_row(streamer, "Payout")).to_contain_text(f"+{POT:,}")
    streamer.goto(f"/streamers/{streamer.username}", shot="15-channel")
    expect(streamer.page.locator(".channel-head")).to_contain_text(f"{POT:,} cash earned")

    assert alice.wallet_balance(shot="16-wallet-alice") == ALICE_TOPUP - ALICE_STAKE
    assert bob.wallet_balance(shot="17-wallet-bob") == BOB_TOPUP - BOB_QUICK - BOB_TYPED
    expect(history_row(bob, "Refund")).to_have_count(0)


def test_failure_refunds_every_backer_exactly(person):
    streamer, alice, bob = play_the_story(person, "Failed", story="failed")

    assert streamer.wallet_balance(shot="14-wallet-streamer") == 0
    expect(history_row(streamer, "Payout")).to_have_count(0)

    assert alice.wallet_balance(shot="16-wallet-alice") == ALICE_TOPUP
    expect(history_row(alice, "Refund")).to_contain_text(f"+{ALICE_STAKE:,}")
    expect(history_row(alice, "Refund")).to_contain_text(TITLE)
    assert bob.wallet_balance(shot="17-wallet-bob") == BOB_TOPUP
    expect(history_row(bob, "Refund")).to_contain_text(f"+{BOB_QUICK + BOB_TYPED:,}")
    assert cash(history_row(bob, "Refund").locator("td.num").last.inner_text()) == BOB_TOPUP
