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
