"""Races that only a real database with row locks can referee: PostgreSQL only.

Each test starts threads, each with its own database connection, at one barrier.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from ledger.errors import InsufficientFunds
from ledger.models import Account, Event, Transaction
from ledger.selectors import wallet_balance
from missions import services
from missions.errors import MissionClosed
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import requires_postgresql, run_together

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True, databases=["default", "accounts"])]


class TestConcurrentPledges:
    def test_fifty_pledges_lose_and_double_no_unit(self):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer, amount=1_000)
        viewers = UserFactory.create_batch(25)
        for i, viewer in enumerate(viewers):
            fund(viewer, 1_000 if i % 3 else 1_500)  # every third can afford both of its pledges
        jobs = [
            (lambda v=viewer: services.pledge_create(mission_id=mission.pk, user_id=v.pk, amount=750))
            for viewer in viewers
            for _ in range(2)
        ]

        results = run_together(jobs)

        pledged = [r for r in results if isinstance(r, services.Pledge)]
        refused = [r for r in results if isinstance(r, InsufficientFunds)]
        assert len(pledged) + len(refused) == 50, [r for r in results if isinstance(r, Exception)]
        assert len(pledged) == 25 + 9  # one each, and a second for the nine who had 1,500
        mission.refresh_from_db()
        assert mission.pot == 1_000 + 750 * len(pledged)
        assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == mission.pot
        assert mission.contributor_count == 1 + 25
        for i, viewer in enumerate(viewers):
            expected = 0 if i % 3 == 0 else 250
            assert wallet_balance(user_id=viewer.pk) == expected
        assert Event.objects.filter(mission_id=mission.pk, kind="pledged").count() == len(pledged)


class TestPledgesRacingADecision:
    @pytest.mark.parametrize("action", ["success", "fail"])
    def test_each_pledge_is_settled_or_refused_as_closed(self, action):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer, amount=1_000)
        viewers = UserFactory.create_batch(20)
        for viewer in viewers:
            fund(viewer, 1_000)
        jobs = [
            (lambda v=viewer: services.pledge_create(mission_id=mission.pk, user_id=v.pk, amount=400))
            for viewer in viewers
        ]
        jobs.insert(10, lambda: services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action=action))

        results = run_together(jobs)
        services.mission_settle(mission_id=mission.pk)

        outcomes = results[:10] + results[11:]
        pledged = [v for v, r in zip(viewers, outcomes, strict=True) if isinstance(r, services.Pledge)]
        closed = [v for v, r in zip(viewers, outcomes, strict=True) if isinstance(r, MissionClosed)]
        assert len(pledged) + len(closed) == 20, results
        pot = 1_000 + 400 * len(pledged)
        assert Mission.objects.get(pk=mission.pk).pot == pot
        for viewer in closed:
            assert wallet_balance(user_id=viewer.pk) == 1_000
        if action == "success":
            assert wallet_balance(user_id=streamer.pk) == pot
            assert all(wallet_balance(user_id=v.pk) == 600 for v in pledged)
        else:
            assert wallet_balance(user_id=streamer.pk) == 0
            assert all(wallet_balance(user_id=v.pk) == 1_000 for v in pledged)


class TestConcurrentSettlement:
    def test_settle_mission_run_five_times_at_once_pays_once(self):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer, amount=5_000)
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")

        results = run_together([lambda: services.mission_settle(mission_id=mission.pk)] * 5)

        assert sorted(results, key=str) == [False, False, False, False, True]
        assert wallet_balance(user_id=streamer.pk) == 5_000
        assert Transaction.objects.filter(mission_id=mission.pk, kind="payout").count() == 1
        assert Event.objects.filter(mission_id=mission.pk, kind="settled").count() == 1


class TestConcurrentSweeps:
    def test_two_sweeps_expire_each_due_mission_once(self):
        missions = [make_mission() for _ in range(12)]
        Mission.objects.filter(pk__in=[m.pk for m in missions]).update(deadline=timezone.now() - timedelta(seconds=1))

        results = run_together([lambda: services.missions_expire_due(limit=5) for _ in range(4)])

        assert all(isinstance(r, int) for r in results), results
        assert sum(results) == Mission.objects.filter(status="expired").count() == 12
        assert Event.objects.filter(kind="expired").count() == sum(results)

    def test_a_sweep_passes_over_a_mission_locked_by_a_pledge(self):
        mission = make_mission()
        Mission.objects.filter(pk=mission.pk).update(deadline=timezone.now() - timedelta(seconds=1))
        from django.db import transaction

        locked, release = threading.Event(), threading.Event()

        def hold_the_row():
            with transaction.atomic():
                Mission.objects.select_for_update().get(pk=mission.pk)
                locked.set()
                release.wait(10)
            connections.close_all()

        holder = threading.Thread(target=hold_the_row)
        holder.start()
        locked.wait(10)

        skipped = services.missions_expire_due(limit=10)
        release.set()
        holder.join()
        after = services.missions_expire_due(limit=10)

        assert (skipped, after) == (0, 1)
