import pytest

from missionhub.celery import app as celery_app
from tests.utils import both_databases

pytestmark = both_databases


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_both_databases_and_the_broker(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == ["database_default", "database_accounts", "broker"]


@pytest.fixture
def broker_down(monkeypatch):
    """Point the app at a port where no broker listens (Celery lets the variable win)."""
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:9/0")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {})
    celery_app._pool = None
    yield
    celery_app._pool = None


def test_readyz_names_the_broker_when_it_is_down(client, broker_down):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failed": ["broker"]}


def test_metrics_are_exposed_for_prometheus(client, settings):
    settings.METRICS_TOKEN = "prometheus-scrape-token"
    client.get("/healthz")

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer prometheus-scrape-token")

    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content
