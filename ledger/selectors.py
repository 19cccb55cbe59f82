from django.db.models import F, QuerySet, Sum

from .models import Account, Contribution, Event, Posting, Transaction


def wallet_balance(*, user_id: int) -> int:
    """The user's cash; a user who never received any has no wallet row yet and 0."""
    balance = (
        Account.objects.filter(kind=Account.Kind.WALLET, user_id=user_id).values_list("balance", flat=True).first()
    )
    return balance or 0


def system_balance(*, kind: str) -> int:
    """The `external` or `fees` account's balance: the sum of its postings (it caches none)."""
    return Posting.objects.filter(account__kind=kind).aggregate(total=Sum("amount", default=0))["total"]


def wallet_history(*, user_id: int) -> QuerySet[Posting]:
    """The postings on the user's wallet, newest first, signed from the user's side.

    Each row carries `kind`, `mission_id` and `created_at` of its transaction.
    """
    return (
        Posting.objects.filter(account__kind=Account.Kind.WALLET, account__user_id=user_id)
        .annotate(
            kind=F("transaction__kind"),
            mission_id=F("transaction__mission_id"),
            created_at=F("transaction__created_at"),
        )
        .order_by("-pk")
    )


def contributions(*, mission_id: int) -> QuerySet[Contribution]:
    """The mission's contributors with their totals, biggest first (ties: lowest user id):
    an index range of `ledger_contribution_top`, however many there are."""
    return Contribution.objects.filter(mission_id=mission_id).order_by("-total", "user_id")


def escrow_for_mission(*, mission_id: int) -> Account:
    return Account.objects.get(kind=Account.Kind.ESCROW, mission_id=mission_id)


def mission_events(*, mission_id: int) -> QuerySet[Event]:
    return Event.objects.filter(mission_id=mission_id).order_by("pk")


def payouts_by_mission(*, user_id: int, mission_ids) -> dict[int, int]:
    """What the user's wallet received from each of these missions' payouts."""
    rows = (
        Posting.objects.filter(
            account__kind=Account.Kind.WALLET,
            account__user_id=user_id,
            transaction__kind=Transaction.Kind.PAYOUT,
            transaction__mission_id__in=list(mission_ids),
        )
        .values_list("transaction__mission_id", "amount")
        .order_by()
    )
    return dict(rows)


def earned_total(*, user_id: int) -> int:
    """Everything the user's wallet received as a streamer's payout."""
    return Posting.objects.filter(
        account__kind=Account.Kind.WALLET, account__user_id=user_id, transaction__kind=Transaction.Kind.PAYOUT
    ).aggregate(total=Sum("amount", default=0))["total"]
