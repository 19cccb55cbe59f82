"""The measurements, each a small function returning a report row.

Imported only after django.setup(). Every write goes through the services the views and
tasks call (ledger.services, missions.services), so the numbers are those of the
application's own code paths, without HTTP or the broker in front of them.
"""

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.db import connections
from django.test import Client

from accounts.models import User
from ledger.models import Account, Notification, Posting, Transaction
from ledger.services import wallet_topup
from ledger.verify import ledger_verify
from missions.models import Mission
from missions.services import mission_create, mission_decide, mission_settle, pledge_create

from .report import Row
from .timing import Timings, count_queries, queries_per_operation, time_each

# Every pool user is topped up once with this much, enough for all its pledges.
TOPUP_AMOUNT = 1_000_000
MISSION_SECONDS = 3600
QUERY_SAMPLE = 5
# Hashed with the fast hasher the benchmark installs; never used to sign in.
PASSWORD = secrets.token_urlsafe(16)


class BenchFailure(Exception):
    """The application answered something the benchmark cannot measure around."""


@dataclass
class Population:
    """Who acts in the benchmark: streamers (missions name them) and funded viewers."""

    streamers: list[User]
    viewer_ids: list[int]
    missions: list[int] = field(default_factory=list)

    def viewer(self, index: int) -> int:
        return self.viewer_ids[index % len(self.viewer_ids)]


# --- users and missions -------------------------------------------------------------------


def create_user(username: str, *, is_streamer: bool = False) -> User:
    return User.objects.create_user(
        username=username, email=f"{username}@bench.invalid", password=PASSWORD, is_streamer=is_streamer
    )


def create_streamers(count: int) -> list[User]:
    return [create_user(f"streamer{i}", is_streamer=True) for i in range(count)]


def measure_user_creation(*, count: int) -> tuple[Row, list[int]]:
    users: list[User] = []
    timings = time_each([lambda i=i: users.append(create_user(f"viewer{i}")) for i in range(count)])
    row = _row("setup: create_user (MD5 hasher)", timings, notes="accounts database")
    return row, [user.pk for user in users]


def pledge_amount(index: int) -> int:
    """100..1,000 in steps of 100: varied, deterministic, within the pledge limits."""
    return settings.MISSIONHUB_PLEDGE_MIN * (1 + index % 10)


def new_mission(*, creator_id: int, streamer: User, title: str = "Bench mission") -> Mission:
    return mission_create(
        creator_id=creator_id,
        streamer=streamer.username,
        title=title,
        description="Created by the benchmark.",
        amount=settings.MISSIONHUB_PLEDGE_MIN,
        duration_seconds=MISSION_SECONDS,
    )


def _row(name: str, timings: Timings, *, queries: float | None = None, notes: str = "") -> Row:
    return Row(
        measurement=name,
        n=timings.count,
        ops_per_second=timings.ops_per_second,
        p50_ms=timings.percentile_ms(50),
        p99_ms=timings.percentile_ms(99),
        queries=queries,
        notes=notes,
    )


# --- 1. top-ups ---------------------------------------------------------------------------


def _topup(user_id: int) -> object:
    return wallet_topup(user_id=user_id, amount=TOPUP_AMOUNT)


def measure_topups(population: Population, *, count: int) -> Row:
    """`count` top-ups round the viewers; those the timed run missed are funded untimed."""
    timings = time_each([partial(_topup, population.viewer(i)) for i in range(count)])
    for user_id in population.viewer_ids[count:]:
        _topup(user_id)
    queries = queries_per_operation([partial(_topup, population.viewer(i)) for i in range(QUERY_SAMPLE)])
    return _row("wallet_topup, sequential", timings, queries=queries, notes="queries: per top-up")


# --- 2. and 3. pledges --------------------------------------------------------------------


def _pledge(mission_id: int, user_id: int, index: int) -> object:
    return pledge_create(mission_id=mission_id, user_id=user_id, amount=pledge_amount(index))


def pledge_operations(population: Population, mission_id: int, indexes: range) -> list[Callable[[], object]]:
    return [partial(_pledge, mission_id, population.viewer(i + 1), i) for i in indexes]


def measure_pledges_sequential(population: Population, *, count: int) -> tuple[Row, int]:
    mission = new_mission(creator_id=population.viewer(0), streamer=population.streamers[0])
    timings = time_each(pledge_operations(population, mission.pk, range(count)))
    queries = queries_per_operation(pledge_operations(population, mission.pk, range(count, count + QUERY_SAMPLE)))
    contributors = Mission.objects.get(pk=mission.pk).contributor_count
    notes = f"one mission, {contributors:,} contributors; queries: per pledge"
    return _row("pledge_create, sequential", timings, queries=queries, notes=notes), mission.pk


@dataclass
class ThreadOutcome:
    latencies: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def _pledge_worker(operations: Sequence[Callable[[], object]], start: threading.Barrier, out: ThreadOutcome) -> None:
    """One thread, its own database connection, closed when the thread is done."""
    try:
        start.wait()
        for operation in operations:
            began = time.perf_counter()
            try:
                operation()
            except Exception as exc:
                out.errors.append(exc)
            out.latencies.append(time.perf_counter() - began)
    finally:
        connections.close_all()


def run_in_threads(batches: Sequence[Sequence[Callable[[], object]]]) -> tuple[Timings, list[BaseException]]:
    """Start one thread per batch, release them together; the clock runs until the last ends."""
    start = threading.Barrier(len(batches) + 1)
    outcomes = [ThreadOutcome() for _ in batches]
    threads = [
        threading.Thread(target=_pledge_worker, args=(batch, start, out))
        for batch, out in zip(batches, outcomes, strict=True)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies = tuple(latency for out in outcomes for latency in out.latencies)
    return Timings(latencies=latencies, wall=wall), [error for out in outcomes for error in out.errors]


def measure_pledges_threaded(population: Population, *, count: int, threads: int) -> tuple[Row, list[str]]:
    mission = new_mission(creator_id=population.viewer(0), streamer=population.streamers[1 % len(population.streamers)])
    operations = pledge_operations(population, mission.pk, range(count))
    timings, errors = run_in_threads([operations[t::threads] for t in range(threads)])
    pot = Mission.objects.get(pk=mission.pk).pot
    expected = settings.MISSIONHUB_PLEDGE_MIN + sum(pledge_amount(i) for i in range(count))
    failures = [f"{threads} threads: {len(errors)} pledges failed, first: {errors[0]!r}"] if errors else []
    if not errors and pot != expected:
        failures.append(f"{threads} threads: the pot is {pot:,}, expected {expected:,}")
    notes = f"{threads} threads, one mission, max {timings.max_ms:,.0f} ms; latency includes waiting for the lock"
    return _row(f"pledge_create, {threads} threads", timings, notes=notes), failures


# --- 4. settlement ------------------------------------------------------------------------


def failed_mission(population: Population, *, contributors: int) -> int:
    """A mission with `contributors` distinct contributors, failed by its streamer."""
    streamer = population.streamers[-1]
    mission = new_mission(creator_id=population.viewer(0), streamer=streamer, title=f"Refund {contributors}")
    for i in range(1, contributors):
        pledge_create(mission_id=mission.pk, user_id=population.viewer(i), amount=pledge_amount(i))
    mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
    return mission.pk


def _timed_settle(mission_id: int) -> tuple[float, bool]:
    began = time.perf_counter()
    settled = mission_settle(mission_id=mission_id)
    return time.perf_counter() - began, settled


def settlement_problems(mission_id: int, *, contributors: int, settled: bool) -> list[str]:
    refund = Transaction.objects.filter(mission_id=mission_id, kind=Transaction.Kind.REFUND).first()
    legs = Posting.objects.filter(transaction=refund).count() if refund else 0
    emails = Notification.objects.filter(mission_id=mission_id, kind=Notification.Kind.RESULT).count()
    problems = [] if settled else ["mission_settle returned False"]
    if legs != contributors + 1:
        problems.append(f"the refund has {legs} legs, expected {contributors + 1}")
    if emails != contributors:
        problems.append(f"{emails} result emails queued, expected {contributors}")
    return [f"settle {contributors:,}: {problem}" for problem in problems]


@dataclass(frozen=True)
class Settlement:
    mission_id: int
    row: Row
    queries: int
    failures: list[str]


def measure_settlement(population: Population, *, contributors: int) -> Settlement:
    mission_id = failed_mission(population, contributors=contributors)
    queries, (elapsed, settled) = count_queries(partial(_timed_settle, mission_id))
    row = Row(
        measurement=f"mission_settle refund, {contributors:,} contributors",
        n=contributors,
        ops_per_second=contributors / elapsed,
        p50_ms=elapsed * 1000,
        queries=queries.default,
        notes=f"1 run, {elapsed:.3f} s; ops/s: refunds/s; queries: default db",
    )
    failures = settlement_problems(mission_id, contributors=contributors, settled=settled)
    return Settlement(mission_id=mission_id, row=row, queries=queries.default, failures=failures)


# --- 5. the API ---------------------------------------------------------------------------


def fill_missions(population: Population, *, total: int) -> Row | None:
    """Create missions until the database holds `total`: the list endpoint's data."""
    if Mission.objects.count() + QUERY_SAMPLE >= total:
        return None
    streamers = population.streamers
    sample = [partial(new_mission, creator_id=population.viewer(i), streamer=streamers[0]) for i in range(QUERY_SAMPLE)]
    queries = queries_per_operation(sample)
    missing = total - Mission.objects.count()
    operations = [
        partial(new_mission, creator_id=population.viewer(i), streamer=streamers[i % len(streamers)])
        for i in range(missing)
    ]
    timings = time_each(operations)
    notes = f"fills the database to {total:,} missions; queries: per mission"
    return _row("setup: mission_create", timings, queries=queries, notes=notes)


def _get(client: Client, path: str) -> object:
    response = client.get(path, secure=True)
    if response.status_code != 200:
        raise BenchFailure(f"GET {path} answered {response.status_code}: {response.content[:200]!r}")
    return response


def measure_get(name: str, path: str, *, count: int, detail: str) -> Row:
    client = Client()
    _get(client, path)  # warm-up: URL resolver, serializers, templates of errors
    timings = time_each([partial(_get, client, path) for _ in range(count)])
    queries, _ = count_queries(partial(_get, client, path))
    notes = f"{detail}; queries: default {queries.default} + accounts {queries.accounts}"
    return _row(name, timings, queries=queries.total, notes=notes)


def measure_api(mission_id: int, *, count: int) -> list[Row]:
    missions = Mission.objects.count()
    contributors = Mission.objects.get(pk=mission_id).contributor_count
    return [
        measure_get("GET /api/missions", "/api/missions", count=count, detail=f"page 1 of 20, {missions:,} missions"),
        measure_get(
            "GET /api/missions/{id}/pledges",
            f"/api/missions/{mission_id}/pledges",
            count=count,
            detail=f"{contributors:,} contributors",
        ),
    ]


# --- 6. ledger_verify ---------------------------------------------------------------------


def measure_verify() -> tuple[Row, list[str]]:
    began = time.perf_counter()
    queries, found = count_queries(ledger_verify)
    elapsed = time.perf_counter() - began
    problems = [f"ledger_verify, {name}: {problem}" for name, items in found.items() for problem in items]
    postings = Posting.objects.count()
    notes = (
        f"1 run, {elapsed:.3f} s over {Account.objects.count():,} accounts, "
        f"{Transaction.objects.count():,} transactions; {len(problems)} problems"
    )
    row = Row(
        measurement="ledger_verify",
        n=postings,
        ops_per_second=postings / elapsed,
        p50_ms=elapsed * 1000,
        queries=queries.total,
        notes=notes + "; N: postings",
    )
    return row, problems
