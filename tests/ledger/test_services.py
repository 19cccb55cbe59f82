import threading

import pytest
from django.db import connections, transaction

from ledger.errors import InsufficientFunds, UnbalancedTransaction
from ledger.models import Account, Posting, Transaction
from ledger.payments import SandboxProvider
from ledger.selectors import system_balance, wallet_balance
from ledger.services import system_account, transaction_post, wallet_get_or_create, wallet_topup
from missionhub.errors import MissionHubError
from missions.services import mission_decide, mission_settle
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases, requires_postgresql

pytestmark = both_databases


class TestTransactionPost:
    def test_moves_cash_and_chains_each_accounts_versions(self, user):
        wallet_topup(user_id=user.pk, amount=1_000)
        wallet_topup(user_id=user.pk, amount=2_500)

        postings = list(Posting.objects.filter(account__user_id=user.pk).order_by("version"))
        assert [(p.amount, p.balance_after, p.version) for p in postings] == [(1_000, 1_000, 1), (2_500, 3_500, 2)]
        wallet = wallet_get_or_create(user_id=user.pk)
        assert (wallet.balance, wallet.version) == (3_500, 2)

    def test_writes_many_legs_in_a_constant_number_of_queries(self, django_assert_num_queries):
        users = UserFactory.create_batch(12)
        with transaction.atomic():
            wallets = [wallet_get_or_create(user_id=u.pk) for u in users]
            external = system_account(Account.Kind.EXTERNAL)

        with django_assert_num_queries(6, using="default"), transaction.atomic():
            # savepoint, lock accounts (not the system account), insert transaction, insert
            # postings, update accounts, release
            transaction_post(kind="reversal", legs={external.pk: -1_200, **{w.pk: 100 for w in wallets}})

        assert all(wallet_balance(user_id=u.pk) == 100 for u in users)

    def test_refuses_legs_that_do_not_balance(self, user):
        with transaction.atomic():
            wallet = wallet_get_or_create(user_id=user.pk)
            external = system_account(Account.Kind.EXTERNAL)

        with pytest.raises(UnbalancedTransaction), transaction.atomic():
            transaction_post(kind="reversal", legs={external.pk: -100, wallet.pk: 99})

        assert not Transaction.objects.exists()

    def test_refuses_to_take_a_wallet_below_zero_and_writes_nothing(self, user):
        wallet_topup(user_id=user.pk, amount=1_000)
        other = UserFactory()
        with transaction.atomic():
            source = wallet_get_or_create(user_id=user.pk)
            target = wallet_get_or_create(user_id=other.pk)

        with pytest.raises(InsufficientFunds), transaction.atomic():
            transaction_post(kind="reversal", legs={source.pk: -1_001, target.pk: 1_001})

        assert wallet_balance(user_id=user.pk) == 1_000
        assert Transaction.objects.count() == 1

    @pytest.mark.django_db(transaction=True, databases=["default", "accounts"])
    def test_must_run_inside_the_callers_transaction(self, user):
        with pytest.raises(RuntimeError):
            transaction_post(kind="reversal", legs={1: -1, 2: 1})


class TestWalletTopup:
    def test_takes_cash_from_the_external_account(self, user):
        topup = wallet_topup(user_id=user.pk, amount=5_000)

        assert (topup.amount, topup.balance) == (5_000, 5_000)
        assert system_balance(kind=Account.Kind.EXTERNAL) == -5_000
        assert Transaction.objects.get(pk=topup.id).reference.startswith("sandbox_")


class TestWalletTopupValidatesItsInput:
    """The service refuses what the API's serializer would, whoever calls it."""

    @pytest.mark.parametrize(
        ("amount", "code"),
        [(-500, "min_value"), (0, "min_value"), (999, "min_value"), (1_000_001, "max_value"), ("5000", "invalid")],
    )
    def test_refuses_an_amount_outside_the_settings_and_moves_nothing(self, user, amount, code):
        with pytest.raises(MissionHubError) as caught:
            wallet_topup(user_id=user.pk, amount=amount)

        assert caught.value.code == code
        assert caught.value.field == "amount"
        assert not Transaction.objects.exists()

    def test_refuses_before_the_payment_provider_is_asked(self, user, monkeypatch):
        asked = []
        monkeypatch.setattr(SandboxProvider, "charge", lambda self, **kw: asked.append(kw))

        with pytest.raises(MissionHubError):
            wallet_topup(user_id=user.pk, amount=-1)

        assert asked == []

    def test_takes_the_limits_from_the_settings(self, user, settings):
        settings.MISSIONHUB_TOPUP_MIN = 10

        assert wallet_topup(user_id=user.pk, amount=10).balance == 10


@requires_postgresql
@pytest.mark.django_db(transaction=True, databases=["default", "accounts"])
class TestSystemAccountsAreNeverLocked:
    """Every top-up has `external` on its other side, every fee `fees`: were their rows
    locked, all top-ups would queue on one row. A transaction that has posted to the
    system account and not yet committed stops no other."""

    @pytest.fixture
    def in_flight(self):
        """Post `legs` in a transaction of another connection that stays open."""
        posted, release = threading.Event(), threading.Event()

        def hold(legs: dict) -> None:
            def holder():
                try:
                    with transaction.atomic():
                        transaction_post(kind="reversal", legs=legs)
                        posted.set()
                        release.wait(30)
                finally:
                    connections.close_all()

            threading.Thread(target=holder).start()
            assert posted.wait(10)

        yield hold
        release.set()

    def _finishes(self, job) -> bool:
        done = threading.Event()

        def run():
            try:
                job()
                done.set()
            finally:
                connections.close_all()

        threading.Thread(target=run, daemon=True).start()
        return done.wait(5)

    def test_a_top_up_does_not_wait_for_another_in_flight(self, in_flight):
        first, second = UserFactory(), UserFactory()
        with transaction.atomic():
            wallet, external = wallet_get_or_create(user_id=first.pk), system_account(Account.Kind.EXTERNAL)
        in_flight({external.pk: -5_000, wallet.pk: 5_000})

        assert self._finishes(lambda: wallet_topup(user_id=second.pk, amount=5_000))
        assert wallet_balance(user_id=second.pk) == 5_000

    def test_a_payout_with_a_fee_does_not_wait_for_another_fee_in_flight(self, in_flight, settings):
        settings.MISSIONHUB_FEE_BPS = 1_000
        streamer, other = UserFactory(is_streamer=True), UserFactory()
        fund(other, 1_000)
        mission = make_mission(streamer=streamer, amount=1_000)
        mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")
        with transaction.atomic():
            wallet, fees = wallet_get_or_create(user_id=other.pk), system_account(Account.Kind.FEES)
        in_flight({wallet.pk: -10, fees.pk: 10})

        assert self._finishes(lambda: mission_settle(mission_id=mission.pk))
        assert wallet_balance(user_id=streamer.pk) == 900
