import uuid

import pytest

from missionhub.celery import app as celery_app
from missionhub.celery import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(databases=["default", "accounts"])]


def test_a_task_sent_here_runs_in_the_separate_worker_process(celery_worker_process):
    token = uuid.uuid4().hex

    result = ping.delay(token)

    assert result.get(timeout=30) == token
    assert celery_worker_process.process.poll() is None


def test_tasks_are_acknowledged_late_one_at_a_time_as_json():
    conf = celery_app.conf

    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]


def test_an_enqueue_on_commit_never_waits_on_the_result_backend():
    """The tasks keep no result; a send that subscribed to one would wait, unbounded, on a
    result backend that stops answering (tests/faults/test_broker_outage.py freezes it)."""
    from unittest import mock

    from ledger.signals import task_enqueue

    with mock.patch.object(celery_app, "send_task") as send:
        assert task_enqueue("missions.settle_mission", mission_id=7) is True

    send.assert_called_once_with("missions.settle_mission", kwargs={"mission_id": 7}, ignore_result=True)


@pytest.mark.parametrize(
    ("task", "queue"),
    [("missions.settle_mission", "money"), ("missions.sweep", "money"), ("missions.notify_contributors", "celery")],
)
def test_settlements_and_the_sweep_have_a_queue_read_before_the_emails(task, queue):
    assert celery_app.amqp.router.route({}, task)["queue"].name == queue
    assert [q.name for q in celery_app.conf.task_queues] == ["money", "celery"]  # the order workers read them
