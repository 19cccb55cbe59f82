"""The monitoring page with 100,000 missions: `python -m bench.monitoring`.

What it measures: GET /staff/monitoring through django.test.Client (in process, DEBUG
off, a staff session; 3 warm-up requests, then the median, p95 and max of 20), its
statements per database, each panel builder's median time over 5 calls, and the plan of
every statement the panels send (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on
SQLite). Then it writes as many missions again, all older than the charts' 30 days, and
measures once more: the page reads windows and small partial sets, so the second figure
should match the first. Statistics are refreshed after each load (VACUUM ANALYZE on
PostgreSQL, as autovacuum would; ANALYZE on SQLite).

The data, written set-based in SQL (one INSERT ... SELECT per kind of row, from a numbers
table): MONITORING_MISSIONS missions (default 100,000) created evenly over 30 days, a
tenth open in the last day and the rest ended (4 in 10 succeeded, 2 failed, 1 rejected,
1 expired, 1 cancelled, and the old "open" ones expired), settled 0.5 to 30.5 s after
their decision (two left unsettled); per mission a `created` event, three `pledged`
events, its terminal and `settled` events (six events each); the streamer's
`mission_created` email, three result emails (one in a hundred failed) and the payout
email when it succeeded; 30 days of ledger checks every five minutes (8,640 rows); five
sweep failures. Only the tables the page reads are written: the rows are not a balanced
ledger (no accounts or postings), so ledger_verify is not run on them.

Safety as in bench/databases.py: SQLite files under a MISSIONHUB_VAR_DIR whose name
contains "bench" (default var/bench-monitoring), or PostgreSQL databases whose names end
with `_bench` (DATABASE_URL and ACCOUNTS_DATABASE_URL); both are emptied first. Writes
bench/results/monitoring-<vendor>.json.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results"
PAGE = "/staff/monitoring"
DAY = 86_400
SPAN = 30 * DAY
RUNS = 20


def progress(message: str) -> None:
    sys.stderr.write(f"bench.monitoring: {message}\n")
    sys.stderr.flush()


class Dialect:
    """The few SQL spellings that differ between PostgreSQL and SQLite."""

    def __init__(self, vendor: str):
        self.pg = vendor == "postgresql"

    def numbers(self, count: int) -> list[str]:
        """Statements that fill the temporary table bench_n(n) with 1..count."""
        if self.pg:
            return [f"CREATE TEMP TABLE bench_n AS SELECT n FROM generate_series(1, {int(count)}) AS n"]  # noqa: S608
        return [
            "CREATE TEMP TABLE bench_n (n INTEGER PRIMARY KEY)",
            f"""INSERT INTO bench_n (n) WITH RECURSIVE s(n) AS (
                SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {int(count)}) SELECT n FROM s""",  # noqa: S608
        ]

    def ago(self, seconds: str) -> str:
        """now() minus `seconds` (an SQL expression, >= 0)."""
        if self.pg:
            return f"(now() - ({seconds}) * interval '1 second')"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({seconds}) || ' seconds')"

    def ahead(self, seconds: str) -> str:
        """now() plus `seconds` (>= 0)."""
        if self.pg:
            return f"(now() + ({seconds}) * interval '1 second')"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || ({seconds}) || ' seconds')"

    def plus(self, column: str, seconds: str) -> str:
        if self.pg:
            return f"({column} + ({seconds}) * interval '1 second')"
        return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '+' || ({seconds}) || ' seconds')"

    @property
    def no_time(self) -> str:
        """NULL as a timestamp (PostgreSQL types a bare NULL in a UNION's first branch as text)."""
        return "NULL::timestamptz" if self.pg else "NULL"

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.pg else f"MAX({a}, {b})"


def write_missions(cursor, d: Dialect, *, count: int, first_id: int, older_by: int) -> None:
    """`count` missions with ids first_id.., created over 30 days ending `older_by` s ago,
    with their events and emails (see the module's docstring)."""
    age = f"({older_by} + n * {SPAN / count!r})"  # seconds since its creation
    decided = d.greatest(f"{age} - (60 + (n * 7) % 1800)", "1")  # seconds since its decision
    latency = "(0.5 + ((n * 13) % 300) / 10.0)"
    is_open = f"(n % 10 = 0 AND {age} < {DAY})"
    unsettled = f"(n < 20 AND n % 10 = 5 AND {older_by} = 0)"
    status = (
        f"CASE WHEN {is_open} THEN 'pending' WHEN n % 10 = 0 THEN 'expired' "
        "WHEN n % 10 < 5 THEN 'succeeded' WHEN n % 10 < 7 THEN 'failed' WHEN n % 10 = 7 THEN 'rejected' "
        "WHEN n % 10 = 8 THEN 'expired' ELSE 'cancelled' END"
    )
    cursor.execute(
        f"""
        INSERT INTO missions_mission (id, title, description, streamer_id, creator_id, status, pot,
            contributor_count, deadline, created_at, decided_at, settled_at)
        SELECT {first_id} + n, 'Bench mission ' || n, '', 1 + n % 50, 1000 + n % 997, {status}, 1300, 3,
            CASE WHEN {is_open} THEN {d.ahead("3600")} ELSE {d.ago(age)} END,
            {d.ago(age)},
            CASE WHEN {is_open} THEN NULL ELSE {d.ago(decided)} END,
            CASE WHEN {is_open} OR {unsettled} THEN NULL ELSE {d.ago(d.greatest(f"{decided} - {latency}", "0.5"))} END
        FROM bench_n WHERE n <= {count}
        """  # noqa: S608 (constants)
    )
    if d.pg:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('missions_mission', 'id'), (SELECT max(id) FROM missions_mission))"
        )
    missions = f"FROM missions_mission m WHERE m.id > {first_id} AND m.id <= {first_id + count}"
    pledges = " UNION ALL ".join(
        f"SELECT m.id, 'pledged', 2000 + m.id % 5000, 100, {d.plus('m.created_at', str(60 * k))} {missions}"
        for k in (1, 2, 3)
    )
    cursor.execute(
        f"""
        INSERT INTO ledger_event (mission_id, kind, actor_id, amount, created_at)
        SELECT m.id, 'created', m.creator_id, 1000, m.created_at {missions}
        UNION ALL {pledges}
        UNION ALL SELECT m.id, m.status, m.streamer_id, m.pot, m.decided_at {missions} AND m.decided_at IS NOT NULL
        UNION ALL SELECT m.id, 'settled', NULL, m.pot, m.settled_at {missions} AND m.settled_at IS NOT NULL
        """
    )
    results = " UNION ALL ".join(
        f"""SELECT m.id, 10000000 + m.id * 4 + {k}, 'result', 433,
               CASE WHEN m.id % 100 = {k} THEN NULL ELSE {d.plus("m.settled_at", str(2 + k))} END,
               CASE WHEN m.id % 100 = {k} THEN {d.plus("m.settled_at", "600")} ELSE NULL END,
               CASE WHEN m.id % 100 = {k} THEN 8 ELSE 1 END,
               CASE WHEN m.id % 100 = {k} THEN 'bench: 550 mailbox unavailable' ELSE '' END,
               m.settled_at
           {missions} AND m.settled_at IS NOT NULL"""
        for k in (1, 2, 3)
    )
    cursor.execute(
        f"""
        INSERT INTO ledger_notification (mission_id, user_id, kind, amount, sent_at, failed_at, attempts,
            last_error, created_at, provider_message_id)
        SELECT x.*, '' FROM (
            SELECT m.id, m.streamer_id, 'mission_created', 0, {d.plus("m.created_at", "1")}, {d.no_time}, 1, '',
                m.created_at {missions}
            UNION ALL SELECT m.id, m.streamer_id, 'payout', 1300, {d.plus("m.settled_at", "2")}, NULL, 1, '',
                m.settled_at {missions} AND m.settled_at IS NOT NULL AND m.status = 'succeeded'
            UNION ALL {results}
        ) AS x
        """  # noqa: S608 (constants)
    )


def write_the_rest(cursor, d: Dialect) -> None:
    """Emails still waiting, 30 days of ledger checks, five sweep failures."""
    cursor.execute(
        f"""INSERT INTO ledger_notification (mission_id, user_id, kind, amount, attempts, last_error,
            provider_message_id, created_at)
        SELECT n, 20000000 + n, 'result', 100, n % 3, '', '', {d.ago("n * 7")} FROM bench_n WHERE n <= 25"""  # noqa: S608
    )
    results = json.dumps([{"name": f"check {i}", "count": 0, "sample": []} for i in range(14)])
    cursor.execute(
        f"""INSERT INTO missions_ledgercheck (trigger, requested_at, started_at, finished_at, ok, problem_count,
            results, error)
        SELECT 'schedule', {d.ago("n * 300")}, {d.ago("n * 300")}, {d.ago("n * 300 - 2")}, true, 0, %s, ''
        FROM bench_n WHERE n <= {SPAN // 300}""",  # noqa: S608
        [results],
    )
    cursor.execute(
        f"""INSERT INTO missions_sweepfailure (mission_id, step, attempts, consecutive, last_error,
            first_failed_at, failed_at, retry_at)
        SELECT n * 10 + 5, 'email', n, n, 'bench: refused', {d.ago("600")}, {d.ago("60")}, {d.ahead("60")}
        FROM bench_n WHERE n <= 5"""  # noqa: S608
    )


def load(*, count: int, first_id: int, older_by: int, extras: bool) -> float:
    from django.db import connections, transaction

    connection = connections["default"]
    d = Dialect(connection.vendor)
    began = time.perf_counter()
    with transaction.atomic(using="default"), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_n")
        for statement in d.numbers(max(count, SPAN // 300)):
            cursor.execute(statement)
        write_missions(cursor, d, count=count, first_id=first_id, older_by=older_by)
        if extras:
            write_the_rest(cursor, d)
        cursor.execute("DROP TABLE bench_n")
    with connection.cursor() as cursor:
        # What autovacuum would have done by the time staff look: statistics, and on
        # PostgreSQL the visibility map that lets a covering index answer alone.
        cursor.execute("VACUUM ANALYZE" if d.pg else "ANALYZE")
    return time.perf_counter() - began


def row_counts() -> dict[str, int]:
    from django.db import connections

    with connections["default"].cursor() as cursor:
        counts = {}
        for table in ("missions_mission", "ledger_event", "ledger_notification", "missions_ledgercheck"):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (constants)
            counts[table] = cursor.fetchone()[0]
        return counts


def measure() -> dict:
    """The page's time over RUNS requests, its statements, and each panel's time."""
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts.models import User
    from missions import monitoring

    staff, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    for _ in range(3):
        assert client.get(PAGE).status_code == 200
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        response = client.get(PAGE)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections["accounts"]) as accounts,
    ):
        client.get(PAGE)
    statements = sorted(
        ({"ms": float(q["time"]) * 1000, "sql": q["sql"][:200]} for q in default.captured_queries),
        key=lambda q: -q["ms"],
    )
    panels = {}
    now = timezone.now()
    for build in monitoring.PANEL_BUILDERS:
        runs = []
        for _ in range(5):
            began = time.perf_counter()
            build(now=now)
            runs.append(time.perf_counter() - began)
        panels[build.__name__] = round(statistics.median(runs) * 1000, 2)
    ordered = sorted(times)
    return {
        "page_ms": {
            "median": round(statistics.median(times) * 1000, 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
            "runs": RUNS,
        },
        "queries": {"default": len(default), "accounts": len(accounts)},
        "panel_ms_median": panels,
        "slowest_statements": [{"ms": round(q["ms"], 2), "sql": q["sql"]} for q in statements[:5]],
    }


def explain_panels() -> list[dict]:
    """Each statement the panels send, with its plan's scans: EXPLAIN ANALYZE on PostgreSQL
    (and its execution time), EXPLAIN QUERY PLAN on SQLite."""
    from django.db import connections
    from django.utils import timezone

    from missions import monitoring

    connection = connections["default"]
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        monitoring.monitoring_page(now=timezone.now())
    plans = []
    with connection.cursor() as cursor:
        for sql, params in seen:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                lines = [row[0] for row in cursor.fetchall()]
                scans = [line.strip() for line in lines if "Scan" in line]
                plans.append({"sql": sql[:140], "scans": scans, "total": lines[-1].strip()})
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                plans.append({"sql": sql[:140], "scans": [row[-1] for row in cursor.fetchall()]})
    return plans


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missionhub.settings")
    os.environ.setdefault("MISSIONHUB_VAR_DIR", str(BASE_DIR / "var" / "bench-monitoring"))
    count = int(os.environ.get("MONITORING_MISSIONS", "100000"))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    from bench import databases

    try:
        engine = databases.check_safe()
    except databases.UnsafeDatabase as exc:
        progress(f"refusing to run: {exc}")
        return 2
    settings.DEBUG = False
    progress("dropping, creating and migrating the bench databases")
    databases.reset(engine)
    vendor = connections["default"].vendor
    result: dict = {"database": databases.describe(), "missions": count}
    progress(f"writing {count:,} missions over 30 days")
    result["load_seconds"] = round(load(count=count, first_id=0, older_by=0, extras=True), 1)
    result["rows"] = row_counts()
    progress("measuring the page")
    result["page"] = measure()
    result["plans"] = explain_panels()
    progress(f"writing {count:,} more missions, all older than 30 days")
    result["older_load_seconds"] = round(load(count=count, first_id=count, older_by=SPAN + DAY, extras=False), 1)
    result["rows_with_older"] = row_counts()
    progress("measuring the page again")
    result["page_with_older"] = measure()
    result["plans_with_older"] = explain_panels()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"monitoring-{vendor}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("page", "page_with_older"):
        page = result[key]
        rows = result["rows" if key == "page" else "rows_with_older"]
        sys.stdout.write(
            f"{key}: {rows['missions_mission']:,} missions, {rows['ledger_event']:,} events, "
            f"{rows['ledger_notification']:,} emails: median {page['page_ms']['median']} ms, "
            f"p95 {page['page_ms']['p95']} ms over {RUNS} GETs, queries {page['queries']}\n"
            f"   panels (median ms): {page['panel_ms_median']}\n"
        )
    sys.stdout.write(f"wrote {out.relative_to(BASE_DIR)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
