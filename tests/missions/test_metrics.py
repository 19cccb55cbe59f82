from django.test import override_settings

from missions import services
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases


def _metrics(client) -> dict[str, float]:
    # Tests run with DEBUG off, as production does: Prometheus' scrape needs its token.
    with override_settings(METRICS_TOKEN="prometheus-scrape-token"):
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer prometheus-scrape-token")
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    return {
        name: float(value)
        for line in lines
        if line.startswith("missionhub_")
        for name, _, value in [line.rpartition(" ")]
    }


class TestBusinessMetrics:
    def test_count_what_the_ledger_recorded(self, client, task_queue, django_capture_on_commit_callbacks):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer, amount=1_500)
        viewer = UserFactory()
        fund(viewer, 2_000)
        services.pledge_create(mission_id=mission.pk, user_id=viewer.pk, amount=500)
        make_mission()
        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")
        task_queue.run_all()

        metrics = _metrics(client)

        assert metrics["missionhub_missions_created_total"] == 2
        assert metrics["missionhub_pledges_total"] == 3
        assert metrics["missionhub_pledged_cash_total"] == 3_000
        assert metrics["missionhub_topups_total"] == 3
        assert metrics['missionhub_decisions_total{outcome="succeeded"}'] == 1
        assert metrics['missionhub_settlements_total{kind="payout"}'] == 1
        assert metrics['missionhub_settled_cash_total{kind="payout"}'] == 2_000
        assert metrics["missionhub_open_missions"] == 1
        assert metrics["missionhub_unsettled_missions"] == 0
        assert metrics['missionhub_emails_total{kind="result",result="sent"}'] == 2
