import pytest
from django.core.management import CommandError, call_command

from accounts.demo import DEMO_PASSWORD
from accounts.models import User
from tests.utils import both_databases

pytestmark = both_databases


def test_creates_a_streamer_and_two_viewers_once(settings):
    settings.DEBUG = True

    call_command("demo_data")
    call_command("demo_data")

    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"streamer", "viewer1", "viewer2"}
    assert users["streamer"].is_streamer
    assert not users["viewer1"].is_streamer
    assert users["viewer2"].check_password(DEMO_PASSWORD)


def test_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError):
        call_command("demo_data")

    assert not User.objects.exists()
