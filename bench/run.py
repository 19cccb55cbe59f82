"""MissionHub benchmark: `make bench`, or `python -m bench.run`.

What it measures, and why:

1. wallet_topup, one after the other: the cost of the smallest money transaction
   (lock two accounts, one transaction, two postings, two balance updates).
2. pledge_create into one mission from many users, one after the other: the hot path of
   a live stream, which also locks the mission row and appends an event.
3. the same with 8 threads at once, each with its own connection: every pledge queues on
   the same mission row, so this shows the lock's cost (SQLite serialises all writers).
4. mission_settle refunding 100 and 1,000 contributors (10,000 when BENCH_SCALE >= 10):
   the design promises one set-based write, so the number of SQL statements must not
   grow with the number of contributors (on SQLite: but for Django's batching of bulk
   inserts at 999 parameters). The run fails if it does.
5. GET /api/missions (a page of 20 out of 1,000 missions) and
   GET /api/missions/{id}/pledges (the 1,000-contributor mission of 4, at every scale)
   through django.test.Client: latency and statements per request on both databases
   (each should be a small constant: no N+1).
6. ledger_verify over everything created: how long the audit takes, and it must find
   nothing wrong. The run fails if it does.

It never touches a developer's data: with no DATABASE_URL it deletes and migrates two
SQLite files under MISSIONHUB_VAR_DIR (var/bench by default; the folder's name must
contain "bench"); with DATABASE_URL and ACCOUNTS_DATABASE_URL (PostgreSQL) both
database names must end with `_bench`, and both are dropped, created and migrated.

Celery is not involved: `app.send_task` is replaced by a recorder (the broker is not
what is measured) and settlement is run by calling `mission_settle` directly. Passwords
use the MD5 hasher, DEBUG is switched off at run time so connections keep no query log,
and the throttles are lifted so that the API loop is not answered 429.

BENCH_SCALE (default 1) multiplies every count. Exit status: 0 when every check held,
1 when a check failed (ledger_verify problems, settlement statements growing with the
contributors, failed pledges or refunds), 2 when the databases are not bench databases
or BENCH_SCALE is not a positive number.
"""

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Row, table

BASE_DIR = Path(__file__).resolve().parent.parent

# Base counts, multiplied by BENCH_SCALE; sized for well under two minutes on two cores.
TOPUPS = 1_000
PLEDGES = 1_000
THREADED_PLEDGES = 1_000
THREADS = 8
API_REQUESTS = 200
MISSIONS_IN_DATABASE = 1_000
STREAMERS = 5
SETTLEMENT_SIZES = (100, 1_000)
LARGE_SETTLEMENT = 10_000
API_CONTRIBUTORS = 1_000
LIFTED_THROTTLE = "1000000/min"


def progress(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


def configure_environment() -> None:
    """Before Django reads its settings: which settings, where files go, no throttling."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missionhub.settings")
    os.environ.setdefault("MISSIONHUB_VAR_DIR", str(BASE_DIR / "var" / "bench"))
    for scope in ("ANON", "USER", "MONEY"):
        os.environ[f"THROTTLE_{scope}"] = LIFTED_THROTTLE


def bench_scale() -> float | None:
    """BENCH_SCALE as a positive number, or None when it is not one."""
    try:
        scale = float(os.environ.get("BENCH_SCALE", "1"))
    except ValueError:
        return None
    return scale if scale > 0 else None


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale))


class TaskRecorder:
    """Stands in for `celery_app.send_task`: counts what would have gone to the broker."""

    def __init__(self) -> None:
        self.sent = 0

    def send_task(self, name: str, args: object = None, kwargs: object = None, **options: object) -> None:
        self.sent += 1


def tune_django() -> TaskRecorder:
    """Runtime settings of the benchmark, and the broker replaced by a recorder."""
    from django.conf import settings
    from django.contrib.auth import hashers

    from missionhub.celery import app

    settings.DEBUG = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()
    recorder = TaskRecorder()
    app.send_task = recorder.send_task
    return recorder


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def settlement_sizes(scale: float) -> tuple[int, ...]:
    return (*SETTLEMENT_SIZES, LARGE_SETTLEMENT) if scale >= 10 else SETTLEMENT_SIZES


def check_settlement_queries(counts: dict[int, int]) -> list[str]:
    """On PostgreSQL the statements of a settlement are a constant. SQLite is held to the
    same rule but for Django's batching of bulk inserts at 999 parameters per statement:
    one more INSERT per ~100 rows (postings, outbox rows) is SQLite's limit, not a loop."""
    from django.db import connections

    if connections["default"].vendor == "sqlite":
        smallest = min(counts)
        allowed = {size: counts[smallest] + 2 * (-(-size // 100) - -(-smallest // 100)) for size in counts}
        if all(counts[size] <= allowed[size] for size in counts):
            return []
    elif len(set(counts.values())) == 1:
        return []
    seen = ", ".join(f"{size:,} contributors: {queries}" for size, queries in counts.items())
    return [f"mission_settle's statements grow with the contributors ({seen})"]


def run_measurements(scale: float) -> Results:
    from bench import scenarios

    results = Results()
    sizes = settlement_sizes(scale)
    progress("creating users")
    streamers = scenarios.create_streamers(STREAMERS)
    row, viewer_ids = scenarios.measure_user_creation(count=max(*sizes, scaled(TOPUPS, scale)))
    population = scenarios.Population(streamers=streamers, viewer_ids=viewer_ids)
    results.rows.append(row)

    progress("1. top-ups")
    results.rows.append(scenarios.measure_topups(population, count=scaled(TOPUPS, scale)))
    progress("2. pledges, sequential")
    row, _ = scenarios.measure_pledges_sequential(population, count=scaled(PLEDGES, scale))
    results.rows.append(row)
    progress(f"3. pledges, {THREADS} threads")
    row, failures = scenarios.measure_pledges_threaded(
        population, count=scaled(THREADED_PLEDGES, scale), threads=THREADS
    )
    results.rows.append(row)
    results.failures += failures

    counts: dict[int, int] = {}
    settled: dict[int, int] = {}
    for size in sizes:
        progress(f"4. settlement of {size:,} contributors")
        settlement = scenarios.measure_settlement(population, contributors=size)
        results.rows.append(settlement.row)
        results.failures += settlement.failures
        counts[size] = settlement.queries
        settled[size] = settlement.mission_id
    results.failures += check_settlement_queries(counts)

    progress("5. the API")
    if row := scenarios.fill_missions(population, total=MISSIONS_IN_DATABASE):
        results.rows.append(row)
    # The pledges list of the settled 1,000-contributor mission: the same size at every scale.
    results.rows += scenarios.measure_api(settled[API_CONTRIBUTORS], count=scaled(API_REQUESTS, scale))

    progress("6. ledger_verify")
    row, problems = scenarios.measure_verify()
    results.rows.append(row)
    results.failures += problems
    return results


def header(scale: float, database: str) -> str:
    import django

    return (
        f"MissionHub bench - database: {database} - Python {platform.python_version()}, "
        f"Django {django.get_version()} - BENCH_SCALE={scale:g}, {os.cpu_count()} CPUs"
    )


def report(results: Results, *, title: str, recorder: TaskRecorder, elapsed: float) -> None:
    out = sys.stdout
    out.write(f"{title}\n\n{table(results.rows)}\n\n")
    out.write(f"tasks recorded instead of sent to the broker: {recorder.sent:,}; total run {elapsed:.1f} s\n")
    for failure in results.failures:
        out.write(f"FAILED: {failure}\n")
    out.write("all checks passed\n" if not results.failures else f"{len(results.failures)} check(s) failed\n")
    out.flush()


def main() -> int:
    began = time.perf_counter()
    configure_environment()
    scale = bench_scale()
    if scale is None:
        progress("BENCH_SCALE must be a positive number")
        return 2

    import django

    django.setup()
    from bench import databases

    try:
        engine = databases.check_safe()
    except databases.UnsafeDatabase as exc:
        progress(f"refusing to run: {exc}")
        return 2
    recorder = tune_django()
    progress("dropping, creating and migrating the bench databases")
    databases.reset(engine)
    title = header(scale, databases.describe())
    results = run_measurements(scale)
    report(results, title=title, recorder=recorder, elapsed=time.perf_counter() - began)
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
