"""The missions' side of `ledger_verify`: each mission agrees with its ledger rows.

Registered into the ledger's checks by MissionsConfig.ready, so `manage.py ledger_verify`
(and the test suite's check after every test) reports them. Each check is one query over
all missions, whatever their number: subqueries on the ledger's tables, which live in the
same database.
"""

from datetime import timedelta

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Now

from ledger.models import Account, Event, Posting, Transaction

from .models import Mission
from .services import TERMINAL_EVENT

# A terminal mission is settled within seconds, or by the sweep's retry (every
# MISSIONHUB_EXPIRE_SWEEP_SECONDS, after 30 s); one still unsettled this long after its
# decision is reported. Younger ones are in flight, not broken.
UNSETTLED_GRACE = timedelta(minutes=10)


def _scalar(queryset, expression, output=None):
    """A correlated subquery yielding one aggregate per mission (0 when there are no rows)."""
    return Coalesce(
        Subquery(queryset.order_by().values("_g").annotate(v=expression).values("v")[:1]),
        Value(0),
        output_field=output or IntegerField(),
    )


def _escrow_legs(kind: str):
    """The sum of the mission's escrow legs of `kind` transactions (pledges in, refunds out)."""
    rows = Posting.objects.filter(
        account__kind=Account.Kind.ESCROW,
        account__mission_id=OuterRef("pk"),
        transaction__kind=kind,
    ).annotate(_g=Value(1))
    return _scalar(rows, Sum("amount"))


def pots_off() -> list[str]:
    """The pot is the sum of the pledges into the mission's escrow, and of its `pledged`
    events; an unsettled mission's escrow still holds exactly the pot, less the chunks of
    its refund already posted (a settlement under way)."""
    # The creator's first pledge is carried by the `created` event.
    pledged_events = Event.objects.filter(
        mission_id=OuterRef("pk"), kind__in=[Event.Kind.CREATED, Event.Kind.PLEDGED]
    ).annotate(_g=Value(1))
    escrow = Account.objects.filter(kind=Account.Kind.ESCROW, mission_id=OuterRef("pk")).values("balance")[:1]
    rows = (
        Mission.objects.annotate(
            pledged=_escrow_legs(Transaction.Kind.PLEDGE),
            pledged_events=_scalar(pledged_events, Sum("amount")),
            escrow=Subquery(escrow),
            refunded=_escrow_legs(Transaction.Kind.REFUND),
        )
        .filter(
            ~Q(pot=F("pledged"))
            | ~Q(pledged_events=F("pledged"))
            | Q(escrow__isnull=True)
            | (Q(settled_at__isnull=True) & ~Q(escrow=F("pledged") + F("refunded")))
            | (Q(is_active=True) & ~Q(refunded=0))
        )
        .order_by("pk")
        .values_list("pk", "pot", "pledged", "pledged_events", "escrow", "settled_at")
    )
    return [
        f"mission {pk}: pot {pot}, pledged into its escrow {pledged}, pledged events {events}, "
        f"escrow holds {escrow}{' (settled)' if settled_at else ''}"
        for pk, pot, pledged, events, escrow, settled_at in rows
    ]


def contributor_counts_off() -> list[str]:
    """`contributor_count` is the number of distinct users who pledged."""
    contributors = Transaction.objects.filter(mission_id=OuterRef("pk"), kind=Transaction.Kind.PLEDGE).annotate(
        _g=Value(1)
    )
    rows = (
        Mission.objects.annotate(contributors=_scalar(contributors, Count("actor_id", distinct=True)))
        .exclude(contributor_count=F("contributors"))
        .order_by("pk")
        .values_list("pk", "contributor_count", "contributors")
    )
    return [f"mission {pk}: contributor_count {count}, but {real} users pledged" for pk, count, real in rows]


def terminal_events_off() -> list[str]:
    """A terminal mission has exactly one terminal event, the one its status names; an
    open one has none."""
    terminal = Event.objects.filter(mission_id=OuterRef("pk"), kind__in=Event.TERMINAL_KINDS).annotate(_g=Value(1))
    matching = Q()
    for status, kind in TERMINAL_EVENT.items():
        matching |= Q(
            status=status,
            pk__in=Event.objects.filter(kind=kind).values("mission_id"),
        )
    rows = (
        Mission.objects.annotate(terminal_events=_scalar(terminal, Count("pk")))
        .filter(
            (Q(status__in=Mission.OPEN_STATUSES) & ~Q(terminal_events=0))
            | (~Q(status__in=Mission.OPEN_STATUSES) & (~Q(terminal_events=1) | ~matching))
        )
        .order_by("pk")
        .values_list("pk", "status", "terminal_events")
    )
    return [
        f"mission {pk}: status {status} with {n} terminal event(s), or not the one it names" for pk, status, n in rows
    ]


def settlements_off() -> list[str]:
    """`settled_at` and the `settled` event go together; a settled mission's escrow is empty."""
    settled_events = Event.objects.filter(kind=Event.Kind.SETTLED).values("mission_id")
    escrow = Account.objects.filter(kind=Account.Kind.ESCROW, mission_id=OuterRef("pk")).values("balance")[:1]
    rows = (
        Mission.objects.annotate(escrow=Subquery(escrow), has_event=Q(pk__in=settled_events))
        .filter(
            (Q(settled_at__isnull=False) & (~Q(pk__in=settled_events) | ~Q(escrow=0)))
            | (Q(settled_at__isnull=True) & Q(pk__in=settled_events))
        )
        .order_by("pk")
        .values_list("pk", "settled_at", "has_event", "escrow")
    )
    return [
        f"mission {pk}: settled_at {settled_at}, settled event {'yes' if has_event else 'no'}, escrow holds {escrow}"
        for pk, settled_at, has_event, escrow in rows
    ]


def unsettled_too_long() -> list[str]:
    """Terminal missions still unsettled `UNSETTLED_GRACE` after their decision."""
    cutoff = ExpressionWrapper(Now() - Value(UNSETTLED_GRACE), output_field=DateTimeField())
    rows = (
        Mission.objects.filter(is_active=False, settled_at__isnull=True)
        .filter(Q(decided_at__isnull=True) | Q(decided_at__lt=cutoff))
        .order_by("pk")
        .values_list("pk", "status", "decided_at")
    )
    return [f"mission {pk}: {status} since {decided_at} and not settled" for pk, status, decided_at in rows]


CHECKS = {
    "missions' pots match their pledges and escrows": pots_off,
    "missions' contributor counts match their pledges": contributor_counts_off,
    "each terminal mission has its one terminal event": terminal_events_off,
    "settled missions have their settled event and an empty escrow": settlements_off,
    f"no terminal mission unsettled after {int(UNSETTLED_GRACE.total_seconds())} s": unsettled_too_long,
}
