"""Events drive tasks: a committed `Event` enqueues the Celery task its kind names.

The receiver holds no logic. Tasks are found by name, so the ledger never imports
`missions`; enqueueing runs after the commit and is robust (a broker error is logged,
and the beat sweep enqueues the work again later).
"""

import logging
from functools import partial

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from missionhub.celery import app as celery_app

from .models import Event

logger = logging.getLogger(__name__)

TERMINAL_TASK = "missions.settle_mission"
EVENT_TASKS = {
    Event.Kind.CREATED: "missions.notify_streamer",
    **dict.fromkeys(Event.TERMINAL_KINDS, TERMINAL_TASK),
    Event.Kind.SETTLED: "missions.notify_contributors",
}


def task_enqueue(name: str, *, mission_id: int) -> bool:
    """Send the task to the broker; a broker error is logged and reported, never raised.

    Bounded in time: a broker that stops answering fails the send within seconds (the
    broker's socket timeouts in settings), and `ignore_result` keeps the send from waiting
    on the result backend (its subscription to the task's result has no such bound); the
    tasks keep no result anyway.
    """
    try:
        celery_app.send_task(name, kwargs={"mission_id": mission_id}, ignore_result=True)
    except Exception:
        logger.exception("could not enqueue %s for mission %s; the sweep will retry", name, mission_id)
        return False
    return True


@receiver(post_save, sender=Event, dispatch_uid="ledger.event_enqueue_task_on_commit")
def event_enqueue_task_on_commit(sender, instance: Event, created: bool, **kwargs) -> None:
    if created and (name := EVENT_TASKS.get(instance.kind)):
        transaction.on_commit(partial(task_enqueue, name, mission_id=instance.mission_id), using="default", robust=True)
