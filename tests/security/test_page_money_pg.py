"""Two submissions of one page form at the same moment (a double click that reaches two
web workers): PostgreSQL referees them with the idempotency record's unique key, and cash
moves once. PostgreSQL only: SQLite serialises writers before they can overlap."""

import re
import threading

import pytest
from django.db import connections
from django.test import Client

from accounts.models import User
from ledger.models import IdempotencyRecord, Transaction
from ledger.selectors import wallet_balance
from missions import services
from missions import views as mission_views
from missions.forms import MissionForm
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True, databases=["default", "accounts"])]


def _key(client, page: str) -> str:
    keys = re.findall(r'name="form_key" value="([^"]*)"', client.get(page).content.decode())
    return keys[0] if keys else ""


def _post_together(user, action: str, data: dict, monkeypatch, target, name: str) -> list:
    """Post the same form from two browsers' worth of connections, both past the replay
    look-up before either reaches the service (a barrier in front of the service)."""
    barrier = threading.Barrier(2)
    service = getattr(target, name)

    def meet_then_run(**kwargs):
        barrier.wait(timeout=30)
        return service(**kwargs)

    monkeypatch.setattr(target, name, meet_then_run)
    results: list = [None, None]

    def worker(index: int) -> None:
        try:
            client = Client()
            client.force_login(user)
            results[index] = client.post(action, data, follow=True)
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _codes(response) -> list[str]:
    return re.findall(r'data-code="([^"]*)"', response.content.decode())


@pytest.fixture
def viewer():
    user = UserFactory()
    fund(user, 10_000)
    return user


@pytest.fixture
def browser(viewer):
    client = Client()
    client.force_login(viewer)
    return client


class TestConcurrentDoubleSubmit:
    def test_two_pledges_at_once_with_one_key_move_cash_once(self, viewer, browser, monkeypatch):
        mission = make_mission(amount=1_000)
        data = {"amount": "500", "form_key": _key(browser, f"/missions/{mission.pk}")}

        results = _post_together(viewer, f"/missions/{mission.pk}/pledge", data, monkeypatch, services, "pledge_create")

        assert all(r.status_code == 200 for r in results), results
        assert Transaction.objects.filter(kind="pledge", actor_id=viewer.pk).count() == 1
        assert wallet_balance(user_id=viewer.pk) == 9_500
        assert Mission.objects.get(pk=mission.pk).pot == 1_500
        assert sorted(code for r in results for code in _codes(r)) == ["", "already_done"]

    def test_two_top_ups_at_once_with_one_key_move_cash_once(self, viewer, browser, monkeypatch):
        data = {"amount": "2000", "form_key": _key(browser, "/wallet")}

        results = _post_together(viewer, "/wallet", data, monkeypatch, mission_views, "wallet_topup")

        assert all(r.status_code == 200 for r in results), results
        assert Transaction.objects.filter(kind="topup", actor_id=viewer.pk).count() == 1 + 1  # and `fund`
        assert wallet_balance(user_id=viewer.pk) == 12_000
        assert sorted(code for r in results for code in _codes(r)) == ["", "already_done"]

    def test_two_new_missions_at_once_with_one_key_make_one_mission(self, viewer, browser, monkeypatch):
        streamer = UserFactory(is_streamer=True)
        data = {
            "streamer": User.objects.get(pk=streamer.pk).username,
            "title": "Beat the game with a dance pad",
            "description": "",
            "amount": "2500",
            "duration_seconds": str(MissionForm().fields["duration_seconds"].choices[0][0]),
            "form_key": _key(browser, "/missions/new"),
        }

        results = _post_together(viewer, "/missions/new", data, monkeypatch, services, "mission_create")

        assert all(r.status_code == 200 for r in results), results
        assert Mission.objects.filter(creator_id=viewer.pk).count() == 1
        assert wallet_balance(user_id=viewer.pk) == 7_500
        assert IdempotencyRecord.objects.filter(user_id=viewer.pk, key=f"page:{data['form_key']}").count() == 1
        assert sorted(code for r in results for code in _codes(r)) == ["", "already_done"]
