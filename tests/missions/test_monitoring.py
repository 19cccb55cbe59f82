"""The monitoring page: its charts from known data and from none, who may see it, its
query count against the data's size, the indexes its queries read, and the ledger check
that a worker runs and the page only shows."""

import re
import types
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.db import connections
from django.db.models import F
from django.db.models.functions import TruncDate, TruncHour
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from ledger import verify as ledger_verify_module
from ledger.models import Account, Notification
from ledger.verify import ledger_verify
from missionhub.celery import app as celery_app
from missions import charts, ledger_checks, monitoring, views
from missions.charts import BARS, CASH, COUNT, LINES, SECONDS, Chart, Series
from missions.models import LedgerCheck, Mission, SweepFailure
from missions.monitoring import PANEL_BUILDERS, day_slots, hour_slots
from tests.accounts.factories import UserFactory
from tests.missions import monitoring_data as data
from tests.missions.factories import make_mission
from tests.utils import both_databases, on_postgresql, query_counts

pytestmark = both_databases

PAGE = "/staff/monitoring"
BUTTON = "/staff/monitoring/ledger-check"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def hours(now):
    return hour_slots(now)


@pytest.fixture
def days(now):
    return day_slots(now)


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, username="watcher"))
    return client


@pytest.fixture
def page_at(monkeypatch, now):
    """The page's clock stopped at `now`, so that an hour turning during the test cannot
    move the data to the next slot."""
    monkeypatch.setattr(views, "timezone", types.SimpleNamespace(now=lambda: now))


def _panel(key: str, *, now) -> monitoring.Panel:
    (builder,) = [b for b in PANEL_BUILDERS if b.__name__ == f"{key}_panel"]
    return builder(now=now)


def _facts(panel) -> dict[str, str]:
    return {fact.label: fact.value for fact in panel.facts}


def _day(day: date) -> datetime:
    return monitoring._day_start(day)


# --- the panels, from known data ----------------------------------------------------------


class TestPledgesPanel:
    def test_counts_pledges_and_pledged_cash_per_hour_for_48_hours(self, now, hours):
        mission = data.created_at(amount=1_000, at=hours[-3] + 5 * MINUTE)
        data.pledged_at(mission, amount=500, at=hours[-2] + 10 * MINUTE)
        data.pledged_at(mission, amount=700, at=hours[-2] + 50 * MINUTE)
        data.pledged_at(mission, amount=300, at=hours[0])  # the window's first instant
        data.created_at(amount=2_000, at=hours[0] - timedelta(seconds=1))  # just before it

        panel = monitoring.pledges_panel(now=now)

        counts, cash = (chart.series[0].values for chart in panel.charts)
        assert len(counts) == len(cash) == 48
        assert (counts[0], counts[-3], counts[-2], counts[-1]) == (1, 1, 2, 0)
        assert (cash[0], cash[-3], cash[-2], cash[-1]) == (300, 1_000, 1_200, 0)
        assert sum(counts) == 4 and sum(cash) == 2_500
        assert _facts(panel) == {"Pledges": "4", "Cash pledged": "2,500"}


class TestOutcomesPanel:
    def test_counts_missions_by_outcome_per_day_for_30_days(self, now, days):
        data.ended("failed", decided_at=_day(days[-1]))
        data.ended("failed", decided_at=_day(days[-1]) + MINUTE)
        data.ended("succeeded", decided_at=_day(days[-1]) + 2 * MINUTE)
        data.ended("rejected", decided_at=_day(days[-10]) + timedelta(hours=12))
        data.ended("cancelled", decided_at=_day(days[0]))  # the window's first instant
        data.ended("expired", decided_at=_day(days[0]) - timedelta(seconds=1))  # the day before
        make_mission()  # still open

        panel = monitoring.outcomes_panel(now=now)

        (chart,) = panel.charts
        values = {series.label: series.values for series in chart.series}
        assert list(values) == ["Succeeded", "Failed", "Rejected", "Expired", "Cancelled"]
        assert all(len(v) == 30 for v in values.values())
        assert (values["Failed"][-1], values["Succeeded"][-1], values["Rejected"][-10], values["Cancelled"][0]) == (
            2,
            1,
            1,
            1,
        )
        assert sum(map(sum, values.values())) == 5
        assert _facts(panel) == {
            "Open now": "1",
            "Past their deadline, not yet expired": "0",
            "Succeeded": "1",
            "Failed": "2",
            "Rejected": "1",
            "Expired": "0",
            "Cancelled": "1",
        }

    def test_counts_an_open_mission_past_its_deadline(self, now):
        mission = make_mission()
        Mission.objects.filter(pk=mission.pk).update(deadline=F("created_at"))

        facts = _facts(monitoring.outcomes_panel(now=now))

        assert (facts["Open now"], facts["Past their deadline, not yet expired"]) == ("1", "1")
        assert [f.warn for f in monitoring.outcomes_panel(now=now).facts][:2] == [False, True]


class TestSettlementLatencyPanel:
    def test_shows_the_median_and_95th_percentile_per_hour_and_over_48_hours(self, now, hours):
        for seconds in (10, 20, 30, 40):
            data.ended("failed", decided_at=hours[-5] + MINUTE, settled_after=timedelta(seconds=seconds))
        data.ended("succeeded", decided_at=hours[-2] + MINUTE, settled_after=timedelta(seconds=4.5))
        # Decided before the window, settled in its first hour: counted, by its settlement.
        data.ended("rejected", decided_at=hours[0] - timedelta(seconds=30), settled_after=timedelta(seconds=90))
        data.ended("failed", decided_at=hours[0] - 2 * MINUTE, settled_after=MINUTE)  # settled before it

        panel = monitoring.settlement_latency_panel(now=now)

        (chart,) = panel.charts
        p50, p95 = (series.values for series in chart.series)
        assert (p50[0], p50[-5], p50[-2]) == (90.0, 25.0, 4.5)
        assert (p95[0], p95[-5], p95[-2]) == (90.0, 38.5, 4.5)
        assert sum(v is not None for v in p50) == sum(v is not None for v in p95) == 3
        # Over the window: 4.5, 10, 20, 30, 40, 90.
        assert _facts(panel) == {"Missions settled": "6", "Median (p50)": "25.0 s", "95th percentile (p95)": "77.5 s"}

    def test_cuts_hours_and_days_as_djangos_own_truncation_does(self, now, hours):
        mission = make_mission()
        moments = [hours[0], hours[0] + timedelta(microseconds=1), hours[1] - timedelta(microseconds=1), now]
        for moment in moments:
            data.email(mission_id=mission.pk, sent_at=moment)

        rows = Notification.objects.filter(sent_at__isnull=False).values_list(
            monitoring.UtcHour("sent_at"),
            TruncHour("sent_at", tzinfo=UTC),
            monitoring.UtcDate("sent_at"),
            TruncDate("sent_at", tzinfo=UTC),
        )

        assert len(rows) == 4
        for ours_hour, django_hour, ours_day, django_day in rows:
            assert (ours_hour, ours_day) == (django_hour, django_day)

    def test_computes_the_same_percentiles_as_postgresql(self):
        """PERCENTILE_CONT's definition (linear between the closest ranks), which SQLite's
        Python fallback must follow: 1..10 give p50 5.5 and p95 9.55."""
        values = [float(v) for v in range(10, 0, -1)]

        assert monitoring.percentile(values, 0.5) == 5.5
        assert monitoring.percentile(values, 0.95) == pytest.approx(9.55)
        assert monitoring.percentile([7.0], 0.95) == 7.0
        assert monitoring.percentile([], 0.5) is None


class TestEmailOutboxPanel:
    def test_shows_the_outbox_and_emails_sent_and_failed_per_hour(self, now, hours):
        mission = make_mission(title="Tom & Jerry")  # its streamer's email waits in the outbox
        for minute in (5, 6, 7):
            data.email(mission_id=mission.pk, sent_at=hours[-4] + minute * MINUTE)
        data.email(mission_id=mission.pk, sent_at=hours[-1])
        data.email(mission_id=mission.pk, sent_at=hours[0] - timedelta(seconds=1))  # before the window
        for minute in (20, 21):
            data.email(mission_id=mission.pk, failed_at=hours[-4] + minute * MINUTE, attempts=8,
                       last_error="550 <mailbox> unavailable")  # fmt: skip
        data.email(mission_id=mission.pk, attempts=2, created_at=now - 30 * MINUTE)  # retrying

        panel = monitoring.email_outbox_panel(now=now)

        (chart,) = panel.charts
        sent, failed = (series.values for series in chart.series)
        assert (sent[-4], sent[-1], sum(sent)) == (3, 1, 4)
        assert (failed[-4], sum(failed)) == (2, 2)
        assert _facts(panel) == {
            "Waiting": "2",
            "Failing (retrying)": "1",
            "Oldest waiting": "30\xa0minutes ago",
            "Sent, last 48 hours": "4",
            "Failed (not retried), last 48 hours": "2",
        }
        assert [f.warn for f in panel.facts] == [False, True, True, False, True]
        assert [(item.href, item.label, item.detail) for item in panel.items] == [
            (f"/missions/{mission.pk}", f"#{mission.pk} Tom & Jerry", "550 <mailbox> unavailable")
        ] * 2


class TestUnsettledPanel:
    def test_shows_how_many_ended_missions_wait_and_the_oldest(self, now):
        oldest = data.ended("failed", decided_at=now - 4 * MINUTE, settled_after=None, title="Tom & Jerry <b>")
        data.ended("rejected", decided_at=now - 2 * MINUTE, settled_after=None)
        data.ended("failed", decided_at=now - timedelta(days=3))  # settled

        panel = monitoring.unsettled_panel(now=now)

        assert _facts(panel) == {"Ended, not yet settled": "2", "The oldest ended": "4\xa0minutes ago"}
        assert [(i.href, i.label, i.meta, i.at) for i in panel.items] == [
            (f"/missions/{oldest.pk}", f"#{oldest.pk} Tom & Jerry <b>", "Failed", oldest.decided_at)
        ]

    def test_says_nothing_waits_when_every_mission_is_settled(self, now):
        data.ended("failed", decided_at=now - timedelta(days=3))

        panel = monitoring.unsettled_panel(now=now)

        assert _facts(panel) == {"Ended, not yet settled": "0", "The oldest ended": "-"}
        assert panel.items == []


# --- the page ------------------------------------------------------------------------------


class TestThePage:
    def test_draws_the_charts_with_their_numbers(self, staff_client, page_at, hours):
        mission = data.created_at(amount=1_000, at=hours[-3] + 5 * MINUTE, title="Tom & Jerry <b>")
        data.pledged_at(mission, amount=500, at=hours[-2] + 10 * MINUTE)
        data.pledged_at(mission, amount=700, at=hours[-2] + 20 * MINUTE)
        slots, _axis = monitoring._hour_labels(hours)

        response = staff_client.get(PAGE)

        assert response.status_code == 200
        html = response.content.decode()
        assert '<svg class="chart-svg" viewBox="0 0 360 170" width="100%"' in html
        assert '<title id="chart-pledges-title">Pledges per hour</title>' in html
        assert f'<desc id="chart-pledges-desc">Pledges per hour, {slots[0]} to {slots[-1]}. Pledges: 3.</desc>' in html
        assert f'<tr><th scope="row">{slots[-2]}</th><td class="num">2</td></tr>' in html
        assert f'<tr><th scope="row">{slots[-3]}</th><td class="num">1</td></tr>' in html
        assert f'<tr><th scope="row">{slots[-2]}</th><td class="num">1,200</td></tr>' in html
        assert f"<title>{slots[-2]} · Pledges: 2</title>" in html
        assert f"<title>{slots[-2]} · Cash: 1,200</title>" in html
        assert html.count('<rect class="c-pledges"') == 2
        assert "<dt>Cash pledged</dt><dd>2,200</dd>" in html

    def test_escapes_what_users_wrote(self, staff_client, now):
        data.ended("failed", decided_at=now - MINUTE, settled_after=None, title="Tom & Jerry <b>")

        html = staff_client.get(PAGE).content.decode()

        assert "Tom &amp; Jerry &lt;b&gt;" in html
        assert "Jerry <b>" not in html

    def test_draws_every_chart_empty_with_no_data(self, staff_client):
        response = staff_client.get(PAGE)

        assert response.status_code == 200
        html = response.content.decode()
        charts_drawn = re.findall(r'<figure class="chart" id="([\w-]+)">', html)
        assert charts_drawn == [
            "chart-pledges",
            "chart-pledged-cash",
            "chart-outcomes",
            "chart-latency",
            "chart-emails",
        ]
        assert html.count("No data in this period") == 5
        assert html.count("no data in this period.</desc>") == 5
        assert "<rect" not in html and "<circle" not in html and "<polyline" not in html
        assert html.count('<td class="num">0</td>') == 48 + 48 + 30 * 5 + 48 * 2
        assert html.count('<td class="num">-</td>') == 48 * 2  # no latency to show
        assert "No ledger check has finished yet." in html

    def test_speaks_korean(self, staff_client):
        html = staff_client.get(PAGE, HTTP_ACCEPT_LANGUAGE="ko").content.decode()

        korean = ["후원, 최근 48시간", "결과별 일일 종료 미션", "정산 지연, 최근 48시간"]
        korean += ["원장 검사", "지금 원장 검사하기"]
        assert [text for text in korean if text not in html] == []
        assert "Pledges per hour" not in html

    def test_is_for_staff_only(self, client, user):
        anonymous = client.get(PAGE)
        client.force_login(user)
        viewer = client.get(PAGE)

        for response in (anonymous, viewer):
            assert response.status_code == 302
            assert response.url.startswith("/admin/login/")

    def test_never_runs_the_ledger_check_itself(self, staff_client, monkeypatch):
        """Every check of ledger_verify (however the page would reach it) raises here; the
        page, with the old `?verify=1` too, still answers and stores nothing."""
        check = mock.Mock(side_effect=AssertionError("the GET ran a ledger check"))

        with monkeypatch.context() as patch:  # undone before the suite's own check after the test
            for checks in (ledger_verify_module.CHECKS, ledger_verify_module._REGISTERED):
                for name in list(checks):
                    patch.setitem(checks, name, check)
            response = staff_client.get(PAGE + "?verify=1")

        assert response.status_code == 200
        check.assert_not_called()
        assert not LedgerCheck.objects.exists()


def _a_bit_of_everything(now, hours) -> None:
    """One of each thing the page counts or lists (the query count's unit of data)."""
    mission = data.created_at(amount=1_000, at=hours[-3])
    data.pledged_at(mission, amount=500, at=hours[-2])
    data.ended("failed", decided_at=hours[-5], settled_after=timedelta(seconds=7))
    data.ended("succeeded", decided_at=now - timedelta(days=3))
    data.ended("rejected", decided_at=now - MINUTE, settled_after=None)
    data.email(mission_id=mission.pk, sent_at=hours[-4])
    data.email(mission_id=mission.pk, failed_at=hours[-4], attempts=8, last_error="refused")
    data.email(mission_id=mission.pk, attempts=1)
    SweepFailure.objects.create(mission=mission, step=SweepFailure.Step.EMAIL, attempts=1, consecutive=1)
    check = LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.STAFF, requested_by_id=UserFactory().pk)
    ledger_checks.ledger_check_run(check_id=check.pk)
    LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.STAFF, requested_by_id=UserFactory().pk)  # waiting


class TestQueries:
    def test_the_page_runs_as_many_queries_with_five_times_the_data(self, staff_client, now, hours):
        _a_bit_of_everything(now, hours)
        few = query_counts(lambda: staff_client.get(PAGE))
        for _ in range(4):
            _a_bit_of_everything(now, hours)

        many = query_counts(lambda: staff_client.get(PAGE))

        assert Mission.objects.count() == 20
        assert few == many
        # Per panel: pledges 1, outcomes 2, latency 1 (PostgreSQL 2), emails 5, unsettled 2,
        # sweep 2, the ledger check 2; the session and the user (and two usernames) on accounts.
        assert few == {"default": 16 if on_postgresql() else 15, "accounts": 3}

    def test_every_query_of_the_panels_reads_an_index(self, now, hours):
        _a_bit_of_everything(now, hours)
        connection = connections["default"]
        seen: list[tuple[str, tuple]] = []

        def record(execute, sql, params, many, context):
            seen.append((sql, tuple(params or ())))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            monitoring.monitoring_page(now=now)

        selects = [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]
        assert len(selects) >= 12
        partial = _partial_indexes(connection)
        unindexed = {}
        for sql, params in selects:
            if '"missions_ledgercheck"' in sql:
                continue  # kept 30 days (ledger_checks.KEEP): at most 8,640 rows, read newest first
            problems = _full_scans(connection, sql, params, partial)
            if problems:
                unindexed[sql[:160]] = problems
        assert unindexed == {}


def _partial_indexes(connection) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%% WHERE %%'")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")
        return {row[0] for row in cursor.fetchall()}


def _full_scans(connection, sql: str, params: tuple, partial: set[str]) -> list[str]:
    """The steps of the query's plan that read a whole table or a whole full index."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: ask whether an index *can* serve
            cursor.execute("EXPLAIN " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
            cursor.execute("SET LOCAL enable_seqscan = on")
            problems = [line.strip() for line in lines if "Seq Scan" in line]
            for i, line in enumerate(lines):
                found = re.search(r"Index (?:Only )?Scan(?: Backward)? using (\w+)", line)
                if found and found[1] not in partial:
                    detail = " ".join(lines[i + 1 : i + 3])
                    if "Index Cond" not in detail:
                        problems.append(line.strip())
            return problems
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        details = [row[-1] for row in cursor.fetchall()]
    problems = []
    for detail in details:
        scan = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?$", detail)
        if scan and (scan[2] is None or scan[2] not in partial):
            problems.append(detail)
    return problems


# --- the chart drawing -------------------------------------------------------------------------


class TestChartDrawing:
    def _chart(self, **fields) -> Chart:
        series = (Series("Things", (1, 0, 4), "c-pledges"),)
        defaults = {"key": "chart-t", "title": "Things per hour", "kind": BARS, "unit": COUNT,
                    "slots": ("a", "b", "c"), "axis": ("a", "", "c"), "series": series}  # fmt: skip
        return Chart(**{**defaults, **fields})

    def test_scales_bars_to_a_round_top_and_draws_none_for_zero(self):
        drawing = self._chart().drawing

        assert [t.label for t in drawing.y_ticks] == ["0", "5"]  # no "2.5" of a count
        assert len(drawing.bars) == 2
        small, big = drawing.bars
        assert float(big.height) == pytest.approx(4 * float(small.height), abs=0.1)
        assert big.title == "c · Things: 4"
        assert [t.label for t in drawing.x_ticks] == ["a", "c"]

    def test_stacks_the_series_of_a_bar_chart(self):
        chart = self._chart(series=(Series("Sent", (2, 0, 0), "c-sent"), Series("Failed", (3, 0, 0), "c-failed")))

        sent, failed = chart.drawing.bars

        assert float(failed.y) + float(failed.height) == pytest.approx(float(sent.y), abs=0.1)
        assert chart.summary == "Things per hour, a to c. Sent: 2; Failed: 3."

    def test_breaks_a_line_where_a_slot_has_no_value(self):
        chart = self._chart(
            kind=LINES,
            unit=SECONDS,
            slots=("a", "b", "c", "d"),
            axis=("", "", "", ""),
            series=(Series("p50", (1.0, 2.0, None, 3.0), "c-p50"),),
        )

        drawing = chart.drawing

        assert len(drawing.lines) == 1 and len(drawing.lines[0].points.split()) == 2
        assert len(drawing.dots) == 3
        assert chart.rows == [("a", ["1.0 s"]), ("b", ["2.0 s"]), ("c", ["-"]), ("d", ["3.0 s"])]
        assert chart.summary == "Things per hour, a to d. p50: from 1.0 s to 3.0 s."

    def test_refuses_a_series_of_the_wrong_length(self):
        with pytest.raises(ValueError, match="one value per slot"):
            self._chart(series=(Series("Things", (1, 2), "c-pledges"),))

    def test_formats_values_and_axis_labels(self):
        assert charts.nice_ceiling(0) == 1
        assert charts.nice_ceiling(7) == 10
        assert charts.nice_ceiling(1_201) == 2_000
        assert charts.nice_ceiling(2_100) == 2_500
        assert charts.format_value(1_234_567, CASH) == "1,234,567"
        assert charts.format_value(None, COUNT) == "-"
        assert charts.format_axis(2_500, CASH) == "2.5k"
        assert charts.format_axis(2_000_000, CASH) == "2M"
        assert charts.format_axis(90, SECONDS) == "90 s"
        assert charts.format_axis(300, SECONDS) == "5 min"
        assert charts.format_axis(7_200, SECONDS) == "2 h"

    def test_escapes_every_label(self):
        evil = "<script>alert(1)</script>"
        chart = self._chart(title=evil, slots=(evil, "b", "c"), series=(Series(evil, (1, 2, 3), "c-pledges"),))

        html = render_to_string("missions/_chart.html", {"chart": chart})

        assert "<script>" not in html
        assert escape(evil) in html
        assert html.count(escape(evil)) >= 6  # title, desc, legend, table head and row, a bar's title


# --- the ledger check: a task, its stored result ------------------------------------------------


class TestLedgerCheck:
    def test_the_button_stores_a_request_and_enqueues_the_check_after_the_commit(
        self, staff_client, task_queue, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(BUTTON)

        assert (response.status_code, response.url) == (302, PAGE)
        check = LedgerCheck.objects.get()
        assert (check.trigger, check.finished_at, check.ok) == ("staff", None, None)
        assert check.requested_by_id == response.wsgi_request.user.pk
        assert task_queue.sent == [(ledger_checks.TASK, {"check_id": check.pk})]
        html = staff_client.get(PAGE).content.decode()
        assert f"Check #{check.pk} is waiting for a worker (asked for by watcher)" in html

    def test_pressing_twice_runs_one_check(self, staff_client, task_queue, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            staff_client.post(BUTTON)
            response = staff_client.post(BUTTON, follow=True)

        assert LedgerCheck.objects.count() == 1
        assert len(task_queue.sent) == 1
        assert "A ledger check is already waiting for a worker" in response.content.decode()

    def test_the_button_is_for_staff_only(self, client, user):
        anonymous = client.post(BUTTON)
        client.force_login(user)
        viewer = client.post(BUTTON)

        for response in (anonymous, viewer):
            assert response.status_code == 302
            assert response.url.startswith("/admin/login/")
        assert not LedgerCheck.objects.exists()

    def test_the_button_takes_no_get(self, staff_client):
        assert staff_client.get(BUTTON).status_code == 405
        assert not LedgerCheck.objects.exists()

    def test_the_task_stores_what_ledger_verify_found_and_the_page_shows_it(
        self, staff_client, task_queue, django_capture_on_commit_callbacks
    ):
        make_mission()
        with django_capture_on_commit_callbacks(execute=True):
            staff_client.post(BUTTON)

        task_queue.run_all()

        check = LedgerCheck.objects.get()
        assert (check.ok, check.problem_count, check.error) == (True, 0, "")
        assert [row["name"] for row in check.results] == list(ledger_verify())
        assert all(row["count"] == 0 and row["sample"] == [] for row in check.results)
        assert check.started_at <= check.finished_at
        html = staff_client.get(PAGE).content.decode()
        assert "<strong>Sound</strong>" in html
        assert "Asked for by staff (watcher)" in html
        for row in check.results:
            assert f'<li class="ok">{escape(row["name"])}</li>' in html

    @pytest.mark.ledger_unsound
    def test_a_broken_ledger_is_stored_as_not_sound_with_what_is_wrong(self, staff_client):
        make_mission()
        wallet = Account.objects.filter(kind=Account.Kind.WALLET).order_by("pk").first()
        Account.objects.filter(pk=wallet.pk).update(balance=F("balance") + 1)  # drift

        check = ledger_checks.ledger_check_run()  # beat's run: no id

        assert (check.trigger, check.ok) == ("schedule", False)
        found = {row["name"]: row for row in check.results if row["count"]}
        assert set(found) == {
            "cached balances match postings",
            "posting chains are unbroken",
            "all balances sum to zero",
        }
        assert found["all balances sum to zero"]["sample"] == ["all balances sum to 1, not 0"]
        assert check.problem_count == sum(row["count"] for row in found.values())
        html = staff_client.get(PAGE).content.decode()
        assert f"{check.problem_count} problems found" in html
        row = '<li class="warn">all balances sum to zero (1)<br><small>all balances sum to 1, not 0</small></li>'
        assert row in html

    def test_a_check_that_raises_is_stored_with_its_error(self, monkeypatch):
        monkeypatch.setattr(ledger_checks, "ledger_verify", mock.Mock(side_effect=RuntimeError("database gone")))

        with pytest.raises(RuntimeError, match="database gone"):
            ledger_checks.ledger_check_run()

        check = LedgerCheck.objects.get()
        assert (check.ok, check.error) == (False, "RuntimeError: database gone")
        assert check.finished_at is not None

    def test_a_check_delivered_twice_runs_once(self, monkeypatch):
        check = LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.STAFF)
        ledger_checks.ledger_check_run(check_id=check.pk)
        monkeypatch.setattr(ledger_checks, "ledger_verify", mock.Mock(side_effect=AssertionError("ran twice")))

        again = ledger_checks.ledger_check_run(check_id=check.pk)

        assert again.ok is True
        assert ledger_checks.ledger_check_run(check_id=check.pk + 1000) is None

    def test_checks_older_than_30_days_are_deleted(self, now):
        old = LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.SCHEDULE)
        recent = LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.SCHEDULE)
        LedgerCheck.objects.filter(pk=old.pk).update(requested_at=now - timedelta(days=31))
        LedgerCheck.objects.filter(pk=recent.pk).update(requested_at=now - timedelta(days=29))

        latest = ledger_checks.ledger_check_run()

        assert set(LedgerCheck.objects.values_list("pk", flat=True)) == {recent.pk, latest.pk}

    def test_beat_runs_it_every_five_minutes(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["ledger-check"]

        assert (entry["task"], entry["schedule"]) == (ledger_checks.TASK, 300.0)
        celery_app.loader.import_default_modules()
        assert ledger_checks.TASK in celery_app.tasks

    def test_the_page_warns_when_the_latest_check_is_old(self, staff_client, now):
        check = ledger_checks.ledger_check_run()
        LedgerCheck.objects.filter(pk=check.pk).update(finished_at=now - timedelta(minutes=16))

        html = staff_client.get(PAGE).content.decode()

        assert "This is older than three scheduled checks (one every 5 min): is beat running?" in html
