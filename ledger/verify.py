"""The ledger's invariants, checked from its rows. Each check returns what it found broken.

Apps above the ledger add their own checks with `check_register` (missions registers its
checks from its AppConfig.ready), so `ledger_verify` reports them without importing them.
"""

from collections.abc import Callable

from django.db import connections
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Sum, Window
from django.db.models.functions import Lag

from . import sqlite_guards
from .models import Account, Event, Posting, TopupCharge, Transaction
from .services import table_names


def unbalanced_transactions() -> list[str]:
    rows = (
        Transaction.objects.annotate(total=Sum("postings__amount"), legs=Count("postings"))
        .filter(Q(legs__lt=2) | ~Q(total=0))
        .order_by("pk")
        .values_list("pk", "kind", "total", "legs")
    )
    return [f"transaction {pk} ({kind}): {legs} legs summing to {total}" for pk, kind, total, legs in rows]


def cached_balances_off() -> list[str]:
    """An account's cached balance and version against the sum and count of its postings."""
    rows = (
        Account.objects.exclude(kind__in=Account.SYSTEM_KINDS)
        .annotate(
            posted=Sum("postings__amount", default=0),
            postings_count=Count("postings"),
            last=Max("postings__version"),
        )
        .filter(~Q(balance=F("posted")) | ~Q(version=F("postings_count")) | ~Q(version=F("last")) & Q(version__gt=0))
        .order_by("pk")
        .values_list("pk", "kind", "balance", "posted", "version", "postings_count")
    )
    system = Account.objects.filter(kind__in=Account.SYSTEM_KINDS).exclude(balance=0, version=0)
    unchained = Posting.objects.filter(Q(balance_after__isnull=True) | Q(version__isnull=True)).exclude(
        account__kind__in=Account.SYSTEM_KINDS
    )
    return (
        [
            f"account {pk} ({kind}): cached balance {balance} / version {version}, postings sum {posted} over {count}"
            for pk, kind, balance, posted, version, count in rows
        ]
        + [f"system account {pk} ({kind}) caches a balance" for pk, kind in system.values_list("pk", "kind")]
        + [f"posting {pk} on account {account_id}: no balance_after or version" for pk, account_id in
           unchained.values_list("pk", "account_id")]
    )  # fmt: skip


def broken_chains() -> list[str]:
    """Each posting's balance_after is the previous one's plus its amount, and the last
    one equals the account's cached balance; versions run 1, 2, 3..."""
    problems = []
    rows = (
        Posting.objects.exclude(account__kind__in=Account.SYSTEM_KINDS)
        .annotate(
            previous=Window(Lag("balance_after"), partition_by=F("account_id"), order_by=F("version").asc()),
            previous_version=Window(Lag("version"), partition_by=F("account_id"), order_by=F("version").asc()),
        )
        .order_by("account_id", "version")
        .values_list("pk", "account_id", "amount", "balance_after", "version", "previous", "previous_version")
        .iterator(chunk_size=5000)
    )
    last = {}
    for pk, account_id, amount, balance_after, version, previous, previous_version in rows:
        expected_previous = 0 if previous is None else previous
        if balance_after != expected_previous + amount:
            problems.append(f"posting {pk} on account {account_id}: {expected_previous} {amount:+} != {balance_after}")
        if version != (previous_version or 0) + 1:
            problems.append(f"posting {pk} on account {account_id}: version {version} after {previous_version}")
        last[account_id] = balance_after
    for pk, balance in Account.objects.filter(pk__in=last).values_list("pk", "balance"):
        if balance != last[pk]:
            problems.append(f"account {pk}: cached balance {balance} but last balance_after {last[pk]}")
    return problems


def negative_balances() -> list[str]:
    rows = Account.objects.filter(balance__lt=0).values_list("pk", "balance")
    fees = Posting.objects.filter(account__kind=Account.Kind.FEES).aggregate(total=Sum("amount", default=0))["total"]
    return [f"account {pk}: negative balance {balance}" for pk, balance in rows] + (
        [f"the fees account holds {fees}"] if fees < 0 else []
    )


def settled_escrows_not_empty() -> list[str]:
    settled = Event.objects.filter(kind=Event.Kind.SETTLED).values("mission_id")
    rows = (
        Account.objects.filter(kind=Account.Kind.ESCROW, mission_id__in=settled)
        .exclude(balance=0)
        .values_list("mission_id", "balance")
    )
    return [f"mission {mission_id}: settled but its escrow holds {balance}" for mission_id, balance in rows]


def settlements_without_event() -> list[str]:
    """A payout is posted with the `settled` event. (A refund's chunks come before it: the
    missions' checks hold an unsettled mission's escrow to its pot less what was refunded.)"""
    settled = set(Event.objects.filter(kind=Event.Kind.SETTLED).values_list("mission_id", flat=True))
    paid = set(Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).values_list("mission_id", flat=True))
    return [f"mission {mission_id}: payout without a settled event" for mission_id in sorted(paid - settled)]


def topups_without_their_charge() -> list[str]:
    """Each top-up pairs with one completed charge of the same user, amount and reference."""
    unpaired = Transaction.objects.filter(kind=Transaction.Kind.TOPUP, charge__isnull=True).values_list("pk", flat=True)
    wallet_leg = Posting.objects.filter(
        transaction_id=OuterRef("transaction_id"),
        account__kind=Account.Kind.WALLET,
        account__user_id=OuterRef("user_id"),
        amount=OuterRef("amount"),
    )
    mismatched = (
        TopupCharge.objects.filter(status=TopupCharge.Status.COMPLETED)
        .filter(
            ~Q(transaction__kind=Transaction.Kind.TOPUP)
            | ~Q(transaction__reference=F("reference"))
            | ~Exists(wallet_leg)
        )
        .order_by("pk")
        .values_list("pk", "transaction_id")
    )
    return [f"top-up transaction {pk} has no completed charge" for pk in unpaired.order_by("pk")] + [
        f"charge {pk} does not match its top-up transaction {tx_id}" for pk, tx_id in mismatched
    ]


def contributions_off() -> list[str]:
    """Each `Contribution` is its user's pledges into the mission's escrow, total and count,
    and every pledge is counted in one: one FULL JOIN of the grouped pledges and the
    contributions, in the database, returning only the rows that differ."""
    t = table_names()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(p.mission_id, c.mission_id), COALESCE(p.user_id, c.user_id), "  # noqa: S608 - names only
            f"p.total, p.pledges, c.total, c.pledges FROM ("
            f"SELECT tx.mission_id, tx.actor_id AS user_id, SUM(po.amount) AS total, COUNT(*) AS pledges "
            f"FROM {t['transaction']} tx JOIN {t['posting']} po ON po.transaction_id = tx.id "
            f"JOIN {t['account']} a ON a.id = po.account_id AND a.kind = 'escrow' "
            f"WHERE tx.kind = 'pledge' GROUP BY tx.mission_id, tx.actor_id) p "
            f"FULL JOIN {t['contribution']} c ON c.mission_id = p.mission_id AND c.user_id = p.user_id "
            f"WHERE p.total IS NULL OR c.total IS NULL OR p.total <> c.total OR p.pledges <> c.pledges "
            f"ORDER BY 1, 2 LIMIT 1000"
        )
        rows = cursor.fetchall()
    return [
        f"mission {m}, user {u}: pledged {total or 0} in {pledges or 0}, contribution {kept or 0} in {kept_n or 0}"
        for m, u, total, pledges, kept, kept_n in rows
    ]


def refunds_off() -> list[str]:
    """A mission is paid out or refunded, not both, and no contributor is refunded more
    than once or anything but their own total (in the database, only what differs)."""
    both = (
        Transaction.objects.filter(kind=Transaction.Kind.PAYOUT)
        .filter(mission_id__in=Transaction.objects.filter(kind=Transaction.Kind.REFUND).values("mission_id"))
        .values_list("mission_id", flat=True)
    )
    t = table_names()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT r.mission_id, r.user_id, r.refunded, r.times, c.total FROM ("  # noqa: S608 - names only
            f"SELECT tx.mission_id, a.user_id, SUM(po.amount) AS refunded, COUNT(*) AS times "
            f"FROM {t['transaction']} tx JOIN {t['posting']} po ON po.transaction_id = tx.id "
            f"JOIN {t['account']} a ON a.id = po.account_id AND a.kind = 'wallet' "
            f"WHERE tx.kind = 'refund' GROUP BY tx.mission_id, a.user_id) r "
            f"LEFT JOIN {t['contribution']} c ON c.mission_id = r.mission_id AND c.user_id = r.user_id "
            f"WHERE r.times <> 1 OR c.total IS NULL OR c.total <> r.refunded "
            f"ORDER BY 1, 2 LIMIT 1000"
        )
        rows = cursor.fetchall()
    return [f"mission {m}: both paid out and refunded" for m in sorted(both)] + [
        f"mission {m}, user {u}: refunded {refunded} in {times} posting(s), contributed {total or 0}"
        for m, u, refunded, times, total in rows
    ]


def total_not_zero() -> list[str]:
    """The cached balances and the system accounts' postings sum to zero."""
    cached = Account.objects.exclude(kind__in=Account.SYSTEM_KINDS).aggregate(total=Sum("balance", default=0))
    system = Posting.objects.filter(account__kind__in=Account.SYSTEM_KINDS).aggregate(total=Sum("amount", default=0))
    total = cached["total"] + system["total"]
    return [] if total == 0 else [f"all balances sum to {total}, not 0"]


def database_guards_missing() -> list[str]:
    """On SQLite, the triggers of ledger/sqlite_guards.py (a table rebuild drops them)."""
    return [f"trigger {name} is missing" for name in sqlite_guards.missing_guards(connections["default"])]


CHECKS = {
    "transactions balance": unbalanced_transactions,
    "cached balances match postings": cached_balances_off,
    "posting chains are unbroken": broken_chains,
    "no account below zero but external": negative_balances,
    "settled missions' escrows are empty": settled_escrows_not_empty,
    "every settlement has its event": settlements_without_event,
    "all balances sum to zero": total_not_zero,
    "every top-up has its completed charge": topups_without_their_charge,
    "contributions match the pledges": contributions_off,
    "each contributor is refunded once, exactly": refunds_off,
    "the database's append-only and zero-sum guards are installed": database_guards_missing,
}


# Checks registered by the apps above the ledger, by name.
_REGISTERED: dict[str, Callable[[], list[str]]] = {}


def check_register(name: str, check: Callable[[], list[str]]) -> None:
    """Add a check to `ledger_verify`: a callable returning the problems it found."""
    if name in CHECKS:
        raise ValueError(f"{name!r} is one of the ledger's own checks")
    _REGISTERED[name] = check


def ledger_verify() -> dict[str, list[str]]:
    """{check name: problems}; every list empty means the ledger is sound."""
    return {name: check() for name, check in {**CHECKS, **_REGISTERED}.items()}
