"""deploy/gunicorn.conf.py as shipped (one worker): recycling a worker after max_requests
does not stop serving for long. It used to for 1-2.5 s: the new worker imported Django and
the app from scratch, and the master first waited for the old one's interpreter shutdown."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
RECYCLE_EVERY = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _start(tmp_path, app: str, **env_overrides) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKER_TMP_DIR": str(tmp_path),
        "GUNICORN_MAX_REQUESTS": str(RECYCLE_EVERY),
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
        "GUNICORN_LOG_LEVEL": "warning",
        "MISSIONHUB_VAR_DIR": str(tmp_path),
        **env_overrides,
    }
    process = subprocess.Popen(
        [str(GUNICORN), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), app],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, port


@pytest.fixture
def gunicorn(tmp_path):
    process, port = _start(tmp_path, "missionhub.wsgi")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(port, "/healthz") == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail(f"gunicorn did not start: {(tmp_path / 'gunicorn.log').read_text()}")
    yield port
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_a_recycled_worker_is_replaced_without_a_long_pause(gunicorn):
    waits = []
    for _ in range(RECYCLE_EVERY * 4):  # four recycles
        began = time.monotonic()
        assert _get(gunicorn, "/healthz") == 200
        waits.append(time.monotonic() - began)

    # About 20 ms here (fork, first request); the old settings paused over a second.
    assert max(waits) < 0.6, sorted(waits)[-5:]


def test_a_worker_that_cannot_boot_still_stops_gunicorn(tmp_path):
    """The fast exit is for a worker that ends normally: one that fails keeps the exit code
    that makes the master give up instead of forking workers that fail forever."""
    process, _ = _start(tmp_path, "missionhub.no_such_module", GUNICORN_PRELOAD="0")
    try:
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert code != 0
    assert "Worker failed to boot" in (tmp_path / "gunicorn.log").read_text()
