"""A big settlement commits in chunks of contributors, each its own balanced transaction,
and still pays every contributor exactly once: whatever the chunk size, however often it
is cut short, and with two settlements of one mission running at once."""

import math

import pytest
from django.db import IntegrityError

from ledger.models import Account, Contribution, Notification, Posting, Transaction
from ledger.verify import ledger_verify
from missions import services
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.missions.factories import make_crowded_mission
from tests.utils import requires_postgresql, run_together

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "accounts"])


def _decided(contributors: int, action: str) -> tuple[Mission, object]:
    streamer = UserFactory(is_streamer=True)
    mission = make_crowded_mission(contributors=contributors, streamer=streamer, with_users=False)
    services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action=action)
    return mission, streamer


def _refunded_once(mission: Mission) -> None:
    """Every contributor got back exactly their contribution, in one posting."""
    legs = Posting.objects.filter(
        transaction__kind="refund", transaction__mission_id=mission.pk, account__kind="wallet"
    ).values_list("account__user_id", "amount")
    refunds: dict[int, list[int]] = {}
    for user_id, amount in legs:
        refunds.setdefault(user_id, []).append(amount)
    contributions = dict(Contribution.objects.filter(mission_id=mission.pk).values_list("user_id", "total"))
    assert {user_id: [total] for user_id, total in contributions.items()} == refunds
    assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == 0
    assert not any(ledger_verify().values()), ledger_verify()


class TestChunks:
    def test_a_refund_is_one_balanced_transaction_per_chunk(self, settings):
        settings.MISSIONHUB_SETTLE_CHUNK = 10
        mission, _ = _decided(44, "fail")  # 45 contributors with the creator

        assert services.mission_settle(mission_id=mission.pk) is True

        refunds = Transaction.objects.filter(mission_id=mission.pk, kind="refund")
        assert refunds.count() == 5
        for refund in refunds:
            legs = list(refund.postings.values_list("amount", flat=True))
            assert sum(legs) == 0 and len(legs) <= 11
        _refunded_once(mission)
        mission.refresh_from_db()
        assert mission.settled_at is not None
        assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == 45

    def test_a_chunk_that_fills_exactly_settles_with_the_next_empty_one(self, settings):
        settings.MISSIONHUB_SETTLE_CHUNK = 5
        mission, _ = _decided(9, "fail")  # 10 contributors: two full chunks, then the close

        assert services.mission_settle(mission_id=mission.pk) is True

        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == 2
        _refunded_once(mission)

    def test_a_payout_emails_in_chunks_and_pays_once(self, settings):
        settings.MISSIONHUB_SETTLE_CHUNK = 10
        settings.MISSIONHUB_FEE_BPS = 250
        mission, _ = _decided(44, "success")
        pot = mission.pot

        assert services.mission_settle(mission_id=mission.pk) is True

        payout = Transaction.objects.get(mission_id=mission.pk, kind="payout")
        streamer_leg = payout.postings.get(account__kind="wallet")
        assert streamer_leg.amount == pot - pot * 250 // 10_000
        results = Notification.objects.filter(mission_id=mission.pk, kind="result")
        assert results.count() == 45
        assert set(results.values_list("amount", flat=True)) == {streamer_leg.amount}
        assert not any(ledger_verify().values())


class TestCutShort:
    def test_a_settlement_that_fails_mid_way_goes_on_where_it_stopped(self, settings, monkeypatch):
        settings.MISSIONHUB_SETTLE_CHUNK = 10
        mission, _ = _decided(44, "fail")
        real = services.refund_chunk_post
        calls = []

        def third_chunk_fails(**kwargs):
            calls.append(kwargs["after_user_id"])
            if len(calls) == 3:
                raise RuntimeError("the database went away")
            return real(**kwargs)

        monkeypatch.setattr(services, "refund_chunk_post", third_chunk_fails)
        with pytest.raises(RuntimeError):
            services.mission_settle(mission_id=mission.pk)

        mission.refresh_from_db()
        assert mission.settled_at is None
        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == 2
        assert (
            mission.settle_cursor
            == sorted(Contribution.objects.filter(mission_id=mission.pk).values_list("user_id", flat=True))[19]
        )

        monkeypatch.setattr(services, "refund_chunk_post", real)
        assert services.mission_settle(mission_id=mission.pk) is True
        assert services.mission_settle(mission_id=mission.pk) is False
        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == 5
        _refunded_once(mission)

    def test_a_chunk_is_refused_twice_by_the_database(self, settings, monkeypatch):
        """Should the cursor ever be lost, the chunk's unique reference stops a second posting."""
        settings.MISSIONHUB_SETTLE_CHUNK = 10
        mission, _ = _decided(44, "fail")
        real = services.refund_chunk_post
        calls = []

        def second_chunk_fails(**kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("the worker died")
            return real(**kwargs)

        monkeypatch.setattr(services, "refund_chunk_post", second_chunk_fails)
        with pytest.raises(RuntimeError):
            services.mission_settle(mission_id=mission.pk)
        monkeypatch.setattr(services, "refund_chunk_post", real)
        Mission.objects.filter(pk=mission.pk).update(settle_cursor=None)

        with pytest.raises(IntegrityError):
            services.mission_settle(mission_id=mission.pk)

        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == 1


@requires_postgresql
class TestTogether:
    def test_two_settlements_of_one_mission_at_once_refund_each_contributor_once(self, settings):
        settings.MISSIONHUB_SETTLE_CHUNK = 100
        mission, _ = _decided(2_000, "fail")

        results = run_together([lambda: services.mission_settle(mission_id=mission.pk)] * 2)

        assert not [r for r in results if isinstance(r, Exception)], results
        assert True in results
        refunds = Transaction.objects.filter(mission_id=mission.pk, kind="refund").count()
        assert refunds == math.ceil(2_001 / 100)
        _refunded_once(mission)
