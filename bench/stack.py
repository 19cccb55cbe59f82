"""The production-like stack the HTTP bench starts and stops itself: gunicorn with
deploy/gunicorn.conf.py, a Celery worker, and the floor (a minimal Django + DRF project
written into a temporary directory)."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
GUNICORN_CONF = BASE_DIR / "deploy" / "gunicorn.conf.py"
PG = "postgres://postgres@127.0.0.1:5432"
DEFAULT_DB = "missionhub_bench"
ACCOUNTS_DB = "missionhub_accounts_bench"
FLOOR_DB = "mh_floor_bench"
BROKER = "redis://127.0.0.1:6379/11"
CACHE = "redis://127.0.0.1:6379/12"
LIFTED = "1000000/min"
THROTTLE_SCOPES = ("LOGIN", "LOGIN_ADDRESS", "REGISTER", "MONEY", "USER", "ANON")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_environment(var_dir: Path, *, postgres: bool = True) -> dict[str, str]:
    """The environment production would set (README's variables), on bench databases,
    with the throttles lifted so that the load is not answered 429."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "ACCOUNTS_DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "EMAIL_PROVIDER"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="missionhub.settings",
        DEBUG="0",
        SECRET_KEY=env.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(64),
        MISSIONHUB_VAR_DIR=str(var_dir),
        STATIC_ROOT=str(var_dir / "staticfiles"),
        LOG_LEVEL="WARNING",
        GUNICORN_LOG_LEVEL="warning",
        GUNICORN_WORKER_TMP_DIR=str(var_dir / "gunicorn-tmp"),
        # Tokens are minted once before the load; they must outlive a full run.
        JWT_ACCESS_MINUTES="240",
        # Email delivery is not measured (nor sent anywhere): Django's dummy backend.
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
    )
    for scope in THROTTLE_SCOPES:
        env[f"THROTTLE_{scope}"] = LIFTED
    if postgres:
        env.update(
            DATABASE_URL=f"{PG}/{DEFAULT_DB}",
            ACCOUNTS_DATABASE_URL=f"{PG}/{ACCOUNTS_DB}",
            CELERY_BROKER_URL=BROKER,
            REDIS_URL=CACHE,
        )
    (var_dir / "gunicorn-tmp").mkdir(parents=True, exist_ok=True)
    return env


class Process:
    """A child process in its own process group, stopped by its pid on exit."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 (our own argv)
            argv, env=env, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._out.close()


def wait_http(url: str, *, process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited; see {process.log}")
        try:
            request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})  # noqa: S310
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s; see {process.log}")


def gunicorn(name: str, wsgi: str, *, env: dict[str, str], cwd: Path, log: Path, health: str) -> tuple[Process, str]:
    """gunicorn -c deploy/gunicorn.conf.py on 127.0.0.1:<free port>; (process, base URL)."""
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    process = Process(name, [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), wsgi], env=env, cwd=cwd, log=log)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + health, process=process)
    return process, url


def celery_worker(*, env: dict[str, str], log: Path) -> Process:
    """One worker process (prefork, concurrency 1): the settlement and the sweep run here."""
    argv = [str(VENV_BIN / "celery"), "-A", "missionhub", "worker", "--loglevel=WARNING", "--concurrency=1",
            "--without-mingle", "--without-gossip"]  # fmt: skip
    return Process("celery worker", argv, env=env, cwd=BASE_DIR, log=log)


def celery_beat(*, env: dict[str, str], log: Path, schedule: Path) -> Process:
    argv = [str(VENV_BIN / "celery"), "-A", "missionhub", "beat", "--loglevel=WARNING", "-s", str(schedule)]
    return Process("celery beat", argv, env=env, cwd=BASE_DIR, log=log)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the floor ----------------------------------------------------------------------------

FLOOR_MODELS = """
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    quantity = models.IntegerField(default=0)
"""

FLOOR_VIEWS = """
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Item


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ["id", "name", "quantity"]


class ItemView(APIView):
    def get(self, request, pk):
        return Response(ItemSerializer(Item.objects.get(pk=pk)).data)
"""

FLOOR_URLS = """
from django.urls import path

from items.views import ItemView

urlpatterns = [path("items/<int:pk>", ItemView.as_view())]
"""

FLOOR_SETTINGS = """

# --- added by MissionHub's bench: the floor on the same database server -------------------
import os

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS += ["rest_framework", "items"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": "{db}", "USER": "postgres",
    "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": 60}}}}
REST_FRAMEWORK = {{"DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]}}
"""

FLOOR_ITEMS = 1000


def floor_environment(env: dict[str, str]) -> dict[str, str]:
    """The app's environment without its settings module: the floor uses its own."""
    return {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}


def floor_project(directory: Path, *, env: dict[str, str]) -> None:
    """startproject + one app, one model, one APIView; migrated and filled with items."""
    python = str(VENV_BIN / "python")
    clean = floor_environment(env)
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(VENV_BIN / "django-admin"), "startproject", "floor", str(directory)], check=True, env=clean)  # noqa: S603
    subprocess.run([python, "manage.py", "startapp", "items"], check=True, cwd=directory, env=clean)  # noqa: S603
    (directory / "items" / "models.py").write_text(textwrap.dedent(FLOOR_MODELS))
    (directory / "items" / "views.py").write_text(textwrap.dedent(FLOOR_VIEWS))
    (directory / "floor" / "urls.py").write_text(textwrap.dedent(FLOOR_URLS))
    with (directory / "floor" / "settings.py").open("a") as settings:
        settings.write(FLOOR_SETTINGS.format(db=FLOOR_DB))
    for argv in (["makemigrations", "items"], ["migrate", "--noinput"]):
        subprocess.run([python, "manage.py", *argv], check=True, cwd=directory, env=clean, capture_output=True)  # noqa: S603
    script = (
        "from items.models import Item; "
        f"Item.objects.bulk_create([Item(name=f'item {{i}}', quantity=i) for i in range({FLOOR_ITEMS})])"
    )
    subprocess.run([python, "manage.py", "shell", "-c", script], check=True, cwd=directory, env=clean)  # noqa: S603
