"""The broker stops while missions are decided and created, then starts again, empty:
every request still succeeds, every decision is kept, and the sweep (a real beat and
worker) settles each mission and sends each email once, after the broker is back."""

import threading
import time

import pytest
from django.db import connections
from rest_framework.test import APIClient

from ledger.models import Event, Notification, Transaction
from ledger.selectors import wallet_balance
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.faults.harness import assert_sound, requires_redis_server, wait_for, wait_settled
from tests.ledger.factories import fund
from tests.missions.factories import make_mission

pytestmark = [
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

DECISIONS = ["success", "fail", "reject", "success", "fail", "reject"]
FINAL = {"success": "succeeded", "fail": "failed", "reject": "rejected"}


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def sent(**filters) -> int:
    return Notification.objects.filter(sent_at__isnull=False, **filters).count()


class TestTheBrokerStoppedWhileMissionsAreDecided:
    def test_every_decision_is_kept_and_settled_once_by_the_sweep(
        self, broker, processes, mailbox, fault_report, caplog, settings
    ):
        settings.MISSIONHUB_MIN_MISSION_SECONDS = 1
        streamer = UserFactory(is_streamer=True)
        creator, backer = UserFactory(), UserFactory()
        fund(creator, 20_000)
        fund(backer, 20_000)
        missions = [
            make_mission(streamer=streamer, creator=creator, amount=1_000 + 100 * i, title=f"Outage {i}")
            for i in range(len(DECISIONS))
        ]
        for mission in missions:
            as_user(backer).post(f"/api/missions/{mission.pk}/pledges", {"amount": 500}, format="json")
        processes.worker(MISSIONHUB_RESEND_GRACE_SECONDS="2")
        beat = processes.beat(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1")  # it lives through the outage
        wait_for(lambda: sent() == len(missions), timeout=60, what="the streamer's new-mission emails")

        broker.stop()
        took = []
        for mission, action in zip(missions, DECISIONS, strict=True):
            start = time.monotonic()
            response = as_user(streamer).post(f"/api/missions/{mission.pk}/{action}")
            took.append(time.monotonic() - start)
            assert response.status_code == 200, response.content
            assert response.json()["status"] == FINAL[action]
        start = time.monotonic()
        response = as_user(creator).post(
            "/api/missions",
            {"title": "Made in the outage", "streamer": streamer.username, "amount": 700, "duration_seconds": 3600},
            format="json",
        )
        took.append(time.monotonic() - start)
        assert response.status_code == 201, response.content
        late = Mission.objects.get(pk=response.json()["id"])

        lost_sends = [r for r in caplog.records if r.getMessage().startswith("could not enqueue")]
        assert len(lost_sends) == len(DECISIONS) + 1
        for mission, action in zip(missions, DECISIONS, strict=True):
            mission.refresh_from_db()
            assert (mission.status, mission.settled_at) == (FINAL[action], None)
        assert not Transaction.objects.filter(kind__in=["payout", "refund"]).exists()

        time.sleep(2)  # the beat's sweeps cannot be sent either
        broker.start()  # empty: the messages it held before and the ones never sent are gone
        back = time.monotonic()
        wait_for(
            lambda: not Mission.objects.filter(is_active=False, settled_at__isnull=True).exists(),
            timeout=90,
            what="the sweep to settle every decided mission",
        )
        # new-mission emails (one made in the outage), a result for each of the two
        # contributors per mission, and a payout to the streamer for each success
        emails = len(missions) + 1 + 2 * len(missions) + DECISIONS.count("success")
        wait_for(lambda: sent() == emails, timeout=60, what="every email")
        recovered = time.monotonic() - back
        for process in processes.started:
            process.stop()

        for mission in missions:
            assert Transaction.objects.filter(mission_id=mission.pk, kind__in=["payout", "refund"]).count() == 1
            assert Event.objects.filter(mission_id=mission.pk, kind="settled").count() == 1
        won = [m for m, action in zip(missions, DECISIONS, strict=True) if action == "success"]
        assert wallet_balance(user_id=streamer.pk) == sum(m.pot for m in won)  # the creator's and the 500
        assert wallet_balance(user_id=creator.pk) == 20_000 - sum(m.pot - 500 for m in won) - late.pot
        assert wallet_balance(user_id=backer.pk) == 20_000 - 500 * len(won)
        delivered = mailbox.delivered()
        assert sum(delivered.values()) == emails and set(delivered.values()) == {1}, delivered
        assert not Notification.objects.filter(sent_at__isnull=True).exists()
        assert_sound()
        fault_report.record(
            operations=len(DECISIONS) + 1 + len(missions) + emails,
            faults=1,
            lost=0,
            failed_enqueues=len(lost_sends),
            beat_reconnects=beat.log.read_text().count("beat: Connection error"),
            slowest_request_in_outage_s=round(max(took), 2),
            settled=len(missions),
            all_done_after_restart_s=round(recovered, 1),
            emails_sent=sum(delivered.values()),
            duplicate_emails=sum(n - 1 for n in delivered.values()),
        )


class TestTheBrokerFrozenWhileAMissionIsDecided:
    """A broker that stops answering without closing its connections (SIGSTOP: a network
    partition, a hung host) must not hold a request after its commit: the send times
    out, is logged, and the sweep sends it again once the broker answers."""

    def test_the_request_answers_within_seconds_and_the_sweep_settles_it_once(
        self, broker, processes, mailbox, fault_report, caplog
    ):
        streamer, creator = UserFactory(is_streamer=True), UserFactory()
        fund(creator, 5_000)
        mission = make_mission(streamer=streamer, creator=creator, amount=2_000, title="Frozen broker")
        processes.worker(MISSIONHUB_RESEND_GRACE_SECONDS="2")
        processes.beat(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1")
        wait_for(lambda: sent() == 1, timeout=60, what="the new-mission email")

        answers = {}

        def decide():
            try:
                start = time.monotonic()
                answers["response"] = as_user(streamer).post(f"/api/missions/{mission.pk}/fail")
                answers["took"] = time.monotonic() - start
            finally:
                connections.close_all()

        request = threading.Thread(target=decide, daemon=True)
        broker.freeze()
        try:
            request.start()
            request.join(timeout=30)
            hung = request.is_alive()
        finally:
            broker.thaw()
            request.join(timeout=60)
        assert not hung, "the decision's request was still waiting on the frozen broker after 30 s"
        assert answers["response"].status_code == 200
        assert any(r.getMessage().startswith("could not enqueue") for r in caplog.records)

        wait_settled(mission.pk, timeout=90, what="the sweep to settle the mission")
        wait_for(lambda: sent() == 2, timeout=60, what="the creator's result email")
        for process in processes.started:
            process.stop()

        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == 1
        assert wallet_balance(user_id=creator.pk) == 5_000
        delivered = mailbox.delivered()
        assert sum(delivered.values()) == 2 and set(delivered.values()) == {1}, delivered
        assert_sound()
        fault_report.record(
            operations=3,
            faults=1,
            lost=0,
            request_in_freeze_s=round(answers["took"], 1),
            settlements=1,
            emails_sent=sum(delivered.values()),
        )
