import pytest
from django.core.management import CommandError, call_command

from accounts.demo import DEMO_PASSWORD
from accounts.models import User
from ledger.selectors import wallet_balance
from missions.models import Mission
from tests.utils import both_databases

pytestmark = both_databases


def test_creates_users_cash_and_a_live_mission_once(settings):
    settings.DEBUG = True

    call_command("demo_data")
    call_command("demo_data")

    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"streamer", "viewer1", "viewer2", "admin"}
    assert users["streamer"].is_streamer
    assert (users["admin"].is_superuser, users["admin"].is_staff) == (True, True)
    assert users["admin"].check_password(DEMO_PASSWORD)
    assert not any(users[name].is_staff for name in ("streamer", "viewer1", "viewer2"))
    assert not users["viewer1"].is_streamer
    assert users["viewer2"].check_password(DEMO_PASSWORD)
    assert wallet_balance(user_id=users["viewer1"].pk) == 95_000
    assert wallet_balance(user_id=users["viewer2"].pk) == 97_500
    mission = Mission.objects.get()
    assert (mission.pot, mission.contributor_count, mission.status) == (7_500, 2, "pending")


def test_the_demo_admin_signs_in_to_the_admin(settings, client):
    settings.DEBUG = True
    call_command("demo_data")

    response = client.post("/admin/login/", {"username": "admin", "password": DEMO_PASSWORD})

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError):
        call_command("demo_data")

    assert not User.objects.exists()
