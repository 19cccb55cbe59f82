"""Reads for the staff monitoring page: one panel per builder, each drawn from stored data.

Every query is bounded: by a time window (the last 48 hours, the last 30 days) or by a
partial index that holds only the few rows it counts (open missions, unsettled ones, the
emails waiting, the sweep's failures). Each reads an index: missions/0006_monitoring_charts
adds those the charts need, and tests/missions/test_monitoring.py checks on both backends
that every query of the page finds one and that their number does not grow with the data.

Aggregation is in SQL on both backends: GROUP BY the hour or the day, truncated in UTC.
Percentiles of the settlement latency: PERCENTILE_CONT in SQL on PostgreSQL. SQLite has
none, so there they are computed in Python over the window's (settled_at, decided_at)
pairs, one fetch from the index `missions_settled` (the embedded default settles a few
hundred missions an hour at most). Both interpolate linearly between the closest ranks,
so the two agree.

A builder is `builder(*, now) -> Panel`: `now` is read once per page and bounds every
window. PANEL_BUILDERS is the page's list, in order.
"""

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Aggregate, Count, DurationField, F, Min, Q, Sum
from django.db.models.functions import Now, TruncDate, TruncHour
from django.urls import reverse
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import usernames_by_id
from ledger.models import Event, Notification

from .charts import BARS, CASH, COUNT, LINES, SECONDS, Chart, Series, format_value
from .models import LedgerCheck, Mission, SweepFailure
from .selectors import emails_failed_latest

HOURS = 48
DAYS = 30
LIST_LIMIT = 10
PLEDGE_EVENTS = (Event.Kind.CREATED, Event.Kind.PLEDGED)  # the creator's first pledge rides on `created`
OUTCOMES = (
    Mission.Status.SUCCEEDED,
    Mission.Status.FAILED,
    Mission.Status.REJECTED,
    Mission.Status.EXPIRED,
    Mission.Status.CANCELLED,
)


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    warn: bool = False


@dataclass(frozen=True)
class Item:
    """A row of a panel's list: a mission (or email) to look at."""

    href: str
    label: str
    meta: str = ""
    at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    facts: list[Fact] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    items_title: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, text)


# --- time slots ---------------------------------------------------------------------------


def hour_slots(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The last `hours` hours in UTC, oldest first; the last one is the hour `now` is in."""
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=hours - 1 - i) for i in range(hours)]


def day_slots(now: datetime, days: int = DAYS) -> list[date]:
    """The last `days` days in UTC, oldest first; the last one is today."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _hour_labels(hours: list[datetime]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Slot names ("06-01 14:00") and axis labels (every 6 hours; the date at midnight)."""
    slots = tuple(f"{h:%m-%d %H:00}" for h in hours)
    axis = tuple(("" if h.hour % 6 else f"{h:%m-%d}" if h.hour == 0 else f"{h:%H:00}") for h in hours)
    return slots, axis


def _day_labels(days: list[date]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    slots = tuple(f"{d:%Y-%m-%d}" for d in days)
    axis = tuple("" if (len(days) - 1 - i) % 7 else f"{d:%m-%d}" for i, d in enumerate(days))
    return slots, axis


def _per_slot(rows, key: str, slots: list) -> dict:
    """{slot: row} from GROUP BY rows, keyed as the slots are (UTC datetimes or dates)."""
    wanted = set(slots)
    return {row[key]: row for row in rows if row[key] in wanted}


def _ago(moment: datetime | None, now: datetime) -> str:
    return _("%(time)s ago") % {"time": timesince(moment, now)} if moment else "-"


class UtcHour(TruncHour):
    """The UTC hour of a datetime column. On SQLite, which stores it as UTC text
    ("YYYY-MM-DD HH:MM:SS.ffffff"), cut from the text by SQLite itself: Django's TruncHour
    there calls a Python function per row, several times slower over a day's rows."""

    def __init__(self, expression):
        super().__init__(expression, tzinfo=UTC)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        return f"(substr({sql}, 1, 13) || ':00:00')", params


class UtcDate(TruncDate):
    """The UTC date of a datetime column (on SQLite cut from its text, as UtcHour)."""

    def __init__(self, expression):
        super().__init__(expression, tzinfo=UTC)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        return f"substr({sql}, 1, 10)", params


# --- percentiles --------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("a percentile's fraction is between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """PERCENTILE_CONT in Python: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _seconds(value) -> float | None:
    return None if value is None else value.total_seconds()


def _latency_in_sql(settled) -> tuple[dict[datetime, dict], dict]:
    """PostgreSQL: PERCENTILE_CONT over the intervals, per hour and over the window."""
    duration = F("settled_at") - F("decided_at")
    aggregates = {
        "n": Count("*"),
        "p50": PercentileCont(duration, fraction=0.5, output_field=DurationField()),
        "p95": PercentileCont(duration, fraction=0.95, output_field=DurationField()),
    }
    rows = settled.annotate(slot=UtcHour("settled_at")).values("slot").annotate(**aggregates).order_by()
    whole = settled.aggregate(**aggregates)

    def seconds(row: dict) -> dict:
        return {"n": row["n"], "p50": _seconds(row["p50"]), "p95": _seconds(row["p95"])}

    return {row["slot"]: seconds(row) for row in rows}, seconds(whole)


def _latency_in_python(settled) -> tuple[dict[datetime, dict], dict]:
    """SQLite: the window's durations fetched from the index, percentiles computed here."""
    durations: dict[datetime, list[float]] = defaultdict(list)
    for settled_at, decided_at in settled.values_list("settled_at", "decided_at").order_by():
        hour = settled_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        durations[hour].append((settled_at - decided_at).total_seconds())

    def summary(values: list[float]) -> dict:
        return {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}

    every = [d for values in durations.values() for d in values]
    return {hour: summary(values) for hour, values in durations.items()}, summary(every)


def settlement_latency(*, since: datetime) -> tuple[dict[datetime, dict], dict]:
    """Decision to settlement, for missions settled since `since`: per UTC hour and over
    the whole window, `{"n", "p50", "p95"}` with the percentiles in seconds (None: none)."""
    settled = Mission.objects.filter(settled_at__gte=since, decided_at__isnull=False)
    if connections[settled.db].vendor == "postgresql":
        return _latency_in_sql(settled)
    return _latency_in_python(settled)


# --- the panels ---------------------------------------------------------------------------


def pledges_panel(*, now: datetime) -> Panel:
    """Pledges and pledged cash per hour over the last 48 hours (from the pledge events)."""
    hours = hour_slots(now)
    rows = (
        Event.objects.filter(kind__in=PLEDGE_EVENTS, created_at__gte=hours[0])
        .annotate(slot=UtcHour("created_at"))
        .values("slot")
        .annotate(n=Count("*"), cash=Sum("amount"))
        .order_by()
    )
    by_hour = _per_slot(rows, "slot", hours)
    counts = tuple(by_hour[h]["n"] if h in by_hour else 0 for h in hours)
    cash = tuple((by_hour[h]["cash"] or 0) if h in by_hour else 0 for h in hours)
    slots, axis = _hour_labels(hours)
    heading = _("Hour (UTC)")
    return Panel(
        key="pledges",
        title=_("Pledges, last 48 hours"),
        facts=[
            Fact(_("Pledges"), format_value(sum(counts), COUNT)),
            Fact(_("Cash pledged"), format_value(sum(cash), CASH)),
        ],
        charts=[
            Chart(
                key="chart-pledges",
                title=_("Pledges per hour"),
                kind=BARS,
                unit=COUNT,
                slots=slots,
                axis=axis,
                series=(Series(_("Pledges"), counts, "c-pledges"),),
                slot_heading=heading,
            ),
            Chart(
                key="chart-pledged-cash",
                title=_("Cash pledged per hour"),
                kind=BARS,
                unit=CASH,
                slots=slots,
                axis=axis,
                series=(Series(_("Cash"), cash, "c-cash"),),
                slot_heading=heading,
            ),
        ],
    )


def outcomes_panel(*, now: datetime) -> Panel:
    """Missions by outcome per day over the last 30 days, and the missions open now."""
    days = day_slots(now)
    # One row per day, GROUP BY the day alone: grouped by status too, SQLite's planner
    # prefers walking the whole status index (for its order) to the window's range.
    rows = (
        Mission.objects.filter(decided_at__gte=_day_start(days[0]))
        .annotate(day=UtcDate("decided_at"))
        .values("day")
        .annotate(**{o.value: Count("status", filter=Q(status=o.value)) for o in OUTCOMES})
        .order_by()
    )
    by_day = _per_slot(rows, "day", days)
    series = tuple(
        Series(str(o.label), tuple(by_day[d][o.value] if d in by_day else 0 for d in days), f"c-{o.value}")
        for o in OUTCOMES
    )
    # `missions_live_by_deadline` holds the open missions only.
    open_now = Mission.objects.filter(is_active=True).aggregate(
        open=Count("*"), overdue=Count("deadline", filter=Q(deadline__lte=Now()))
    )
    slots, axis = _day_labels(days)
    return Panel(
        key="outcomes",
        title=_("Missions ended, last 30 days"),
        facts=[
            Fact(_("Open now"), format_value(open_now["open"], COUNT)),
            Fact(
                _("Past their deadline, not yet expired"),
                format_value(open_now["overdue"], COUNT),
                warn=bool(open_now["overdue"]),
            ),
            *(Fact(s.label, format_value(sum(s.values), COUNT)) for s in series),
        ],
        charts=[
            Chart(
                key="chart-outcomes",
                title=_("Missions ended per day, by outcome"),
                kind=BARS,
                unit=COUNT,
                slots=slots,
                axis=axis,
                series=series,
                slot_heading=_("Day (UTC)"),
            )
        ],
    )


def settlement_latency_panel(*, now: datetime) -> Panel:
    """From decision to settled: the median and the 95th percentile per hour, 48 hours."""
    hours = hour_slots(now)
    hourly, whole = settlement_latency(since=hours[0])
    slots, axis = _hour_labels(hours)
    return Panel(
        key="latency",
        title=_("Settlement latency, last 48 hours"),
        facts=[
            Fact(_("Missions settled"), format_value(whole["n"], COUNT)),
            Fact(_("Median (p50)"), format_value(whole["p50"], SECONDS)),
            Fact(_("95th percentile (p95)"), format_value(whole["p95"], SECONDS)),
        ],
        charts=[
            Chart(
                key="chart-latency",
                title=_("Decision to settled, per hour"),
                kind=LINES,
                unit=SECONDS,
                slots=slots,
                axis=axis,
                series=(
                    Series("p50", tuple(hourly.get(h, {}).get("p50") for h in hours), "c-p50"),
                    Series("p95", tuple(hourly.get(h, {}).get("p95") for h in hours), "c-p95"),
                ),
                slot_heading=_("Hour (UTC)"),
            )
        ],
    )


def _per_hour(queryset, column: str, hours: list[datetime]) -> tuple[int, ...]:
    rows = queryset.annotate(slot=UtcHour(column)).values("slot").annotate(n=Count("*")).order_by()
    by_hour = _per_slot(rows, "slot", hours)
    return tuple(by_hour[h]["n"] if h in by_hour else 0 for h in hours)


def _admin_failed_emails() -> str:
    return reverse("admin:ledger_notification_changelist") + "?failed_at__isempty=0"


def email_outbox_panel(*, now: datetime) -> Panel:
    """The outbox now (waiting, retrying, the oldest), sent and failed per hour for 48 hours,
    and the emails most recently given up on."""
    hours = hour_slots(now)
    # `mon_notification_waiting` holds the emails neither sent nor given up on.
    waiting = Notification.objects.filter(sent_at__isnull=True, failed_at__isnull=True).aggregate(
        waiting=Count("*"), retrying=Count("attempts", filter=Q(attempts__gt=0)), oldest=Min("created_at")
    )
    sent = _per_hour(Notification.objects.filter(sent_at__gte=hours[0]), "sent_at", hours)
    failed = _per_hour(Notification.objects.filter(failed_at__gte=hours[0]), "failed_at", hours)
    stale = waiting["oldest"] is not None and now - waiting["oldest"] > timedelta(minutes=10)
    slots, axis = _hour_labels(hours)
    given_up = emails_failed_latest(limit=LIST_LIMIT)
    return Panel(
        key="emails",
        title=_("Email outbox"),
        facts=[
            Fact(_("Waiting"), format_value(waiting["waiting"], COUNT)),
            Fact(_("Failing (retrying)"), format_value(waiting["retrying"], COUNT), warn=bool(waiting["retrying"])),
            Fact(_("Oldest waiting"), _ago(waiting["oldest"], now), warn=stale),
            Fact(_("Sent, last 48 hours"), format_value(sum(sent), COUNT)),
            Fact(_("Failed (not retried), last 48 hours"), format_value(sum(failed), COUNT), warn=any(failed)),
        ],
        charts=[
            Chart(
                key="chart-emails",
                title=_("Emails sent and failed per hour"),
                kind=BARS,
                unit=COUNT,
                slots=slots,
                axis=axis,
                series=(Series(_("Sent"), sent, "c-sent"), Series(_("Failed"), failed, "c-failed")),
                slot_heading=_("Hour (UTC)"),
            )
        ],
        items=[
            Item(
                href=reverse("mission-detail", args=[email.mission_id]),
                label=f"#{email.mission_id} {email.mission_title}",
                meta=email.kind,
                at=email.failed_at,
                detail=email.last_error,
            )
            for email in given_up
        ],
        items_title=_("Latest failed emails") if given_up else "",
        links=[(_admin_failed_emails(), _("All failed emails in the admin"))] if given_up else [],
    )


def unsettled_panel(*, now: datetime) -> Panel:
    """Ended missions not yet paid out or refunded, and the one waiting longest."""
    # Read from `missions_settled` (settled_at IS NULL, then decided_at in order): a
    # mission is decided exactly when it ends (services._close sets both).
    unsettled = Mission.objects.filter(settled_at__isnull=True, decided_at__isnull=False)
    count = unsettled.aggregate(n=Count("*"))["n"]
    # Ordered as the index is (settled_at is NULL throughout): PostgreSQL's planner, asked
    # for decided_at alone, walks `missions_decided` from the oldest decision instead.
    oldest = unsettled.order_by("settled_at", "decided_at", "pk").only("pk", "title", "status", "decided_at").first()
    return Panel(
        key="unsettled",
        title=_("Unsettled missions"),
        facts=[
            Fact(_("Ended, not yet settled"), format_value(count, COUNT), warn=bool(count)),
            Fact(_("The oldest ended"), _ago(oldest.decided_at, now) if oldest else "-", warn=oldest is not None),
        ],
        items=(
            [
                Item(
                    href=reverse("mission-detail", args=[oldest.pk]),
                    label=f"#{oldest.pk} {oldest.title}",
                    meta=oldest.get_status_display(),
                    at=oldest.decided_at,
                )
            ]
            if oldest
            else []
        ),
        items_title=_("Oldest unsettled") if oldest else "",
    )


def sweep_panel(*, now: datetime) -> Panel:
    """What the sweep is retrying: missions failing to close, settle or email."""
    failing = SweepFailure.objects.filter(resolved_at__isnull=True)
    count = failing.aggregate(n=Count("*"))["n"]
    latest = list(failing.order_by("-failed_at", "-pk")[:LIST_LIMIT]) if count else []
    return Panel(
        key="sweep",
        title=_("Sweep"),
        facts=[
            Fact(
                _("Missions failing to close, settle or email (retried)"),
                format_value(count, COUNT),
                warn=bool(count),
            )
        ],
        items=[
            Item(
                href=reverse("mission-detail", args=[failure.mission_id]),
                label=f"#{failure.mission_id}",
                meta=" · ".join(
                    [
                        failure.get_step_display(),
                        ngettext("%(n)s try", "%(n)s tries", failure.consecutive) % {"n": failure.consecutive},
                        _("next %(time)s") % {"time": f"{failure.retry_at.astimezone(UTC):%H:%M:%S} UTC"},
                    ]
                ),
                detail=failure.last_error,
            )
            for failure in latest
        ],
    )


PanelBuilder = Callable[..., Panel]

# The page's panels, in order. Each builder runs a fixed number of bounded, indexed queries
# (tests/missions/test_monitoring.py runs every builder listed here: empty, with data, and
# for its query plans), so a new panel is one function and one line below.
PANEL_BUILDERS: list[PanelBuilder] = [
    pledges_panel,
    outcomes_panel,
    settlement_latency_panel,
    email_outbox_panel,
    unsettled_panel,
    sweep_panel,
    # EXTENSION POINT: withdrawals waiting for review, and the oldest (issue 10, item 1).
    #   Not built yet: the Withdrawal model does not exist. When it does, add
    #   `withdrawals_panel`: the count and cash of status `requested` and the oldest one
    #   (linked to its admin page), read from a partial index on created_at WHERE status =
    #   'requested'; optionally requested/paid/rejected per day over 30 days.
    # EXTENSION POINT: webhook deliveries by state (DESIGN.md, "Webhooks").
    #   Not built yet: no delivery model exists. When it does, add
    #   `webhook_deliveries_panel`: deliveries per hour over 48 hours stacked by state
    #   (delivered, retrying, failed), from indexes on delivered_at / created_at, and the
    #   count still retrying now.
]


# --- the ledger check's stored result -----------------------------------------------------


def ledger_check_status(*, now: datetime) -> dict:
    """The latest finished ledger check, one still waiting for a worker, and whether the
    latest is older than three scheduled runs (is beat running?)."""
    # Both read newest first and stop at the first match: the table keeps 30 days of checks.
    newest = LedgerCheck.objects.order_by("-pk").first()
    waiting = newest if newest is not None and newest.finished_at is None else None
    latest = LedgerCheck.objects.filter(finished_at__isnull=False).order_by("-pk").first()
    every = timedelta(seconds=settings.MISSIONHUB_LEDGER_CHECK_SECONDS)
    names = usernames_by_id(user_ids={c.requested_by_id for c in (latest, waiting) if c and c.requested_by_id})
    return {
        "latest": latest,
        "latest_by": names.get(latest.requested_by_id, "") if latest and latest.requested_by_id else "",
        "latest_seconds": (
            f"{(latest.finished_at - latest.started_at).total_seconds():.1f}" if latest and latest.started_at else ""
        ),
        "waiting": waiting,
        "waiting_by": names.get(waiting.requested_by_id, "") if waiting and waiting.requested_by_id else "",
        "stale": latest is None or now - latest.finished_at > 3 * every,
        "every_minutes": max(1, round(every.total_seconds() / 60)),
    }


def monitoring_page(*, now: datetime) -> dict:
    """Everything the monitoring page shows."""
    return {
        "panels": [build(now=now) for build in PANEL_BUILDERS],
        "ledger_check": ledger_check_status(now=now),
        "now": now,
    }
