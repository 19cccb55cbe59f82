"""The soak against the embedded default, as `make run` starts it (issue 8, build item 3
and defect 9): SQLite files and the embedded broker in a fresh folder, web, worker and
beat under `python -m missionhub.run`, and the same client processes as the PostgreSQL
soak. Missions are decided while pledges continue; afterwards every ended mission is
settled, the worker never died (the supervisor restarted nothing), `ledger_verify`
passes, the clients' totals are the ledger's, and Ctrl-C stops everything with exit 0.

CI decides at least 80 missions; `MISSIONHUB_SOAK=1` (`make soak`) at least 300. Its
figures are written to <MISSIONHUB_VAR_DIR>/soak/embedded-soak.json.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import requests
from django.conf import settings

from bench import stack
from tests.soak import clients

LONG = bool(os.environ.get("MISSIONHUB_SOAK"))
SECONDS = 150 if LONG else 35
VIEWERS = 8 if LONG else 4
STREAMERS = 3 if LONG else 2
AT_LEAST_DECIDED = 300 if LONG else 80
SETTLE_WITHIN = 60
PASSWORD = "soak-and-rinse-42"
OPEN = ("pending", "accepted")


def embedded_environment(var_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "ACCOUNTS_DATABASE_URL"))}
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "EMAIL_BACKEND", "EMAIL_PROVIDER"):
        env.pop(name, None)
    env.update(MISSIONHUB_VAR_DIR=str(var_dir), PORT=str(port), DEBUG="true", PYTHONUNBUFFERED="1")
    for scope in stack.THROTTLE_SCOPES:
        env[f"THROTTLE_{scope}"] = stack.LIFTED
    return env


def manage(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=stack.BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )


def sign_up(url: str, username: str, *, is_streamer: bool) -> str:
    session = requests.Session()
    session.headers["X-Forwarded-Proto"] = "https"
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD, "is_streamer": is_streamer}
    assert session.post(url + "/api/auth/register", json=body, timeout=60).status_code == 201
    answer = session.post(url + "/api/auth/token", json={"username": username, "password": PASSWORD}, timeout=60)
    return answer.json()["access"]


def wait_http(url: str, supervisor: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert supervisor.poll() is None, f"make run's supervisor exited: {log.read_text()[-3000:]}"
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-3000:]}")


def unsettled(db: Path) -> list[int]:
    with sqlite3.connect(db, timeout=30) as con:
        rows = con.execute(
            "SELECT id FROM missions_mission WHERE status NOT IN (?, ?) AND settled_at IS NULL", OPEN
        ).fetchall()
    return [row[0] for row in rows]


def test_make_run_settles_every_decided_mission_under_load_and_stops_cleanly(tmp_path):
    var_dir = tmp_path / "var"
    port = stack.free_port()
    env = embedded_environment(var_dir, port)
    for argv in (["migrate", "--noinput"], ["migrate", "--noinput", "--database=accounts"]):
        done = manage(env, *argv)
        assert done.returncode == 0, done.stderr
    log = tmp_path / "run.log"
    with log.open("w") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "missionhub.run", "--port", str(port)],
            cwd=stack.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url, supervisor, log)
        streamer_tokens = {f"streamer{i}": sign_up(url, f"streamer{i}", is_streamer=True) for i in range(STREAMERS)}
        viewer_tokens = [sign_up(url, f"viewer{i}", is_streamer=False) for i in range(VIEWERS)]
        jobs = [
            (clients.viewer, (url, token, i, list(streamer_tokens), [], SECONDS))
            for i, token in enumerate(viewer_tokens)
        ] + [
            (clients.streamer, (url, token, 100 + i, name, SECONDS))
            for i, (name, token) in enumerate(streamer_tokens.items())
        ]
        seen, load_seconds = clients.run_clients(jobs, seconds=SECONDS)
        deadline = time.monotonic() + SETTLE_WITHIN
        while (left := unsettled(var_dir / "default.sqlite3")) and time.monotonic() < deadline:
            time.sleep(0.5)
        alive = supervisor.poll() is None
    finally:
        supervisor.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            exit_code = supervisor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            exit_code = "killed after 30 s"

    with sqlite3.connect(var_dir / "default.sqlite3") as con:
        latencies = [
            (datetime.fromisoformat(settled) - datetime.fromisoformat(decided)).total_seconds()
            for decided, settled in con.execute(
                "SELECT decided_at, settled_at FROM missions_mission WHERE settled_at IS NOT NULL"
            )
        ]
        external = con.execute(  # the system account caches no balance: its postings' sum
            "SELECT SUM(p.amount) FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id"
            " WHERE a.kind = 'external'"
        ).fetchone()[0]
        escrowed = con.execute(
            "SELECT COALESCE(SUM(p.amount), 0) FROM ledger_posting p"
            " JOIN ledger_transaction t ON t.id = p.transaction_id JOIN ledger_account a ON a.id = p.account_id"
            " WHERE t.kind = 'pledge' AND a.kind = 'escrow'"
        ).fetchone()[0]
    run_log = log.read_text()
    decided = sum(seen.decided[action] for action in ("success", "fail", "reject"))
    figures = clients.figures_of(seen, load_seconds=load_seconds, clients=len(jobs), latencies=latencies) | {
        "missions_created": len(seen.missions_created),
        "missions_decided": decided,
        "unsettled": len(left),
        "restarts": run_log.count("restarting"),
        "exit_code": exit_code,
    }
    (settings.VAR_DIR / "soak").mkdir(parents=True, exist_ok=True)
    (settings.VAR_DIR / "soak" / "embedded-soak.json").write_text(json.dumps(figures, indent=2))
    print("embedded soak:", json.dumps(figures))  # noqa: T201 (the figures docs/RELIABILITY.md quotes)

    assert seen.failures == [], seen.failures
    assert seen.replays_differing == 0
    assert alive and figures["restarts"] == 0, run_log[-3000:]
    assert decided >= AT_LEAST_DECIDED, figures
    assert left == [], f"ended but not settled {SETTLE_WITHIN}s after the load: {left}"
    assert -external == seen.topped_up
    assert escrowed == seen.pledged
    assert exit_code == 0, run_log[-3000:]
    verified = manage(env, "ledger_verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
