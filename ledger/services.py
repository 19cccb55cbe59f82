"""Writes to the ledger. Every cash movement goes through `transaction_post`.

Lock order, everywhere: the mission row first (taken by the missions app), then
accounts by ascending id. Locks are held only for local statements: no email, broker
call or HTTP request runs inside a money transaction.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from .errors import AmountAboveMaximum, AmountBelowMinimum, AmountInvalid, InsufficientFunds, UnbalancedTransaction
from .idempotency import IdempotentRequest, idempotency_claim, idempotency_complete
from .models import Account, Event, Posting, Transaction
from .payments import payment_provider


def _require_transaction() -> None:
    if not connections["default"].in_atomic_block:
        raise RuntimeError("ledger writes must run inside the caller's database transaction")


def amount_validate(*, amount: object, min_setting: str, max_setting: str) -> int:
    """`amount` as a whole number of cash units within two settings' limits, or a refusal.

    Every money service checks its own amounts with this, whoever calls it: the API's
    fields and the pages' forms only give nicer messages first. Raises AmountInvalid
    (not an int, or a bool), AmountBelowMinimum, AmountAboveMaximum.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise AmountInvalid()
    low, high = getattr(settings, min_setting), getattr(settings, max_setting)
    if amount < low or amount <= 0:
        raise AmountBelowMinimum(minimum=max(low, 1))
    if amount > high:
        raise AmountAboveMaximum(maximum=high)
    return amount


FEE_BPS_MAX = 10_000


def fee_bps() -> int:
    """The platform's cut of a payout in basis points, 0..10,000 (settings refuse others at
    start-up; this refuses them again should anything change the setting later)."""
    bps = settings.MISSIONHUB_FEE_BPS
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= FEE_BPS_MAX:
        raise ImproperlyConfigured(f"MISSIONHUB_FEE_BPS={bps!r} is not a whole number from 0 to {FEE_BPS_MAX}.")
    return bps


def system_account(kind: str) -> Account:
    """The one `external` or `fees` account, created on first use."""
    account, _ = Account.objects.get_or_create(kind=kind)
    return account


def wallet_get_or_create(*, user_id: int) -> Account:
    account, _ = Account.objects.get_or_create(kind=Account.Kind.WALLET, user_id=user_id)
    return account


def escrow_create(*, mission_id: int) -> Account:
    return Account.objects.create(kind=Account.Kind.ESCROW, mission_id=mission_id)


def transaction_post(
    *,
    kind: str,
    legs: Mapping[int, int],
    mission_id: int | None = None,
    actor_id: int | None = None,
    reference: str | None = None,
) -> Transaction:
    """Write one balanced transaction: `legs` maps account id -> signed amount.

    Runs inside the caller's database transaction. Locks the accounts by ascending id,
    refuses to take any account but `external` below zero (InsufficientFunds, naming
    nothing: the caller knows whose wallet it was), then writes the transaction, its
    postings and the accounts' new balances and versions in three statements however
    many legs there are.
    """
    _require_transaction()
    legs = {account_id: amount for account_id, amount in legs.items() if amount != 0}
    if len(legs) < 2 or sum(legs.values()) != 0:
        raise UnbalancedTransaction(f"{kind}: legs {legs} do not balance")

    accounts = list(Account.objects.select_for_update().filter(pk__in=legs).order_by("pk"))
    if len(accounts) != len(legs):
        raise UnbalancedTransaction(f"{kind}: unknown account in {sorted(legs)}")
    for account in accounts:
        if account.balance + legs[account.pk] < 0 and account.kind != Account.Kind.EXTERNAL:
            raise InsufficientFunds()

    tx = Transaction.objects.create(kind=kind, mission_id=mission_id, actor_id=actor_id, reference=reference)
    Posting.objects.bulk_create(
        Posting(
            transaction=tx,
            account_id=account.pk,
            amount=legs[account.pk],
            balance_after=account.balance + legs[account.pk],
            version=account.version + 1,
        )
        for account in accounts
    )
    _accounts_apply(legs)
    return tx


# Legs per UPDATE statement: two parameters each stays under SQLite's limit of 32,766.
_APPLY_BATCH = 5_000


def _accounts_apply(legs: Mapping[int, int]) -> None:
    """Add each leg to its account's balance and bump its version: one UPDATE ... FROM a
    VALUES list per batch of legs, which PostgreSQL and SQLite (3.33+) both run as a join."""
    table = connections["default"].ops.quote_name(Account._meta.db_table)
    items = sorted(legs.items())
    with connections["default"].cursor() as cursor:
        for start in range(0, len(items), _APPLY_BATCH):
            batch = items[start : start + _APPLY_BATCH]
            rows = ", ".join(["(%s, %s)"] * len(batch))
            cursor.execute(
                f"WITH legs (account_id, amount) AS (VALUES {rows}) "  # noqa: S608 - only placeholders interpolated
                f"UPDATE {table} SET balance = {table}.balance + legs.amount, version = {table}.version + 1 "
                f"FROM legs WHERE {table}.id = legs.account_id",
                [value for leg in batch for value in leg],
            )


def event_append(*, mission_id: int, kind: str, actor_id: int | None = None, amount: int | None = None) -> Event:
    """The only writer of `Event` rows. Its post_save signal enqueues the event's task on commit."""
    _require_transaction()
    event = Event(mission_id=mission_id, kind=kind, actor_id=actor_id, amount=amount)
    event.save(using="default")
    return event


@dataclass(frozen=True)
class Topup:
    id: int
    amount: int
    balance: int


def wallet_topup(*, user_id: int, amount: int, idempotency: IdempotentRequest | None = None) -> Topup:
    """Charge the payment provider, then move `amount` from `external` into the wallet.

    The charge happens before the database transaction; its reference is unique in the
    ledger, so one charge is recorded once. Raises AmountInvalid, AmountBelowMinimum,
    AmountAboveMaximum (before any charge), PaymentDeclined, IdempotencyConflict.
    """
    amount_validate(amount=amount, min_setting="MISSIONHUB_TOPUP_MIN", max_setting="MISSIONHUB_TOPUP_MAX")
    charge = payment_provider().charge(
        user_id=user_id, amount=amount, idempotency_key=idempotency.key if idempotency else None
    )
    with transaction.atomic(using="default", durable=True):
        record = idempotency_claim(request=idempotency)
        external = system_account(Account.Kind.EXTERNAL)
        wallet = wallet_get_or_create(user_id=user_id)
        tx = transaction_post(
            kind=Transaction.Kind.TOPUP,
            legs={external.pk: -charge.amount, wallet.pk: charge.amount},
            actor_id=user_id,
            reference=charge.reference,
        )
        wallet.refresh_from_db(fields=["balance"])
        result = Topup(id=tx.pk, amount=charge.amount, balance=wallet.balance)
        idempotency_complete(record=record, request=idempotency, result=result)
    return result
