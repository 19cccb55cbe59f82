"""A worker killed with SIGKILL in the middle of a 10,000-contributor settlement, in its
last chunk: that transaction had written the chunk's refund legs, the wallets' new
balances, the result emails and `settled_at`; none of it survives (the chunks before it
committed, each whole), and after a new worker starts the sweep finishes the settlement
from where it stopped, every contributor refunded exactly once. PostgreSQL only: its
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
    assert_all_chunks_but_the_last,
    assert_refunded_once,
    blocked_settlement,
    chunks_of,
    crowded_mission_failed,
)
from tests.utils import requires_postgresql

pytestmark = [
    requires_postgresql,
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]


class TestAWorkerKilledInTheMiddleOfASettlement:
    def test_the_last_chunk_is_not_written_and_a_new_worker_settles_it_once(
        self, broker, processes, pg_operator, fault_report
    ):
        start = time.monotonic()
        mission = crowded_mission_failed()
        built = time.monotonic() - start

        with pg_operator.table_locked(EVENT_TABLE):
            worker = processes.worker(ready=False)
            blocked = blocked_settlement(pg_operator)
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)
        # The lock is gone: the backend finishes its statement, finds its client gone, rolls back.
        wait_for(lambda: not pg_operator.backend_alive(blocked["pid"]), timeout=30, what="the orphan backend to end")

        assert_all_chunks_but_the_last(mission.pk)
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
            rows_left_by_the_killed_chunk=0,
            settled_by_the_replacement_after_s=round(recovered, 1),
            refunds=chunks_of(CROWD + 1),
            units_refunded=CROWD * PLEDGE + 1_000,
        )
