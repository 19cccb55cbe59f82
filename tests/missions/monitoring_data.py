"""Data for the monitoring page's tests, at chosen times.

Everything is written by the real services (missions, pledges, decisions, settlements),
then moved in time: a mission's `decided_at` and `settled_at` are ordinary columns, and
a pledge's event gets its `created_at` set with the ledger's append-only guards lifted
for that one statement (as the suite's flush does), because the charts read the time of
the pledge and a test cannot wait 48 hours. The money and its invariants are untouched:
`ledger_verify` runs clean after every test.
"""

from datetime import datetime, timedelta

import pgtrigger
from django.db import connections
from django.db.models import F

from ledger.models import Event, Notification
from missions import services
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import sqlite_guards_lifted


def move_events(event_ids: list[int], *, to: datetime) -> None:
    """Set these events' `created_at` (nothing else about them changes)."""
    connection = connections["default"]
    with pgtrigger.ignore(), sqlite_guards_lifted(connection), connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(event_ids))
        cursor.execute(
            f"UPDATE ledger_event SET created_at = %s WHERE id IN ({placeholders})",  # noqa: S608 (placeholders)
            [to, *event_ids],
        )


def pledged_at(mission: Mission, *, amount: int, at: datetime, user=None) -> None:
    """A pledge of `amount` on `mission` through the service, its event moved to `at`."""
    user = user or UserFactory()
    fund(user, max(amount, 1_000))
    services.pledge_create(mission_id=mission.pk, user_id=user.pk, amount=amount)
    latest = Event.objects.filter(mission_id=mission.pk, kind=Event.Kind.PLEDGED).order_by("-pk").first()
    move_events([latest.pk], to=at)


def created_at(*, amount: int, at: datetime, **fields) -> Mission:
    """A mission whose creation (the creator's first pledge) happened at `at`."""
    mission = make_mission(amount=amount, **fields)
    move_events([Event.objects.get(mission_id=mission.pk, kind=Event.Kind.CREATED).pk], to=at)
    return mission


def ended(
    status: str, *, decided_at: datetime, settled_after: timedelta | None = timedelta(seconds=5), **fields
) -> Mission:
    """A mission ended with `status` (through the service), settled unless `settled_after`
    is None, with its decision at `decided_at` and its settlement that long after."""
    streamer = UserFactory(is_streamer=True)
    mission = make_mission(streamer=streamer, **fields)
    if status == Mission.Status.CANCELLED:
        services.mission_cancel(mission_id=mission.pk, staff_id=UserFactory(is_staff=True).pk)
    elif status == Mission.Status.EXPIRED:
        Mission.objects.filter(pk=mission.pk).update(deadline=F("created_at"))
        assert services.missions_expire_due(limit=10) >= 1
    else:
        action = {"succeeded": "success", "failed": "fail", "rejected": "reject"}[status]
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action=action)
    if settled_after is not None:
        # A worker (in the browser tests) may have settled it first: either way it is settled.
        services.mission_settle(mission_id=mission.pk)
    Mission.objects.filter(pk=mission.pk).update(
        decided_at=decided_at, settled_at=None if settled_after is None else decided_at + settled_after
    )
    mission.refresh_from_db()
    assert mission.status == status
    assert (mission.settled_at is None) == (settled_after is None)
    return mission


def email(*, mission_id: int, kind: str = Notification.Kind.RESULT, **fields) -> Notification:
    """An outbox row for a new user (sent, failed or waiting as `fields` say)."""
    return Notification.objects.create(mission_id=mission_id, user_id=UserFactory().pk, kind=kind, **fields)
