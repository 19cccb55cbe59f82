"""Celery tasks: each loads by id and makes one service call. All are idempotent."""

from celery import shared_task
from django.conf import settings

from ledger.models import Notification

from . import ledger_checks, services


@shared_task(name="missions.settle_mission")
def settle_mission(*, mission_id: int) -> bool:
    return services.mission_settle_unit(mission_id=mission_id)


# The email tasks do not retry themselves: a failed email's row in the outbox holds its
# backoff and its count of tries, and the sweep enqueues it again when it is due.
@shared_task(name="missions.notify_contributors")
def notify_contributors(*, mission_id: int) -> int:
    kinds = (Notification.Kind.RESULT, Notification.Kind.PAYOUT)
    return services.mission_emails_unit(mission_id=mission_id, kinds=kinds)


@shared_task(name="missions.notify_streamer")
def notify_streamer(*, mission_id: int) -> int:
    return services.mission_emails_unit(mission_id=mission_id, kinds=(Notification.Kind.MISSION_CREATED,))


@shared_task(name="missions.sweep")
def sweep() -> dict:
    report = services.missions_sweep(batch_size=settings.MISSIONHUB_SWEEP_BATCH)
    return report.__dict__


# Every few minutes from beat (no id), or for the check a staff member asked for.
@shared_task(name=ledger_checks.TASK)
def ledger_check(*, check_id: int | None = None) -> bool | None:
    check = ledger_checks.ledger_check_run(check_id=check_id)
    return None if check is None else check.ok
