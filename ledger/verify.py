"""The ledger's invariants, checked from its rows. Each check returns what it found broken.

Apps above the ledger add their own checks with `check_register` (missions registers its
checks from its AppConfig.ready), so `ledger_verify` reports them without importing them.
"""

from collections.abc import Callable

from django.db import connections
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Sum, Window
from django.db.models.functions import Lag

from . import sqlite_guards
from .models import Account, Contribution, Event, Posting, TopupCharge, Transaction


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
    and every pledge is counted in one: compared per (mission, user) in one grouped query."""
    pledged = (
        Posting.objects.filter(account__kind=Account.Kind.ESCROW, transaction__kind=Transaction.Kind.PLEDGE)
        .values_list("transaction__mission_id", "transaction__actor_id")
        .annotate(total=Sum("amount"), pledges=Count("pk"))
        .order_by()
        .iterator(chunk_size=5000)
    )
    kept = {
        (mission_id, user_id): (total, pledges)
        for mission_id, user_id, total, pledges in Contribution.objects.values_list(
            "mission_id", "user_id", "total", "pledges"
        ).iterator(chunk_size=5000)
    }
    problems = []
    for mission_id, user_id, total, pledges in pledged:
        if kept.pop((mission_id, user_id), None) != (total, pledges):
            problems.append(f"mission {mission_id}, user {user_id}: pledged {total} in {pledges}, contribution differs")
    problems += [f"mission {m}, user {u}: a contribution without pledges" for (m, u) in sorted(kept)]
    return problems


def refunds_off() -> list[str]:
    """A mission is paid out or refunded, not both, and no contributor is refunded more
    than once or anything but their own total."""
    both = (
        Transaction.objects.filter(kind=Transaction.Kind.PAYOUT)
        .filter(mission_id__in=Transaction.objects.filter(kind=Transaction.Kind.REFUND).values("mission_id"))
        .values_list("mission_id", flat=True)
    )
    problems = [f"mission {m}: both paid out and refunded" for m in sorted(both)]
    refunded = (
        Posting.objects.filter(transaction__kind=Transaction.Kind.REFUND, account__kind=Account.Kind.WALLET)
        .values_list("transaction__mission_id", "account__user_id")
        .annotate(refunded=Sum("amount"), times=Count("pk"))
        .order_by("transaction__mission_id", "account__user_id")
        .iterator(chunk_size=5000)
    )
    refunded_missions = Transaction.objects.filter(kind=Transaction.Kind.REFUND).values("mission_id")
    contributions = Contribution.objects.filter(mission_id__in=refunded_missions).values_list(
        "mission_id", "user_id", "total"
    )
    contributed = {(m, u): total for m, u, total in contributions.iterator(chunk_size=5000)}
    for mission_id, user_id, amount, times in refunded:
        if times != 1 or contributed.get((mission_id, user_id)) != amount:
            problems.append(
                f"mission {mission_id}, user {user_id}: refunded {amount} in {times} posting(s), "
                f"contributed {contributed.get((mission_id, user_id), 0)}"
            )
    return problems


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
