"""A real Celery worker process for tests, on the same broker and the test databases."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.db import connections

from missionhub.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def database_url(alias: str) -> str:
    """A URL for the test database behind `alias` (call it after the test databases exist)."""
    settings = connections[alias].settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "missionhub.settings",
            "DATABASE_URL": database_url("default"),
            "ACCOUNTS_DATABASE_URL": database_url("accounts"),
            # Workers and beat read DEBUG-dependent settings the same way the tests do.
            "DEBUG": "false",
            "SECRET_KEY": "test-secret-key-for-worker-processes-only-0123456789abcdef",
        }
    )
    env.update(extra)
    return env


class CeleryProcess:
    """A `celery` command in its own process, its output in a log file under var/."""

    command: list[str] = []

    def __init__(self, env: dict[str, str]):
        name = self.command[0]
        self.log = Path(env.get("MISSIONHUB_VAR_DIR", ROOT / "var")) / f"{name}-{uuid.uuid4().hex[:8]}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "missionhub", *self.command],
            cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


class BeatProcess(CeleryProcess):
    command = ["beat", "--loglevel=INFO"]


class WorkerProcess(CeleryProcess):
    command = ["worker", "--pool=solo", "--loglevel=INFO", "--without-mingle", "--without-gossip",
               "--without-heartbeat"]  # fmt: skip

    def wait_until_ready(self, timeout: float = 60) -> None:
        """Until the worker has answered a ping task through the broker."""
        deadline = time.monotonic() + timeout
        result = celery_app.send_task("missionhub.ping", args=["ready"])
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited: {self.log.read_text()[-3000:]}")
            if result.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"the worker did not answer: {self.log.read_text()[-3000:]}")
