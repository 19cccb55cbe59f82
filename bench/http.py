"""MissionHub's HTTP bench: `make bench` (BENCH_QUICK=1 for a short run).

Starts the stack itself on fresh *_bench databases (PostgreSQL, Redis dbs 11 and 12),
loads it with wrk from its own process, measures the floor (a minimal Django + DRF
project) side by side, settles large missions through a real Celery worker, prints a
table with the goals of issue 9 and writes bench/results/latest.json. See bench/README.md.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import goals, stack, wrk

BASE_DIR = stack.BASE_DIR
VAR_DIR = BASE_DIR / "var" / "bench-http"
RESULTS = BASE_DIR / "bench" / "results" / "latest.json"
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")

# Sizes: the issue's, and the quick run's.
if QUICK:
    USERS, MISSIONS, STREAMERS = 300, 200, 10
    REPETITIONS, SECONDS, WARMUP_SECONDS = 1, 4, 2
    SETTLE_SIZES = (1_000, 10_000, 100_000)
    EXPIRY_MISSIONS = 200
    BIG_MISSIONS, BIG_PLEDGES, BIG_BACKERS = 10_000, 100_000, 10_000
else:
    USERS, MISSIONS, STREAMERS = 1_000, 1_000, 10
    REPETITIONS, SECONDS, WARMUP_SECONDS = 3, 15, 5
    SETTLE_SIZES = (1_000, 10_000, 100_000, 1_000_000)
    EXPIRY_MISSIONS = 10_000
    BIG_MISSIONS, BIG_PLEDGES, BIG_BACKERS = 100_000, 1_000_000, 100_000
ALL_SETTLE_SIZES = (1_000, 10_000, 100_000, 1_000_000)
CONNECTIONS = (8, 32)
# Ratios at 8 connections (at 32 the floor itself is starved on 2 shared cores); hot_p99_ms at 32.
HEADLINE_CONNECTIONS = 8
HOT_P99_CONNECTIONS = 32
TOPUP_USERS = 32
BALANCE = 100_000_000
LATENCY_SECONDS = 3 if QUICK else 10


def progress(message: str) -> None:
    sys.stderr.write(f"bench {time.strftime('%H:%M:%S')}: {message}\n")
    sys.stderr.flush()


# --- setup ----------------------------------------------------------------------------------


def reset_databases() -> None:
    """Drop and create the bench databases (only *_bench names) and migrate ours."""
    from django.core.management import call_command

    from bench import databases

    engine = databases.check_safe()
    databases.reset(engine)
    with databases._maintenance_connection("default") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{stack.FLOOR_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{stack.FLOOR_DB}"')
    call_command("collectstatic", interactive=False, verbosity=0)


def flush_redis() -> None:
    for db in ("11", "12"):
        subprocess.run(["redis-cli", "-n", db, "FLUSHDB"], check=True, capture_output=True)  # noqa: S603, S607


def mint_tokens(user_ids: list[int]) -> list[str]:
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    return [str(AccessToken.for_user(user)) for user in User.objects.filter(pk__in=user_ids).order_by("pk")]


class Population:
    def __init__(self) -> None:
        from bench import datagen

        progress(f"generating {USERS:,} users, {MISSIONS:,} missions (set-based SQL)")
        self.streamers = datagen.users(prefix="streamer", count=STREAMERS, is_streamer=True)
        self.viewers = datagen.users(prefix="viewer", count=USERS)
        datagen.topups(self.viewers, amount=BALANCE)
        self.missions = datagen.missions(
            count=MISSIONS, streamer_ids=self.streamers, creator_id=self.viewers[0], title="Load"
        )
        datagen.pledges(mission_ids=self.missions, user_ids=self.viewers, per_user=3)
        self.hot = self.missions[0]
        self.tokens = mint_tokens(self.viewers)


# --- load -------------------------------------------------------------------------------------


def scripts(pop: Population, directory: Path) -> dict[str, Path]:
    bodies = {
        "floor": wrk.lua_script(paths=[f"/items/{i}" for i in range(1, stack.FLOOR_ITEMS + 1)]),
        "read": wrk.lua_script(paths=["/api/wallet"], tokens=pop.tokens),
        "pledge": wrk.lua_script(
            paths=[f"/api/missions/{m}/pledges" for m in pop.missions], tokens=pop.tokens,
            method="POST", body={"amount": 100},
        ),
        "hot": wrk.lua_script(
            paths=[f"/api/missions/{pop.hot}/pledges"], tokens=pop.tokens, method="POST", body={"amount": 100}
        ),
        "topup": wrk.lua_script(
            paths=["/api/wallet/topups"], tokens=pop.tokens[:TOPUP_USERS], method="POST", body={"amount": 1000}
        ),
        "missions": wrk.lua_script(paths=["/api/missions"]),
        "home": wrk.lua_script(paths=["/"]),
    }  # fmt: skip
    paths = {}
    for name, text in bodies.items():
        paths[name] = directory / f"{name}.lua"
        paths[name].write_text(text)
    return paths


def run_load(urls: dict[str, str], lua: dict[str, Path]) -> dict:
    """Warm-up, then REPETITIONS rounds; each round runs every scenario at 8 and 32
    connections, interleaved, so drift on the shared machine hits them all alike."""
    target = {name: urls["floor"] if name == "floor" else urls["app"] for name in lua}
    for name, script in lua.items():
        progress(f"warm-up {name}")
        wrk.run(target[name], script, connections=8, seconds=WARMUP_SECONDS)
    runs: dict[str, dict[int, list[wrk.WrkResult]]] = {name: {c: [] for c in CONNECTIONS} for name in lua}
    for repetition in range(REPETITIONS):
        for connections in CONNECTIONS:
            for name, script in lua.items():
                progress(f"round {repetition + 1}/{REPETITIONS}: {name} at {connections} connections")
                runs[name][connections].append(wrk.run(target[name], script, connections=connections, seconds=SECONDS))
    return runs


def summarise(runs: dict) -> dict:
    """Per scenario and connections: median req/s and p99 over the repetitions, errors summed."""
    out = {}
    for name, by_connections in runs.items():
        out[name] = {}
        for connections, results in by_connections.items():
            out[name][str(connections)] = {
                "rps": round(statistics.median(r.rps for r in results), 1),
                "p99_ms": round(statistics.median(r.p99_ms for r in results), 1),
                "p50_ms": round(statistics.median(r.p50_ms for r in results), 1),
                "errors": sum(r.non_2xx + r.socket_errors for r in results),
                "requests": sum(r.requests for r in results),
            }
    return out


# --- statements and Redis round trips per pledge ----------------------------------------------


def statements_and_round_trips(pop: Population, samples: int = 10) -> tuple[dict, float]:
    """Pledges through Django's test client (the whole middleware and DRF stack, no socket),
    statements captured per database; Redis commands on dbs 11 and 12 seen by MONITOR
    (nothing else uses those dbs while this runs: the worker is not started yet)."""
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {pop.tokens[1]}"}
    path = f"/api/missions/{pop.missions[1]}/pledges"

    def pledge() -> None:
        response = client.post(path, {"amount": 100}, content_type="application/json", secure=True, **headers)
        if response.status_code != 201:
            raise RuntimeError(f"pledge answered {response.status_code}: {response.content[:200]!r}")

    pledge()  # warm-up
    counts = {"default": 0, "accounts": 0}
    for _ in range(samples):
        with (
            CaptureQueriesContext(connections["default"]) as default,
            CaptureQueriesContext(connections["accounts"]) as accounts,
        ):
            pledge()
        counts["default"] += len(default.captured_queries)
        counts["accounts"] += len(accounts.captured_queries)
    monitor = subprocess.Popen(["redis-cli", "MONITOR"], stdout=subprocess.PIPE, text=True)  # noqa: S607
    time.sleep(0.5)
    for _ in range(samples):
        pledge()
    time.sleep(0.5)
    monitor.terminate()
    lines = monitor.communicate()[0].splitlines()
    commands = sum(1 for line in lines if " [11 " in line or " [12 " in line)
    return {alias: round(n / samples, 2) for alias, n in counts.items()}, round(commands / samples, 2)


# --- settlement ---------------------------------------------------------------------------------


def failed_mission(pop: Population, *, pledges: int, tag: str) -> tuple[int, list[int]]:
    """A failed mission with `pledges` pledges from a tenth as many users; (id, users)."""
    from django.db import connections

    from bench import datagen

    users = datagen.users(prefix=f"{tag}u", count=max(1, pledges // 10))
    datagen.topups(users, amount=10_000)
    (mission,) = datagen.missions(count=1, streamer_ids=pop.streamers, creator_id=users[0], title=tag)
    datagen.pledges(mission_ids=[mission], user_ids=users, per_user=10)
    with connections["default"].cursor() as cursor:
        cursor.execute("UPDATE missions_mission SET status = 'failed', decided_at = now() WHERE id = %s", [mission])
        cursor.execute(
            "INSERT INTO ledger_event (mission_id, kind, actor_id, amount, created_at) "
            "SELECT id, 'failed', streamer_id, pot, now() FROM missions_mission WHERE id = %s",
            [mission],
        )
    return mission, users


def settled(mission_ids: list[int]) -> int:
    from missions.models import Mission

    return Mission.objects.filter(pk__in=mission_ids, settled_at__isnull=False).count()


def mark_emails_sent(mission_ids: list[int]) -> None:
    """Email delivery is not what is measured: the outbox rows are marked sent at once."""
    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_notification SET sent_at = now() WHERE mission_id = ANY(%s) AND sent_at IS NULL",
            [mission_ids],
        )


def send_settle(mission_id: int) -> None:
    from missionhub.celery import app

    app.send_task("missions.settle_mission", kwargs={"mission_id": mission_id})


class RssSampler(threading.Thread):
    def __init__(self, worker_pid: int) -> None:
        super().__init__(daemon=True)
        self.worker_pid = worker_pid
        self.peak = 0.0
        self.stop_event = threading.Event()

    def current(self) -> float:
        pids = stack.children(self.worker_pid) or [self.worker_pid]
        return max(stack.rss_mb(pid) for pid in pids)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.peak = max(self.peak, self.current())
            except OSError:
                continue
            time.sleep(0.05)


class Blocker(threading.Thread):
    """While a refund runs: a pledge on another mission and a top-up by a contributor of the
    refunded mission, over HTTP, again and again; the longest wait of each."""

    def __init__(self, url: str, *, pledge_token: str, mission_id: int, topup_token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.mission_id = url, mission_id
        self.pledge_token, self.topup_token = pledge_token, topup_token
        self.longest = {"pledge": 0.0, "topup": 0.0}
        self.failures = 0
        self.stop_event = threading.Event()

    def _post(self, path: str, token: str, body: dict) -> float:
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "X-Forwarded-Proto": "https"},
        )  # fmt: skip
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                response.read()
        except (urllib.error.URLError, OSError):
            self.failures += 1
        return (time.perf_counter() - began) * 1000

    def run(self) -> None:
        while not self.stop_event.is_set():
            pledge = self._post(f"/api/missions/{self.mission_id}/pledges", self.pledge_token, {"amount": 100})
            topup = self._post("/api/wallet/topups", self.topup_token, {"amount": 1000})
            self.longest["pledge"] = max(self.longest["pledge"], pledge)
            self.longest["topup"] = max(self.longest["topup"], topup)
            time.sleep(0.02)


def wait_settled(mission_ids: list[int], *, timeout: float) -> float:
    began = time.perf_counter()
    while settled(mission_ids) < len(mission_ids):
        if time.perf_counter() - began > timeout:
            raise RuntimeError(f"missions {mission_ids[:3]}... not settled within {timeout} s")
        time.sleep(0.02)
    return time.perf_counter() - began


def refund_as_sql(mission_id: int) -> float:
    """The floor of a refund: the same money and outbox rows as one set-based transaction
    written by hand (triggers on), timed from BEGIN to COMMIT."""
    from django.db import connections, transaction

    began = time.perf_counter()
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute("SELECT id FROM missions_mission WHERE id = %s FOR UPDATE", [mission_id])
        cursor.execute(
            "INSERT INTO ledger_transaction (kind, mission_id, created_at) VALUES ('refund', %s, now()) RETURNING id",
            [mission_id],
        )
        tx = cursor.fetchone()[0]
        cursor.execute(
            """
            CREATE TEMP TABLE bench_refund ON COMMIT DROP AS
            SELECT actor_id AS user_id, sum(p.amount) AS amount
            FROM ledger_transaction t JOIN ledger_posting p ON p.transaction_id = t.id
            JOIN ledger_account e ON e.id = p.account_id AND e.kind = 'escrow'
            WHERE t.mission_id = %s AND t.kind = 'pledge' GROUP BY actor_id
            """,
            [mission_id],
        )
        cursor.execute(
            """
            WITH locked AS (
                SELECT a.id, a.balance, a.version, r.amount FROM ledger_account a
                JOIN bench_refund r ON a.kind = 'wallet' AND a.user_id = r.user_id ORDER BY a.id FOR UPDATE
            ), posted AS (
                INSERT INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)
                SELECT %s, id, amount, balance + amount, version + 1 FROM locked RETURNING account_id, amount
            )
            UPDATE ledger_account a SET balance = a.balance + posted.amount, version = a.version + 1
            FROM posted WHERE a.id = posted.account_id
            """,
            [tx],
        )
        cursor.execute(
            """
            WITH escrow AS (
                SELECT id, balance, version FROM ledger_account WHERE kind = 'escrow' AND mission_id = %s FOR UPDATE
            ), posted AS (
                INSERT INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)
                SELECT %s, id, -balance, 0, version + 1 FROM escrow RETURNING account_id
            )
            UPDATE ledger_account SET balance = 0, version = version + 1 WHERE id IN (SELECT account_id FROM posted)
            """,
            [mission_id, tx],
        )
        cursor.execute(
            "INSERT INTO ledger_notification (mission_id, user_id, kind, amount, created_at, attempts, last_error, "
            "provider_message_id) SELECT %s, user_id, 'result', amount, now(), 0, '', '' FROM bench_refund",
            [mission_id],
        )
        cursor.execute(
            "INSERT INTO ledger_event (mission_id, kind, amount, created_at) "
            "SELECT id, 'settled', pot, now() FROM missions_mission WHERE id = %s",
            [mission_id],
        )
        cursor.execute("UPDATE missions_mission SET settled_at = now() WHERE id = %s", [mission_id])
    return time.perf_counter() - began


def measure_settlement(pop: Population, worker: stack.Process, app_url: str) -> dict:
    settle_s: dict[str, float | None] = {str(size): None for size in ALL_SETTLE_SIZES}
    out: dict = {"settle_s": settle_s}
    for size in SETTLE_SIZES:
        progress(f"settlement: generating a failed mission with {size:,} pledges from {size // 10:,} users")
        mission, users = failed_mission(pop, pledges=size, tag=f"s{size}")
        sampler = RssSampler(worker.pid)
        baseline = sampler.current()
        blocker = None
        if size == 100_000:
            blocker = Blocker(app_url, pledge_token=pop.tokens[2], mission_id=pop.missions[2],
                              topup_token=mint_tokens([users[0]])[0])  # fmt: skip
        sampler.start()
        progress(f"settlement: refunding {size:,} pledges through the worker")
        send_settle(mission)
        if blocker:
            blocker.start()
        settle_s[str(size)] = round(wait_settled([mission], timeout=1800), 3)
        sampler.stop_event.set()
        sampler.join()
        mark_emails_sent([mission])
        if blocker:
            blocker.stop_event.set()
            blocker.join()
            out["settle_block_ms"] = round(max(blocker.longest.values()), 1)
            out["settle_block_detail_ms"] = {k: round(v, 1) for k, v in blocker.longest.items()}
            out["settle_block_failures"] = blocker.failures
        if size == max(SETTLE_SIZES):
            out["settle_peak_rss_mb"] = round(sampler.peak - baseline, 1)
            out["settle_peak_rss_size"] = size
    progress("settlement: the 100,000 refund as hand-written set-based SQL")
    mission, _ = failed_mission(pop, pledges=100_000, tag="sql")
    out["settle_sql_s"] = round(refund_as_sql(mission), 3)
    if settle_s["100000"] and out["settle_sql_s"]:
        out["settle_ratio"] = round(settle_s["100000"] / out["settle_sql_s"], 2)
    out["settle_per_contributor_growth"] = goals.per_contributor_growth(settle_s)
    return out


def measure_expiry(pop: Population, env: dict, log_dir: Path) -> dict:
    """EXPIRY_MISSIONS missions, each with one pledge, fall due at once; beat sweeps every
    second (MISSIONHUB_EXPIRE_SWEEP_SECONDS=1); timed until every one is settled."""
    from django.db import connections

    from bench import datagen

    progress(f"expiry: {EXPIRY_MISSIONS:,} missions falling due at once")
    ids = datagen.missions(
        count=EXPIRY_MISSIONS, streamer_ids=pop.streamers, creator_id=pop.viewers[0], title="Expiry",
        deadline_hours=1,
    )  # fmt: skip
    datagen.pledges(mission_ids=ids, user_ids=pop.viewers[: min(len(pop.viewers), EXPIRY_MISSIONS)],
                    per_user=max(1, EXPIRY_MISSIONS // len(pop.viewers)))  # fmt: skip
    with connections["default"].cursor() as cursor:
        cursor.execute("UPDATE missions_mission SET deadline = now() WHERE id = ANY(%s)", [ids])
    beat = stack.celery_beat(
        env={**env, "MISSIONHUB_EXPIRE_SWEEP_SECONDS": "1"},
        log=log_dir / "beat.log",
        schedule=log_dir / "beat-schedule",
    )
    began = time.perf_counter()
    try:
        while settled(ids) < len(ids):
            mark_emails_sent(ids)
            if time.perf_counter() - began > 1200:
                raise RuntimeError("expiry: not all missions settled within 1,200 s")
            time.sleep(0.5)
    finally:
        beat.stop()
    elapsed = round(time.perf_counter() - began, 2)
    mark_emails_sent(ids)
    return {
        "expiry_missions": EXPIRY_MISSIONS,
        "expiry_s": elapsed,
        "expiry_10k_s": elapsed if EXPIRY_MISSIONS == 10_000 else None,
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_of(url: str) -> int:
    """The status one GET answers, redirects not followed (wrk counts a 3xx as a success)."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})  # noqa: S310
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


PAGE_REQUESTS = 10 if QUICK else 30


def timed_get(url: str) -> float:
    """One GET from a single client, in ms (sequential: p50 of a page, not a throughput)."""
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})  # noqa: S310
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
        response.read()
    return (time.perf_counter() - began) * 1000


def measure_pages(pop: Population, app_url: str) -> dict:
    """Single-client latency of the list, the home page and a mission page, with
    BIG_MISSIONS missions and BIG_PLEDGES pledges in the database, the page's mission
    having BIG_BACKERS backers."""
    from bench import datagen

    progress(f"pages: generating {BIG_MISSIONS:,} missions and {BIG_PLEDGES:,} pledges")
    users = datagen.users(prefix="big", count=BIG_BACKERS)
    datagen.topups(users, amount=100_000)
    missions = datagen.missions(count=BIG_MISSIONS, streamer_ids=pop.streamers, creator_id=pop.viewers[0], title="Big")
    page_mission = missions[-1]
    datagen.pledges(mission_ids=[page_mission], user_ids=users, per_user=1)
    rest = BIG_PLEDGES - BIG_BACKERS
    datagen.pledges(mission_ids=missions[:-1], user_ids=users, per_user=max(1, rest // len(users)))
    out = {"pages_data": {"missions": BIG_MISSIONS, "pledges": BIG_PLEDGES, "backers": BIG_BACKERS}}
    for key, path in (("list_p50_ms", "/api/missions"), ("home_p50_ms", "/"),
                      ("mission_page_p50_ms", f"/missions/{page_mission}")):  # fmt: skip
        out[key.replace("_p50_ms", "_status")] = status_of(app_url + path)
        timings = [timed_get(app_url + path) for _ in range(PAGE_REQUESTS + 1)][1:]  # the first warms up
        out[key] = round(statistics.median(timings), 1)
        out[key.replace("_p50_ms", "_max_ms")] = round(max(timings), 1)
    return out


def measure_sqlite(directory: Path) -> dict:
    """The embedded default (SQLite, no services) under the same gunicorn settings."""
    sqlite_var = BASE_DIR / "var" / "bench-sqlite"
    env = stack.app_environment(sqlite_var, postgres=False)
    progress("sqlite: migrating and generating data through the services")
    setup = subprocess.run(
        [sys.executable, "-m", "bench.sqlite_setup"], env=env, cwd=BASE_DIR, check=True, capture_output=True, text=True
    )
    data = json.loads(setup.stdout.strip().splitlines()[-1])
    server, url = stack.gunicorn(
        "gunicorn (sqlite)",
        "missionhub.wsgi",
        env=env,
        cwd=BASE_DIR,
        log=directory / "gunicorn-sqlite.log",
        health="/healthz",
    )
    try:
        script = directory / "sqlite-pledge.lua"
        paths = [f"/api/missions/{m}/pledges" for m in data["missions"]]
        script.write_text(wrk.lua_script(paths=paths, tokens=data["tokens"], method="POST", body={"amount": 100}))
        wrk.run(url, script, connections=8, seconds=WARMUP_SECONDS)
        result = wrk.run(url, script, connections=8, seconds=SECONDS)
    finally:
        server.stop()
    return {"sqlite_pledge_rps": round(result.rps, 1), "sqlite_pledge_errors": result.non_2xx + result.socket_errors}


def headline(load: dict) -> dict:
    c = str(HEADLINE_CONNECTIONS)
    baseline = load["floor"][c]["rps"]
    pledge = load["pledge"][c]["rps"]

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    return {
        "baseline_rps": baseline,
        "read_rps": load["read"][c]["rps"],
        "read_ratio": ratio(load["read"][c]["rps"], baseline),
        "pledge_rps": pledge,
        "pledge_ratio": ratio(pledge, baseline),
        "pledge_p99_ms": load["pledge"][c]["p99_ms"],
        "hot_rps": load["hot"][c]["rps"],
        "hot_ratio": ratio(load["hot"][c]["rps"], pledge),
        "hot_p99_ms": load["hot"][str(HOT_P99_CONNECTIONS)]["p99_ms"],
        "topup_ratio": ratio(load["topup"][c]["rps"], pledge),
        "errors": sum(cell["errors"] for name, by_c in load.items() for cell in by_c.values()),
    }


def verify() -> bool:
    from ledger.verify import ledger_verify

    found = ledger_verify()
    problems = [f"{name}: {item}" for name, items in found.items() for item in items]
    for problem in problems[:10]:
        progress(f"ledger_verify: {problem}")
    return not problems


def table(results: dict) -> str:
    lines = ["", f"MissionHub HTTP bench ({results['mode']}) - {results['machine']}", ""]
    load = results["load"]
    lines.append(f"{'scenario':<10} " + " ".join(f"{f'{c} conns rps / p99 ms / err':>30}" for c in CONNECTIONS))
    for name, by_c in load.items():
        cells = [f"{by_c[str(c)]['rps']:>10,.1f} / {by_c[str(c)]['p99_ms']:>9,.1f} / {by_c[str(c)]['errors']:>4}"
                 for c in CONNECTIONS]  # fmt: skip
        lines.append(f"{name:<10} " + " ".join(f"{cell:>30}" for cell in cells))
    lines += ["", f"{'figure':<32} {'value':>14}   goal"]
    goal_of = {row[0]: row for row in goals.goal_table(results)}
    for key in KEYS:
        value = results.get(key)
        row = goal_of.get(key)
        shown = json.dumps(value) if isinstance(value, dict | bool) or value is None else f"{value:,}"
        lines.append(f"{key:<32} {shown:>14}   " + (f"{row[1]}: {row[3]}" if row else ""))
    lines += ["", "goals:"]
    for key, target, value, verdict in goals.goal_table(results):
        lines.append(f"  {verdict.upper():<13} {key} {target} (figure: {value})")
    return "\n".join(lines) + "\n"


KEYS = (
    "baseline_rps", "read_rps", "read_ratio", "pledge_rps", "pledge_ratio", "pledge_p99_ms", "hot_rps",
    "hot_ratio", "hot_p99_ms", "topup_ratio", "statements_per_pledge", "redis_round_trips_per_pledge",
    "errors", "settle_s", "settle_sql_s", "settle_ratio", "settle_peak_rss_mb", "settle_block_ms",
    "expiry_10k_s", "list_p50_ms", "home_p50_ms", "mission_page_p50_ms", "sqlite_pledge_rps", "ledger_verify",
)  # fmt: skip


def machine() -> str:
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs{memory}, Python {platform.python_version()}"


def main() -> int:
    began = time.perf_counter()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    env = stack.app_environment(VAR_DIR)
    os.environ.update(env)
    import django

    django.setup()
    results: dict = dict.fromkeys(KEYS)
    results.update(
        mode="quick" if QUICK else "full", machine=machine(), started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    processes: list[stack.Process] = []
    with tempfile.TemporaryDirectory(prefix="mh-bench-") as tmp:
        directory = Path(tmp)
        try:
            progress("dropping, creating and migrating the bench databases")
            reset_databases()
            flush_redis()
            pop = Population()
            progress("statements and Redis round trips per pledge (test client)")
            results["statements_per_pledge"], results["redis_round_trips_per_pledge"] = statements_and_round_trips(pop)
            progress("writing and migrating the floor project")
            floor_dir = directory / "floor"
            stack.floor_project(floor_dir, env=env)
            floor, floor_url = stack.gunicorn(
                "gunicorn (floor)",
                "floor.wsgi",
                env=stack.floor_environment(env),
                cwd=floor_dir,
                log=VAR_DIR / "gunicorn-floor.log",
                health="/items/1",
            )
            processes.append(floor)
            app, app_url = stack.gunicorn(
                "gunicorn (app)",
                "missionhub.wsgi",
                env=env,
                cwd=BASE_DIR,
                log=VAR_DIR / "gunicorn.log",
                health="/healthz",
            )
            processes.append(app)
            worker = stack.celery_worker(env=env, log=VAR_DIR / "worker.log")
            processes.append(worker)
            load = summarise(run_load({"app": app_url, "floor": floor_url}, scripts(pop, directory)))
            results["load"] = load
            results.update(headline(load))
            floor.stop()
            results.update(measure_settlement(pop, worker, app_url))
            results.update(measure_expiry(pop, env, VAR_DIR))
            results.update(measure_pages(pop, app_url))
            progress("ledger_verify")
            results["ledger_verify"] = verify()
        finally:
            for process in reversed(processes):
                process.stop()
        results.update(measure_sqlite(directory))
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(table(results))
    sys.stdout.write(f"\nwritten {RESULTS.relative_to(BASE_DIR)}; {results['elapsed_s']} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
