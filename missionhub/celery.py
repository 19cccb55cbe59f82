"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""

import os

from celery import Celery

from . import broker

broker.register()  # `embedded://`, the default broker (before the app resolves its transport)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missionhub.settings")

app = Celery("missionhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="missionhub.ping", ignore_result=False)
def ping(token: str) -> str:
    """Answer with the token: proves a worker took a message from the broker and ran it."""
    return token
