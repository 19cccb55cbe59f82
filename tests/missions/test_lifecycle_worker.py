"""The whole mission story over HTTP, settled and emailed by a real Celery worker process
(and expired by a real beat process), on whatever broker and databases the suite runs on."""

import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from ledger.models import Notification
from tests.worker import BeatProcess, process_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=["default", "accounts"])]

PASSWORD = "follow-the-rabbit-42"


class Api:
    """A tiny JSON client speaking to the live server with JWTs."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, expect: int = 200, **body):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.session.request(method, self.base_url + path, json=body or None, headers=headers, timeout=30)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def signup(self, username: str, *, is_streamer: bool = False, cash: int = 0) -> str:
        self.call("POST", "/api/auth/register", expect=201, username=username, email=f"{username}@example.com",
                  password=PASSWORD, is_streamer=is_streamer)  # fmt: skip
        token = self.call("POST", "/api/auth/token", username=username, password=PASSWORD)["access"]
        if cash:
            self.call("POST", "/api/wallet/topups", token, expect=201, amount=cash)
        return token

    def balance(self, token: str) -> int:
        return self.call("GET", "/api/users/me", token)["balance"]

    def wait_until_settled(self, mission_id: int, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mission = self.call("GET", f"/api/missions/{mission_id}")
            if mission["settled_at"]:
                return mission
            time.sleep(0.2)
        raise AssertionError(f"mission {mission_id} was not settled within {timeout}s: {mission}")


def wait_until_emails_sent(mission_id: int, expected: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Notification.objects.filter(mission_id=mission_id, sent_at__isnull=False).count() == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"mission {mission_id}: {list(Notification.objects.filter(mission_id=mission_id).values())}")


def mail_mentioning(text: str) -> list[Path]:
    return [p for p in Path(django_settings.EMAIL_FILE_PATH).glob("*.log") if text in p.read_text()]


@pytest.fixture
def story(live_server, celery_worker_process, settings):
    """Three people: a streamer and two viewers with cash, and a mission by the first viewer."""
    settings.MISSIONHUB_MIN_MISSION_SECONDS = 1
    api = Api(live_server.url)
    suffix = str(time.monotonic_ns())[-6:]
    people = {
        "streamer": api.signup(f"streamer{suffix}", is_streamer=True),
        "alice": api.signup(f"alice{suffix}", cash=10_000),
        "bob": api.signup(f"bob{suffix}", cash=5_000),
    }
    mission = api.call("POST", "/api/missions", people["alice"], expect=201, title="No-heal boss run",
                       description="30 minutes", streamer=f"streamer{suffix}", amount=3_000,
                       duration_seconds=3600)  # fmt: skip
    api.call("POST", f"/api/missions/{mission['id']}/pledges", people["bob"], expect=201, amount=2_000)
    return api, people, mission, suffix


class TestLifecycleWithARealWorker:
    def test_success_pays_the_streamer_and_emails_everyone(self, story):
        api, people, mission, suffix = story
        api.call("POST", f"/api/missions/{mission['id']}/accept", people["streamer"])

        api.call("POST", f"/api/missions/{mission['id']}/success", people["streamer"])
        settled = api.wait_until_settled(mission["id"])

        assert settled["status"] == "succeeded"
        assert api.balance(people["streamer"]) == 5_000
        assert (api.balance(people["alice"]), api.balance(people["bob"])) == (7_000, 3_000)
        kinds = [e["kind"] for e in api.call("GET", f"/api/missions/{mission['id']}/events")]
        assert kinds == ["created", "pledged", "accepted", "succeeded", "settled"]
        wait_until_emails_sent(mission["id"], expected=4)  # new mission, payout, two results
        assert mail_mentioning(f"bob{suffix}@example.com")

    @pytest.mark.parametrize("action", ["fail", "reject"])
    def test_fail_and_reject_refund_every_contributor(self, story, action):
        api, people, mission, suffix = story

        api.call("POST", f"/api/missions/{mission['id']}/{action}", people["streamer"])
        settled = api.wait_until_settled(mission["id"])

        assert settled["status"] == {"fail": "failed", "reject": "rejected"}[action]
        assert (api.balance(people["alice"]), api.balance(people["bob"])) == (10_000, 5_000)
        assert api.balance(people["streamer"]) == 0
        wait_until_emails_sent(mission["id"], expected=3)  # new mission, two results
        assert any("2,000 cash was refunded" in p.read_text() for p in mail_mentioning(f"bob{suffix}@example.com"))


class TestExpiryByBeat:
    def test_an_undecided_mission_is_expired_and_refunded(self, live_server, celery_worker_process, settings):
        settings.MISSIONHUB_MIN_MISSION_SECONDS = 1
        api = Api(live_server.url)
        suffix = str(time.monotonic_ns())[-6:]
        api.signup(f"streamer{suffix}", is_streamer=True)
        alice = api.signup(f"alice{suffix}", cash=4_000)
        beat = BeatProcess(process_env(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1"))
        try:
            mission = api.call("POST", "/api/missions", alice, expect=201, title="Quick one", description="",
                               streamer=f"streamer{suffix}", amount=1_500, duration_seconds=2)  # fmt: skip
            assert api.balance(alice) == 2_500

            settled = api.wait_until_settled(mission["id"], timeout=90)
        finally:
            beat.stop()

        assert settled["status"] == "expired"
        assert api.balance(alice) == 4_000
        events = api.call("GET", f"/api/missions/{mission['id']}/events")
        assert [e["kind"] for e in events] == ["created", "expired", "settled"]
        assert events[1]["actor"] is None
