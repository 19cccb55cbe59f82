"""The pages and lists that must stay fast at 100,000 missions and 1,000,000 pledges read
through indexes: every SELECT they run on `default` is planned with PostgreSQL's
sequential scans switched off, and none of the big tables may still be read by one (a
table without a usable index keeps its Seq Scan whatever the setting). The figures at
that size are `make bench`'s (list_p50_ms, home_p50_ms, mission_page_p50_ms).

Not here: the home page's `?sort=pot`, a top-N sort of the live missions. An index on
`pot` would turn every pledge's update of the mission row into a non-HOT update of all
its indexes, on the hottest row there is; the live missions are the few that have not
ended yet."""

import re

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from missions import services
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(databases=["default", "accounts"])]

BIG_TABLES = {
    "missions_mission",
    "ledger_transaction",
    "ledger_posting",
    "ledger_event",
    "ledger_contribution",
    "ledger_notification",
}


def seq_scans(client, url: str) -> dict[str, list[str]]:
    """{statement: big tables it reads by a sequential scan} for one GET of `url`."""
    connection = connections["default"]
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    found = {}
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for query in captured.captured_queries:
                sql = query["sql"]
                if not sql.lstrip().upper().startswith("SELECT") or " FOR UPDATE" in sql:
                    continue
                cursor.execute(f"EXPLAIN {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
                scanned = set(re.findall(r"Seq Scan on (\w+)", plan)) & BIG_TABLES
                if scanned:
                    found[sql[:200]] = sorted(scanned)
        finally:
            cursor.execute("RESET enable_seqscan")
    return found


@pytest.fixture
def data():
    streamer = UserFactory(is_streamer=True)
    viewer = UserFactory()
    fund(viewer, 100_000)
    missions = [make_mission(streamer=streamer) for _ in range(3)]
    for mission in missions:
        services.pledge_create(mission_id=mission.pk, user_id=viewer.pk, amount=500)
    services.mission_decide(mission_id=missions[0].pk, user_id=streamer.pk, action="fail")
    return streamer, viewer, missions


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/missions/{mission}",
        "/missions/{mission}?partial=1",
        "/streamers/{streamer}",
        "/api/missions",
        "/api/missions?active=true",
        "/api/missions?status=pending",
        "/api/missions?streamer={streamer}",
        "/api/missions/{mission}",
        "/api/missions/{mission}/pledges",
        "/api/missions/{mission}/events",
    ],
)
def test_the_page_reads_every_big_table_through_an_index(client, data, path):
    streamer, viewer, missions = data
    client.force_login(viewer)
    url = path.format(mission=missions[1].pk, streamer=streamer.username)

    assert seq_scans(client, url) == {}


def test_the_dashboard_reads_through_indexes(client, data):
    streamer, _, _ = data
    client.force_login(streamer)

    assert seq_scans(client, "/dashboard") == {}


def test_the_check_finds_a_table_read_without_an_index(client, data):
    """The test can fail: a filter on a column no index covers keeps its Seq Scan."""
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT id FROM missions_mission WHERE title = 'x'")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "Seq Scan on missions_mission" in plan
