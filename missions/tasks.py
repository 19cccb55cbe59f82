"""Celery tasks: each loads by id and makes one service call. All are idempotent."""

from celery import shared_task
from django.conf import settings

from ledger.models import Notification

from . import services
from .errors import EmailSendFailed

EMAIL_RETRY = {
    "autoretry_for": (EmailSendFailed,),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 10,
}


@shared_task(name="missions.settle_mission")
def settle_mission(*, mission_id: int) -> bool:
    return services.mission_settle(mission_id=mission_id)


@shared_task(name="missions.notify_contributors", **EMAIL_RETRY)
def notify_contributors(*, mission_id: int) -> int:
    kinds = (Notification.Kind.RESULT, Notification.Kind.PAYOUT)
    return services.mission_emails_send(mission_id=mission_id, kinds=kinds)


@shared_task(name="missions.notify_streamer", **EMAIL_RETRY)
def notify_streamer(*, mission_id: int) -> int:
    return services.mission_emails_send(mission_id=mission_id, kinds=(Notification.Kind.MISSION_CREATED,))


@shared_task(name="missions.sweep")
def sweep() -> dict:
    report = services.missions_sweep(batch_size=settings.MISSIONHUB_SWEEP_BATCH)
    return report.__dict__
