"""A worker killed with SIGKILL in the middle of a 10,000-contributor settlement: its
transaction had written the refund's 10,002 legs, the wallets' new balances, the result
emails and `settled_at`; none of it survives, and after a new worker starts the sweep
settles the mission once, every contributor refunded exactly. PostgreSQL only: its
pg_stat_activity and table locks stop the settlement at a known statement."""

import os
import signal
import time

import pytest

from tests.faults.harness import assert_sound, requires_redis_server, task_results, wait_for, wait_settled
from tests.faults.settlement import (
    CROWD,
    EVENT_TABLE,
    PLEDGE,
    assert_refunded_once,
    blocked_settlement,
    crowded_mission_failed,
    ledger_rows,
)
from tests.utils import requires_postgresql

pytestmark = [
    requires_postgresql,
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]


class TestAWorkerKilledInTheMiddleOfASettlement:
    def test_nothing_is_written_and_a_new_worker_settles_it_once(self, broker, processes, pg_operator, fault_report):
        start = time.monotonic()
        mission = crowded_mission_failed()
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
        wait_settled(mission.pk, timeout=90, what="the sweep to settle the mission again")
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
