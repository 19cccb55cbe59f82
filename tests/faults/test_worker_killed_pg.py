"""A worker killed with SIGKILL in the middle of a 10,000-contributor settlement: its
transaction had written the refund's 10,002 legs, the wallets' new balances, the result
emails and `settled_at`; none of it survives, and after a new worker starts the sweep
settles the mission once, every contributor refunded exactly. PostgreSQL only: its
pg_stat_activity and table locks stop the settlement at a known statement."""

import os
import signal
import time

import pytest

from ledger.models import Account, Event, Notification, Posting, Transaction
from missions import services
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.faults.crowd import backer_ids, make_crowded_mission_sql
from tests.faults.harness import assert_sound, requires_redis_server, task_results, wait_for
from tests.utils import requires_postgresql

pytestmark = [
    requires_postgresql,
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

CROWD = 10_000
PLEDGE = 100  # each backer's, besides the creator's 1,000
EVENT_TABLE = Event._meta.db_table


def ledger_rows(mission_id: int) -> dict[str, object]:
    """What a settlement of the mission would change."""
    escrow = Account.objects.get(kind="escrow", mission_id=mission_id)
    mission = Mission.objects.get(pk=mission_id)
    return {
        "postings": Posting.objects.count(),
        "transactions": Transaction.objects.count(),
        "emails": Notification.objects.filter(mission_id=mission_id).count(),
        "events": Event.objects.filter(mission_id=mission_id).count(),
        "escrow": (escrow.balance, escrow.version),
        "refunded wallets": Account.objects.filter(kind="wallet", balance__gt=0).count(),
        "settled_at": mission.settled_at,
    }


def crowded_mission_decided():
    streamer = UserFactory(is_streamer=True)
    mission = make_crowded_mission_sql(contributors=CROWD, amount=PLEDGE, streamer=streamer)
    services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
    return mission


def blocked_settlement(pg_operator) -> dict:
    """The worker's settlement, waiting to append `settled`: everything else is written."""
    blocked = wait_for(
        lambda: pg_operator.waiting_backend(statement_prefix=f'INSERT INTO "{EVENT_TABLE}"'),
        timeout=90,
        what="the settlement to reach its last statement",
        interval=0.05,
    )
    assert blocked["has_written"]
    for table in (Posting, Account, Notification, Mission):
        assert pg_operator.holds_write_lock(blocked["pid"], table._meta.db_table), table
    return blocked


def assert_refunded_once(mission) -> None:
    mission.refresh_from_db()
    assert mission.settled_at is not None
    (refund,) = Transaction.objects.filter(mission_id=mission.pk, kind__in=["refund", "payout"])
    assert refund.kind == "refund"
    assert Posting.objects.filter(transaction=refund).count() == CROWD + 2  # the creator's and the escrow's
    assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == 0
    backers = Account.objects.filter(kind="wallet", user_id__range=backer_ids(mission.pk))
    assert backers.count() == CROWD
    assert backers.filter(balance=PLEDGE).count() == CROWD  # exactly what each put in
    assert Account.objects.get(kind="wallet", user_id=mission.creator_id).balance == 1_000
    assert Event.objects.filter(mission_id=mission.pk, kind="settled").count() == 1
    assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == CROWD + 1


class TestAWorkerKilledInTheMiddleOfASettlement:
    def test_nothing_is_written_and_a_new_worker_settles_it_once(self, broker, processes, pg_operator, fault_report):
        start = time.monotonic()
        mission = crowded_mission_decided()
        built = time.monotonic() - start
        before = ledger_rows(mission.pk)

        with pg_operator.table_locked(EVENT_TABLE):
            worker = processes.worker(ready=False)
            blocked = blocked_settlement(pg_operator)
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)
        # The lock is gone: the backend finishes its statement, finds its client gone, rolls back.
        wait_for(lambda: not pg_operator.backend_alive(blocked["pid"]), timeout=30, what="the orphan backend to end")

        assert ledger_rows(mission.pk) == before
        assert_sound()

        start = time.monotonic()
        replacement = processes.worker(MISSIONHUB_RESEND_GRACE_SECONDS="1")
        processes.beat(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1")
        wait_for(
            lambda: Mission.objects.filter(pk=mission.pk, settled_at__isnull=False).exists(),
            timeout=90,
            what="the sweep to settle the mission again",
        )
        recovered = time.monotonic() - start

        assert_refunded_once(mission)
        assert task_results(replacement.log, name="missions.settle_mission") == ["True"]
        assert_sound()
        fault_report.record(
            operations=1,
            faults=1,
            lost=0,
            contributors=CROWD,
            crowd_built_s=round(built, 1),
            killed_waiting_on="INSERT-settled-event",
            rows_left_by_the_killed_transaction=0,
            settled_by_the_replacement_after_s=round(recovered, 1),
            refunds=1,
            units_refunded=CROWD * PLEDGE + 1_000,
        )
