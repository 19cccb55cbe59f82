"""Writes to the ledger. Every cash movement goes through `transaction_post`.

Lock order, everywhere: the mission row first (taken by the missions app), then
accounts by ascending id. Locks are held only for local statements: no email, broker
call or HTTP request runs inside a money transaction.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connections, transaction
from django.db.models.functions import Now

from .errors import (
    AmountAboveMaximum,
    AmountBelowMinimum,
    AmountInvalid,
    IdempotencyKeyReused,
    InsufficientFunds,
    PaymentDeclined,
    UnbalancedTransaction,
)
from .idempotency import IdempotentRequest, idempotency_claim, idempotency_complete
from .models import Account, Contribution, Event, Notification, Posting, TopupCharge, Transaction
from .payments import Charge, payment_provider

logger = logging.getLogger(__name__)


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


# The most legs `transaction_post` takes: its statements carry a few parameters per leg.
# A refund of any number of contributors goes through `refund_chunk_post` instead.
MAX_LEGS = 100


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
    but not the system accounts (`external`, `fees`: see Account), refuses to take any of
    them below zero (InsufficientFunds, naming nothing: the caller knows whose wallet it
    was), then writes the transaction, its postings and the accounts' new balances and
    versions in three statements. At most MAX_LEGS legs, so no statement's parameter list
    grows past a few hundred. The transaction returned carries `balances_after`: {account
    id: its balance now} for the accounts it locked.
    """
    _require_transaction()
    legs = {account_id: amount for account_id, amount in legs.items() if amount != 0}
    if len(legs) < 2 or sum(legs.values()) != 0:
        raise UnbalancedTransaction(f"{kind}: legs {legs} do not balance")
    if len(legs) > MAX_LEGS:
        raise ValueError(f"{kind}: {len(legs)} legs; transaction_post takes at most {MAX_LEGS}")

    accounts = list(
        Account.objects.select_for_update().filter(pk__in=legs).exclude(kind__in=Account.SYSTEM_KINDS).order_by("pk")
    )
    # The legs the lock did not return are system accounts' (an id of no account at all
    # fails the postings' foreign key).
    system = set(legs) - {account.pk for account in accounts}
    for account in accounts:
        if account.balance + legs[account.pk] < 0:
            raise InsufficientFunds()

    tx = Transaction.objects.create(kind=kind, mission_id=mission_id, actor_id=actor_id, reference=reference)
    Posting.objects.bulk_create(
        [
            *(
                Posting(
                    transaction=tx,
                    account_id=account.pk,
                    amount=legs[account.pk],
                    balance_after=account.balance + legs[account.pk],
                    version=account.version + 1,
                )
                for account in accounts
            ),
            *(Posting(transaction=tx, account_id=pk, amount=legs[pk]) for pk in sorted(system)),
        ]
    )
    if accounts:
        _accounts_apply(tx)
    tx.balances_after = {account.pk: account.balance + legs[account.pk] for account in accounts}
    return tx


def table_names() -> dict[str, str]:
    """The ledger's tables, quoted for the default database's raw SQL."""
    quote = connections["default"].ops.quote_name
    return {
        "account": quote(Account._meta.db_table),
        "posting": quote(Posting._meta.db_table),
        "transaction": quote(Transaction._meta.db_table),
        "notification": quote(Notification._meta.db_table),
        "contribution": quote(Contribution._meta.db_table),
    }


def _accounts_apply(tx: Transaction) -> None:
    """Set each account the transaction touched to its posting's balance and version (the
    system accounts' legs have none): one UPDATE ... FROM the transaction's postings,
    however many (PostgreSQL, SQLite 3.33+)."""
    t = table_names()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"UPDATE {t['account']} SET balance = p.balance_after, version = p.version "  # noqa: S608 - table names only
            f"FROM {t['posting']} p WHERE p.transaction_id = %s AND p.account_id = {t['account']}.id "
            f"AND p.version IS NOT NULL",
            [tx.pk],
        )


@dataclass(frozen=True)
class PledgePosted:
    transaction_id: int
    balance: int  # the wallet's, after the pledge
    first: bool  # the user's first pledge to this mission


def pledge_post(*, mission_id: int, user_id: int, amount: int) -> PledgePosted:
    """Move `amount` from the user's wallet into the mission's escrow and add it to the
    user's `Contribution`: the money path's hottest write, in six plain statements.

    Runs inside the caller's transaction, which holds the mission's lock. Locks the two
    accounts by ascending id (one statement, found by their owners), writes the
    transaction, its two postings, the accounts' new balances and versions, and the
    contribution (one upsert, which tells whether this was the user's first pledge).
    Raises InsufficientFunds (a user who never had cash has no wallet).
    """
    _require_transaction()
    t = table_names()
    connection = connections["default"]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, kind, balance, version FROM {t['account']} "  # noqa: S608 - table names only
            f"WHERE (kind = 'escrow' AND mission_id = %s) OR (kind = 'wallet' AND user_id = %s) ORDER BY id{lock}",
            [mission_id, user_id],
        )
        accounts = {kind: (pk, balance, version) for pk, kind, balance, version in cursor.fetchall()}
        if "escrow" not in accounts:
            raise UnbalancedTransaction(f"pledge: mission {mission_id} has no escrow")
        wallet, escrow = accounts.get("wallet"), accounts["escrow"]
        if wallet is None or wallet[1] < amount:
            raise InsufficientFunds()
        cursor.execute(
            f"INSERT INTO {t['transaction']} (kind, mission_id, actor_id) VALUES ('pledge', %s, %s) RETURNING id",  # noqa: S608
            [mission_id, user_id],
        )
        (tx_id,) = cursor.fetchone()
        cursor.execute(
            f"INSERT INTO {t['posting']} (transaction_id, account_id, amount, balance_after, version) "  # noqa: S608
            f"VALUES (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s)",
            [
                *(tx_id, wallet[0], -amount, wallet[1] - amount, wallet[2] + 1),
                *(tx_id, escrow[0], amount, escrow[1] + amount, escrow[2] + 1),
            ],
        )
        cursor.execute(
            f"UPDATE {t['account']} SET balance = balance + CASE WHEN id = %s THEN %s ELSE %s END, "  # noqa: S608
            f"version = version + 1 WHERE id IN (%s, %s)",
            [wallet[0], -amount, amount, wallet[0], escrow[0]],
        )
        cursor.execute(
            f"INSERT INTO {t['contribution']} (mission_id, user_id, total, pledges) VALUES (%s, %s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (mission_id, user_id) DO UPDATE SET total = {t['contribution']}.total + EXCLUDED.total, "
            f"pledges = {t['contribution']}.pledges + 1 RETURNING pledges",
            [mission_id, user_id, amount],
        )
        (pledges,) = cursor.fetchone()
    return PledgePosted(transaction_id=tx_id, balance=wallet[1] - amount, first=pledges == 1)


def _chunk(t: dict[str, str]) -> str:
    """SQL: the contributors of mission `%(mission)s` with a user id above `%(after)s`, the
    first `%(limit)s` of them by user id (an index range of the contribution table)."""
    return (
        f"SELECT user_id, total FROM {t['contribution']} "  # noqa: S608 - table names only
        f"WHERE mission_id = %(mission)s AND user_id > %(after)s ORDER BY user_id LIMIT %(limit)s"
    )


@dataclass(frozen=True)
class Chunk:
    through_user_id: int | None  # the last contributor of the chunk; None: there was nobody left
    contributors: int
    total: int


def contributors_chunk(*, mission_id: int, after_user_id: int | None, limit: int) -> Chunk:
    """The next `limit` contributors after `after_user_id` (None: from the first), by user id."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(user_id), COUNT(*), COALESCE(SUM(total), 0) FROM ({_chunk(table_names())}) c",  # noqa: S608
            {"mission": mission_id, "after": after_user_id or 0, "limit": limit},
        )
        through, contributors, total = cursor.fetchone()
    return Chunk(through_user_id=through, contributors=contributors, total=total)


def refund_chunk_post(*, mission_id: int, escrow: Account, after_user_id: int | None, limit: int) -> Chunk:
    """Give the next `limit` contributors (by user id, after `after_user_id`) back exactly
    what they pledged: one balanced refund transaction from `escrow`, however many.

    Runs inside the caller's transaction, which holds the mission's lock (so nobody else
    writes the escrow) and which also records where the chunk ended (the caller's cursor),
    so that no chunk is posted twice; the transaction's unique `reference`
    (`refund:<mission>:<after>`) backs that up. Set-based: five statements for 25 or 5,000
    contributors, none with more than a few parameters, and no Python object per
    contributor. On PostgreSQL the chunk's wallets are locked first, by ascending id as
    everywhere; SQLite's write transaction already excludes every other writer. Raises
    UnbalancedTransaction (and writes nothing) if a contributor has no wallet or the
    escrow holds less than the chunk. `escrow` is the row as the caller read it, under the
    mission's lock; its balance and version are moved on by the chunk.
    """
    _require_transaction()
    t = table_names()
    connection = connections["default"]
    after = after_user_id or 0
    args = {"mission": mission_id, "after": after, "limit": limit}
    lock = " ORDER BY a.id FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(c.user_id), COUNT(*), COALESCE(SUM(c.total), 0), COUNT(w.user_id) "  # noqa: S608 - names only
            f"FROM ({_chunk(t)}) c LEFT JOIN (SELECT a.user_id FROM {t['account']} a WHERE a.kind = 'wallet' "
            f"AND a.user_id IN (SELECT user_id FROM ({_chunk(t)}) c2){lock}) w ON w.user_id = c.user_id",
            args,
        )
        through, contributors, total, wallets = cursor.fetchone()
        chunk = Chunk(through_user_id=through, contributors=contributors, total=total)
        if contributors == 0:
            return chunk
        if wallets != contributors:
            raise UnbalancedTransaction(
                f"refund of mission {mission_id}: {contributors} contributors, {wallets} wallets"
            )
        if escrow.balance < total:
            raise UnbalancedTransaction(
                f"refund of mission {mission_id}: its escrow holds {escrow.balance}, the contributors {total}+"
            )
        tx = Transaction.objects.create(
            kind=Transaction.Kind.REFUND, mission_id=mission_id, reference=f"refund:{mission_id}:{after}"
        )
        cursor.execute(
            f"INSERT INTO {t['posting']} (transaction_id, account_id, amount, balance_after, version) "  # noqa: S608
            f"SELECT %(tx)s, %(escrow)s, %(out)s, %(escrow_after)s, %(escrow_version)s UNION ALL "
            f"SELECT %(tx)s, w.id, c.total, w.balance + c.total, w.version + 1 "
            f"FROM ({_chunk(t)}) c JOIN {t['account']} w ON w.kind = 'wallet' AND w.user_id = c.user_id",
            {
                **args,
                "tx": tx.pk,
                "escrow": escrow.pk,
                "out": -total,
                "escrow_after": escrow.balance - total,
                "escrow_version": escrow.version + 1,
            },
        )
    _accounts_apply(tx)
    escrow.balance, escrow.version = escrow.balance - total, escrow.version + 1
    return chunk


def contributor_notifications_create(
    *, mission_id: int, after_user_id: int | None, limit: int, amount: int | None = None
) -> int:
    """One `result` email in the outbox for each contributor of a chunk (as in
    `refund_chunk_post`): reporting `amount` (a payout's), or each contributor's own total
    (a refund). One INSERT ... SELECT however many; a row already there stays as it is.
    Returns how many were added."""
    _require_transaction()
    t = table_names()
    shown = "%(amount)s" if amount is not None else "c.total"
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {t['notification']} "  # noqa: S608 - table names only
            f"(mission_id, user_id, kind, amount, attempts, last_error, provider_message_id) "
            f"SELECT %(mission)s, c.user_id, %(kind)s, {shown}, 0, '', '' "
            f"FROM ({_chunk(t)}) c WHERE c.total > 0 "  # SQLite needs a WHERE before an upsert's ON
            f"ON CONFLICT DO NOTHING",
            {
                "mission": mission_id,
                "after": after_user_id or 0,
                "limit": limit,
                "kind": Notification.Kind.RESULT,
                "amount": amount,
            },
        )
        return cursor.rowcount


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

    Three steps, so that no charge is ever made without a record of it: the pending
    charge is committed first, the provider is asked outside any database transaction,
    and the top-up is posted with the charge completed under its lock. Should the last
    step fail (a crash, a database timeout), the sweep completes the charge later
    (`topup_charges_reconcile`); a retry with the same `Idempotency-Key` finds the same
    charge, and the provider, asked with the same key, charges once.
    Raises AmountInvalid, AmountBelowMinimum, AmountAboveMaximum (before any charge),
    PaymentDeclined, IdempotencyConflict.
    """
    amount_validate(amount=amount, min_setting="MISSIONHUB_TOPUP_MIN", max_setting="MISSIONHUB_TOPUP_MAX")
    charge = topup_charge_open(user_id=user_id, amount=amount, key=idempotency.key if idempotency else None)
    if charge.status == TopupCharge.Status.DECLINED:
        raise PaymentDeclined()
    try:
        answer = payment_provider().charge(user_id=user_id, amount=amount, idempotency_key=str(charge.provider_key))
    except PaymentDeclined:
        _topup_charge_mark(charge_id=charge.pk, status=TopupCharge.Status.DECLINED)
        raise
    return topup_charge_complete(charge_id=charge.pk, answer=answer, idempotency=idempotency)


def topup_charge_open(*, user_id: int, amount: int, key: str | None) -> TopupCharge:
    """The pending charge of a top-up, committed before the provider is asked. With a
    client's key, a retry gets the charge its first try opened (reopened if abandoned)."""
    with transaction.atomic(using="default", durable=True):
        if key is None:
            return TopupCharge.objects.create(user_id=user_id, amount=amount)
        try:
            with transaction.atomic(using="default"):
                return TopupCharge.objects.create(user_id=user_id, amount=amount, key=key)
        except IntegrityError:
            charge = TopupCharge.objects.select_for_update().get(user_id=user_id, key=key)
        if charge.amount != amount:
            raise IdempotencyKeyReused()
        if charge.status == TopupCharge.Status.ABANDONED:
            _topup_charge_mark(charge_id=charge.pk, status=TopupCharge.Status.PENDING)
            charge.status = TopupCharge.Status.PENDING
        return charge


def _topup_charge_mark(*, charge_id: int, status: str) -> None:
    TopupCharge.objects.filter(pk=charge_id).exclude(status=TopupCharge.Status.COMPLETED).update(
        status=status, updated_at=Now()
    )


def topup_charge_complete(*, charge_id: int, answer: Charge, idempotency: IdempotentRequest | None = None) -> Topup:
    """Post the top-up of a charge the provider made, once: under the charge's lock, a
    charge already completed (by a twin request or by the sweep) posts nothing again."""
    with transaction.atomic(using="default", durable=True):
        record = idempotency_claim(request=idempotency)
        charge = TopupCharge.objects.select_for_update().get(pk=charge_id)
        if charge.status == TopupCharge.Status.COMPLETED:
            tx = charge.transaction
            balance = Account.objects.get(kind=Account.Kind.WALLET, user_id=charge.user_id).balance
        else:
            if answer.amount != charge.amount:
                raise UnbalancedTransaction(
                    f"the provider charged {answer.amount} for a top-up of {charge.amount} ({charge.provider_key})"
                )
            external = system_account(Account.Kind.EXTERNAL)
            wallet = wallet_get_or_create(user_id=charge.user_id)
            tx = transaction_post(
                kind=Transaction.Kind.TOPUP,
                legs={external.pk: -charge.amount, wallet.pk: charge.amount},
                actor_id=charge.user_id,
                reference=answer.reference,
            )
            TopupCharge.objects.filter(pk=charge.pk).update(
                status=TopupCharge.Status.COMPLETED, reference=answer.reference, transaction=tx, updated_at=Now()
            )
            balance = tx.balances_after[wallet.pk]
        result = Topup(id=tx.pk, amount=charge.amount, balance=balance)
        idempotency_complete(record=record, request=idempotency, result=result)
    return result


def topup_charges_reconcile(*, older_than: timedelta, limit: int = 100) -> int:
    """The sweep's step for charges left pending longer than `older_than` (their request
    died between the provider's answer and our commit, or before asking): each is asked
    about at the provider and completed, or abandoned when the provider made no charge.
    Each charge is its own unit of work; one that fails is logged and tried on the next
    sweep. Returns how many top-ups were posted. `older_than` must exceed the longest a
    provider call can take, so that a request still waiting is not abandoned under it."""
    provider = payment_provider()
    pending = list(
        TopupCharge.objects.filter(status=TopupCharge.Status.PENDING, created_at__lt=Now() - older_than)
        .order_by("created_at")
        .values_list("pk", "provider_key")[:limit]
    )
    posted = 0
    for charge_id, provider_key in pending:
        try:
            answer = provider.find(idempotency_key=str(provider_key))
            if answer is None:
                with transaction.atomic(using="default", durable=True):
                    TopupCharge.objects.filter(pk=charge_id, status=TopupCharge.Status.PENDING).update(
                        status=TopupCharge.Status.ABANDONED, updated_at=Now()
                    )
                continue
            topup_charge_complete(charge_id=charge_id, answer=answer)
            posted += 1
            logger.warning("reconciled the top-up of charge %s: the provider had charged it", provider_key)
        except Exception:
            logger.exception("could not reconcile the top-up charge %s; the next sweep tries again", provider_key)
    return posted
