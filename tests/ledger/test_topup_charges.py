"""A top-up's charge is recorded before the payment provider is asked, so that no charge
is ever lost (issue 8, defect 4): a ledger write that fails after the provider charged
the card (SQLite's busy timeout behind a large settlement, a crash) is posted once by the
sweep; a charge the provider never made is abandoned; a retry with the same key, a twin
and the sweep post one top-up between them."""

from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.db.models import F

from ledger import services as ledger_services
from ledger.errors import IdempotencyKeyReused, PaymentDeclined
from ledger.idempotency import IdempotentRequest, fingerprint_of, idempotency_run
from ledger.models import Account, SandboxCharge, TopupCharge, Transaction
from ledger.payments import SandboxProvider
from ledger.selectors import wallet_balance
from ledger.services import topup_charge_complete, topup_charges_reconcile, wallet_get_or_create, wallet_topup
from ledger.verify import topups_without_their_charge
from missions.services import missions_sweep
from tests.accounts.factories import UserFactory
from tests.utils import both_databases, requires_postgresql, run_together

pytestmark = both_databases


def fail_the_ledger_write_once(monkeypatch):
    """The write after the provider's answer fails, as SQLite's busy timeout would."""
    real = ledger_services.transaction_post
    calls = []

    def post(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(**kwargs)

    monkeypatch.setattr(ledger_services, "transaction_post", post)


def time_passes(seconds: int = 3600) -> None:
    TopupCharge.objects.update(created_at=F("created_at") - timedelta(seconds=seconds))


def keyed(user, key: str, amount: int) -> IdempotentRequest:
    return IdempotentRequest(
        user_id=user.pk,
        key=key,
        fingerprint=fingerprint_of(method="POST", path="/api/wallet/topups", data={"amount": amount}),
        render=lambda topup: (201, {"id": topup.id, "amount": topup.amount, "balance": topup.balance}),
    )


def keyed_topup(user, key: str, amount: int):
    request = keyed(user, key, amount)
    return idempotency_run(
        request=request, action=lambda r: wallet_topup(user_id=user.pk, amount=amount, idempotency=r)
    )


class TestTheChargeIsRecordedFirst:
    def test_a_charge_whose_ledger_write_failed_is_posted_once_by_the_sweep(self, user, monkeypatch):
        fail_the_ledger_write_once(monkeypatch)
        with pytest.raises(OperationalError):
            wallet_topup(user_id=user.pk, amount=5_000)
        assert SandboxCharge.objects.filter(user_id=user.pk, amount=5_000).count() == 1  # the card was charged
        assert wallet_balance(user_id=user.pk) == 0

        assert missions_sweep(batch_size=10).topups_reconciled == 0  # not before the grace period
        time_passes()
        report = missions_sweep(batch_size=10)
        again = missions_sweep(batch_size=10)

        assert (report.topups_reconciled, again.topups_reconciled) == (1, 0)
        assert wallet_balance(user_id=user.pk) == 5_000
        charge = TopupCharge.objects.get()
        assert charge.status == TopupCharge.Status.COMPLETED
        assert charge.transaction.reference == charge.reference == SandboxCharge.objects.get().reference
        assert Transaction.objects.filter(kind=Transaction.Kind.TOPUP).count() == 1

    def test_the_pending_charge_is_written_before_the_provider_is_asked(self, user, monkeypatch):
        seen, real = [], SandboxProvider.charge

        def charge(provider, **kwargs):
            seen.append(list(TopupCharge.objects.values_list("status", "amount", "provider_key")))
            return real(provider, **kwargs)

        monkeypatch.setattr(SandboxProvider, "charge", charge)

        wallet_topup(user_id=user.pk, amount=2_000)

        [[(status, amount, provider_key)]] = seen
        assert (status, amount) == (TopupCharge.Status.PENDING, 2_000)
        assert SandboxCharge.objects.get().key == str(provider_key)  # the provider saw the charge's own key

    def test_a_charge_the_provider_never_made_is_abandoned_and_moves_nothing(self, user, monkeypatch):
        def unreachable(provider, **kwargs):
            raise ConnectionError("the provider did not answer")

        monkeypatch.setattr(SandboxProvider, "charge", unreachable)
        with pytest.raises(ConnectionError):
            wallet_topup(user_id=user.pk, amount=5_000)
        time_passes()

        assert missions_sweep(batch_size=10).topups_reconciled == 0
        assert TopupCharge.objects.get().status == TopupCharge.Status.ABANDONED
        assert not Transaction.objects.exists()
        assert not SandboxCharge.objects.exists()

    def test_a_declined_charge_moves_nothing_and_stays_declined_for_its_key(self, user, monkeypatch):
        asked = []

        def decline(provider, **kwargs):
            asked.append(kwargs)
            raise PaymentDeclined()

        monkeypatch.setattr(SandboxProvider, "charge", decline)
        for _ in range(2):
            with pytest.raises(PaymentDeclined):
                keyed_topup(user, "card-1", 5_000)

        assert len(asked) == 1  # the retry gets the same answer without charging again
        assert TopupCharge.objects.get().status == TopupCharge.Status.DECLINED
        assert not Transaction.objects.exists()
        time_passes()
        assert missions_sweep(batch_size=10).topups_reconciled == 0


class TestOneTopupPerCharge:
    def test_a_retry_with_the_same_key_after_the_failure_posts_once(self, user, monkeypatch):
        fail_the_ledger_write_once(monkeypatch)
        with pytest.raises(OperationalError):
            keyed_topup(user, "retry-1", 5_000)

        status, body, replayed = keyed_topup(user, "retry-1", 5_000)
        time_passes()
        reconciled = topup_charges_reconcile(older_than=timedelta(0))

        assert (status, body["balance"], replayed, reconciled) == (201, 5_000, False, 0)
        assert SandboxCharge.objects.count() == TopupCharge.objects.count() == 1
        assert wallet_balance(user_id=user.pk) == 5_000

    def test_a_retry_after_the_sweep_completed_the_charge_answers_with_that_top_up(self, user, monkeypatch):
        fail_the_ledger_write_once(monkeypatch)
        with pytest.raises(OperationalError):
            keyed_topup(user, "late-1", 5_000)
        time_passes()
        assert topup_charges_reconcile(older_than=timedelta(seconds=60)) == 1

        status, body, replayed = keyed_topup(user, "late-1", 5_000)
        again = keyed_topup(user, "late-1", 5_000)

        assert (status, body["balance"], replayed) == (201, 5_000, False)
        assert body["id"] == Transaction.objects.get(kind=Transaction.Kind.TOPUP).pk
        assert again == (status, body, True)
        assert wallet_balance(user_id=user.pk) == 5_000

    def test_the_same_key_with_another_amount_is_refused_before_any_charge(self, user, monkeypatch):
        fail_the_ledger_write_once(monkeypatch)
        with pytest.raises(OperationalError):
            keyed_topup(user, "k", 5_000)

        with pytest.raises(IdempotencyKeyReused):
            keyed_topup(user, "k", 6_000)

        assert SandboxCharge.objects.count() == 1
        time_passes()
        assert topup_charges_reconcile(older_than=timedelta(0)) == 1
        assert wallet_balance(user_id=user.pk) == 5_000

    def test_completing_a_charge_twice_posts_once(self, user, monkeypatch):
        fail_the_ledger_write_once(monkeypatch)
        with pytest.raises(OperationalError):
            wallet_topup(user_id=user.pk, amount=3_000)
        charge = TopupCharge.objects.get()
        answer = SandboxProvider().find(idempotency_key=str(charge.provider_key))

        first = topup_charge_complete(charge_id=charge.pk, answer=answer)
        second = topup_charge_complete(charge_id=charge.pk, answer=answer)

        assert first == second
        assert wallet_balance(user_id=user.pk) == 3_000

    def test_a_provider_failing_on_one_charge_does_not_stop_the_others(self, monkeypatch):
        users = UserFactory.create_batch(3)
        for user in users:
            fail_the_ledger_write_once(monkeypatch)
            with pytest.raises(OperationalError):
                wallet_topup(user_id=user.pk, amount=1_000)
        time_passes()
        broken = str(TopupCharge.objects.get(user_id=users[1].pk).provider_key)
        real_find = SandboxProvider.find

        def find(provider, *, idempotency_key):
            if idempotency_key == broken:
                raise ConnectionError("the provider did not answer")
            return real_find(provider, idempotency_key=idempotency_key)

        monkeypatch.setattr(SandboxProvider, "find", find)

        assert topup_charges_reconcile(older_than=timedelta(0)) == 2
        assert [wallet_balance(user_id=u.pk) for u in users] == [1_000, 0, 1_000]
        assert TopupCharge.objects.get(user_id=users[1].pk).status == TopupCharge.Status.PENDING


@pytest.mark.ledger_unsound
class TestLedgerVerifyPairsTopupsWithCharges:
    def test_a_top_up_without_a_charge_is_reported(self, user):
        with transaction.atomic():
            wallet = wallet_get_or_create(user_id=user.pk)
            external = ledger_services.system_account(Account.Kind.EXTERNAL)
            tx = ledger_services.transaction_post(
                kind=Transaction.Kind.TOPUP, legs={external.pk: -1_000, wallet.pk: 1_000}, actor_id=user.pk
            )

        assert topups_without_their_charge() == [f"top-up transaction {tx.pk} has no completed charge"]

    def test_a_charge_for_another_amount_than_its_top_up_is_reported(self, user):
        wallet_topup(user_id=user.pk, amount=1_000)
        charge = TopupCharge.objects.get()
        TopupCharge.objects.filter(pk=charge.pk).update(amount=2_000)

        assert topups_without_their_charge() == [
            f"charge {charge.pk} does not match its top-up transaction {charge.transaction_id}"
        ]


@requires_postgresql
@pytest.mark.django_db(transaction=True, databases=["default", "accounts"])
class TestRacesOnPostgreSQL:
    def test_the_sweep_and_two_retries_racing_post_one_top_up(self, monkeypatch):
        user = UserFactory()
        fail_the_ledger_write_once(monkeypatch)
        with pytest.raises(OperationalError):
            keyed_topup(user, "race", 4_000)
        time_passes()

        results = run_together(
            [
                lambda: keyed_topup(user, "race", 4_000),
                lambda: keyed_topup(user, "race", 4_000),
                lambda: topup_charges_reconcile(older_than=timedelta(0)),
            ]
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        assert results[0][1] == results[1][1]  # both answers name the same top-up
        assert wallet_balance(user_id=user.pk) == 4_000
        assert Transaction.objects.filter(kind=Transaction.Kind.TOPUP).count() == 1
        assert SandboxCharge.objects.count() == 1
