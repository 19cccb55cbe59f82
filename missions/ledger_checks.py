"""The ledger check as stored work: a worker runs `ledger_verify` and keeps what it found
(`LedgerCheck`) for the monitoring page, whose GET only reads it.

Beat runs one every MISSIONHUB_LEDGER_CHECK_SECONDS; a staff member can ask for one now.
These writes move no money. They live here, not in missions/services.py, because that
module was being rewritten elsewhere when they were written.
"""

import logging
from datetime import timedelta
from functools import partial

from django.db import connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.functions import Now

from ledger.verify import ledger_verify
from missionhub.celery import app as celery_app

from .models import LedgerCheck

logger = logging.getLogger(__name__)

TASK = "missions.ledger_check"
SAMPLE = 10  # problems kept per check, each cut to SAMPLE_CHARS
SAMPLE_CHARS = 300
KEEP = timedelta(days=30)
# A check asked for and not finished within this is not waited for: asking again makes a new one.
WAITING_AT_MOST = timedelta(minutes=10)


def _before(delta: timedelta) -> ExpressionWrapper:
    return ExpressionWrapper(Now() - Value(delta), output_field=DateTimeField())


def _enqueue(check_id: int) -> None:
    """Send the check to a worker; a broker error is logged (the scheduled check still runs)."""
    try:
        celery_app.send_task(TASK, kwargs={"check_id": check_id}, ignore_result=True)
    except Exception:
        logger.exception("could not enqueue ledger check %s; the next scheduled one runs anyway", check_id)


def ledger_check_request(*, staff_id: int) -> tuple[LedgerCheck, bool]:
    """Ask a worker to check the ledger now: `(check, True)`, enqueued after the commit.

    A check already asked for and not finished within WAITING_AT_MOST is returned instead,
    `(check, False)`, so pressing the button twice runs one check.
    """
    with transaction.atomic(using="default"):
        waiting = (
            LedgerCheck.objects.filter(finished_at__isnull=True, requested_at__gte=_before(WAITING_AT_MOST))
            .order_by("-pk")
            .first()
        )
        if waiting is not None:
            return waiting, False
        check = LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.STAFF, requested_by_id=staff_id)
        transaction.on_commit(partial(_enqueue, check.pk), using="default", robust=True)
    return check, True


def _verify_in_one_snapshot() -> dict[str, list[str]]:
    """`ledger_verify`, on PostgreSQL inside one read-only REPEATABLE READ transaction: its
    checks then see one state of the ledger, and a pledge committed between two of its
    queries cannot look like a broken chain. SQLite's default transactions here take the
    write lock (IMMEDIATE), which would stop every payment for the check's duration, so
    there it runs statement by statement, as `manage.py ledger_verify` does everywhere.
    """
    connection = connections["default"]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return ledger_verify()
    with transaction.atomic(using="default"), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return ledger_verify()


def ledger_check_run(*, check_id: int | None = None) -> LedgerCheck | None:
    """Run `ledger_verify` and store what it found on the check `check_id`, or (for beat,
    no id) on a new scheduled check. Returns the check; None if it no longer exists.

    A check already finished is returned as it is (a message delivered twice runs once).
    If the verification itself raises, the check is stored as not ok with the error, and
    the exception goes on to the worker's log. Checks older than KEEP are deleted.
    """
    if check_id is None:
        check = LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.SCHEDULE)
    else:
        check = LedgerCheck.objects.filter(pk=check_id).first()
        if check is None or check.finished_at is not None:
            return check
    this = LedgerCheck.objects.filter(pk=check.pk)
    this.update(started_at=Now())
    try:
        found = _verify_in_one_snapshot()
    except Exception as exc:
        this.update(finished_at=Now(), ok=False, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    results = [
        {"name": name, "count": len(problems), "sample": [p[:SAMPLE_CHARS] for p in problems[:SAMPLE]]}
        for name, problems in found.items()
    ]
    problem_count = sum(row["count"] for row in results)
    this.update(finished_at=Now(), ok=problem_count == 0, problem_count=problem_count, results=results)
    LedgerCheck.objects.filter(requested_at__lt=_before(KEEP)).delete()
    check.refresh_from_db()
    return check
