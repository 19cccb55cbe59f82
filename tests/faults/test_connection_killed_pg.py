"""A database connection killed (`pg_terminate_backend`) in the middle of a pledge and in
the middle of a settlement: nothing half-written. The pledge's request fails and the same
request (its Idempotency-Key) goes through once afterwards; the settlement's failure is
recorded and the sweep settles the mission once, on the worker that lost its connection.
PostgreSQL only: its table locks stop each transaction at a known statement."""

import threading
import time

import pytest
from django.db import connections
from rest_framework.test import APIClient

from ledger.models import Account, Event, IdempotencyRecord, Posting, Transaction
from ledger.selectors import wallet_balance
from missions.models import Mission, SweepFailure
from tests.accounts.factories import UserFactory
from tests.faults.harness import assert_sound, requires_redis_server, task_results, wait_for, wait_settled
from tests.faults.settlement import (
    CROWD,
    EVENT_TABLE,
    PLEDGE,
    assert_all_chunks_but_the_last,
    assert_refunded_once,
    blocked_before_its_event,
    blocked_settlement,
    crowded_mission_failed,
)
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True, databases=["default", "accounts"])]


def pledge_rows(mission_id: int, user_id: int) -> dict[str, object]:
    """Everything a pledge would change."""
    escrow = Account.objects.get(kind="escrow", mission_id=mission_id)
    mission = Mission.objects.get(pk=mission_id)
    return {
        "wallet": wallet_balance(user_id=user_id),
        "escrow": (escrow.balance, escrow.version),
        "pot": (mission.pot, mission.contributor_count),
        "postings": Posting.objects.count(),
        "transactions": Transaction.objects.count(),
        "events": Event.objects.count(),
        "idempotency records": IdempotencyRecord.objects.count(),
    }


class TestAConnectionKilledInTheMiddleOfAPledge:
    def test_nothing_is_half_written_and_the_same_request_goes_through_once_after(self, pg_operator, fault_report):
        viewer = UserFactory()
        fund(viewer, 5_000)
        mission = make_mission(amount=1_000)
        before = pledge_rows(mission.pk, viewer.pk)
        client = APIClient(raise_request_exception=False)
        client.force_authenticate(user=viewer)

        def pledge():
            return client.post(
                f"/api/missions/{mission.pk}/pledges", {"amount": 700}, format="json", HTTP_IDEMPOTENCY_KEY="pledge-1"
            )

        answers = {}

        def request_in_its_own_thread():
            try:
                answers["killed"] = pledge()
            finally:
                connections.close_all()

        request = threading.Thread(target=request_in_its_own_thread)
        with pg_operator.table_locked(EVENT_TABLE):
            request.start()
            blocked = blocked_before_its_event(
                pg_operator,
                written=(IdempotencyRecord, Transaction, Posting, Account, Mission),
                what="the pledge to reach its event",
                timeout=30,
            )
            pg_operator.terminate(blocked["pid"])
            request.join(timeout=30)

        assert answers["killed"].status_code == 500
        assert pledge_rows(mission.pk, viewer.pk) == before
        assert_sound()

        again = pledge()
        replayed = pledge()

        assert again.status_code == 201, again.content
        assert replayed.status_code == 201 and replayed.json() == again.json()
        assert replayed.headers.get("Idempotent-Replayed") == "true"
        assert wallet_balance(user_id=viewer.pk) == 5_000 - 700
        mission.refresh_from_db()
        assert (mission.pot, mission.contributor_count) == (1_700, 2)
        assert Transaction.objects.filter(mission_id=mission.pk, kind="pledge", actor_id=viewer.pk).count() == 1
        assert_sound()
        fault_report.record(
            operations=3, faults=pg_operator.terminated, lost=0, half_written_rows=0, pledges_moved=1, units_moved=700
        )


@requires_redis_server
@pytest.mark.worker
class TestAConnectionKilledInTheMiddleOfASettlement:
    def test_the_failure_is_recorded_and_the_sweep_settles_it_once(self, broker, processes, pg_operator, fault_report):
        mission = crowded_mission_failed()

        with pg_operator.table_locked(EVENT_TABLE):
            worker = processes.worker(
                ready=False, MISSIONHUB_SWEEP_RETRY_SECONDS="1", MISSIONHUB_RESEND_GRACE_SECONDS="1"
            )
            blocked = blocked_settlement(pg_operator)
            pg_operator.terminate(blocked["pid"])
            failure = wait_for(
                lambda: SweepFailure.objects.filter(mission=mission, step="settle").first(),
                timeout=30,
                what="the worker to record the failed settlement",
            )
        assert "terminating connection" in failure.last_error
        assert failure.resolved_at is None
        assert_all_chunks_but_the_last(mission.pk)
        assert worker.process.poll() is None  # the worker lived through it
        assert_sound()

        start = time.monotonic()
        processes.beat(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1")
        wait_settled(mission.pk, timeout=90, what="the sweep to settle the mission")
        recovered = time.monotonic() - start

        assert_refunded_once(mission)
        failure.refresh_from_db()
        assert failure.resolved_at is not None and failure.attempts == 1
        settles = task_results(worker.log, name="missions.settle_mission")
        assert settles[0] == "False" and settles.count("True") == 1, settles
        assert_sound()
        fault_report.record(
            operations=1,
            faults=pg_operator.terminated,
            lost=0,
            contributors=CROWD,
            half_written_rows=0,
            settle_runs=len(settles),
            settlements=settles.count("True"),
            settled_by_the_sweep_after_s=round(recovered, 1),
            units_refunded=CROWD * PLEDGE + 1_000,
        )
