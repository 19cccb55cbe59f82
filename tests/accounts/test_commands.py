# ruff: noqa: RUF001 - look-alike usernames (full-width, Cyrillic) are what these tests are about
"""Django's user commands, which default to the `default` database, work on `accounts`."""

import pytest
from django.contrib.auth.management.commands import changepassword
from django.core.management import CommandError, call_command

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.utils import both_databases

pytestmark = both_databases


class TestCreateSuperuser:
    def test_creates_the_superuser_in_the_accounts_database_without_database(self, monkeypatch):
        monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "follow-the-rabbit-42")

        call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com")

        user = User.objects.using("accounts").get(username="boss")
        assert (user.is_superuser, user.is_staff) == (True, True)
        assert user.check_password("follow-the-rabbit-42")

    def test_refuses_a_look_alike_of_a_taken_username(self, monkeypatch):
        UserFactory(username="boss")
        monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "follow-the-rabbit-42")

        with pytest.raises(CommandError, match="already taken"):
            call_command("createsuperuser", "--noinput", "--username", "ＢＯＳＳ", "--email", "b2@example.com")

        assert User.objects.count() == 1


class TestChangePassword:
    def test_changes_the_password_in_the_accounts_database_without_database(self, monkeypatch):
        user = UserFactory(username="boss")
        monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "follow-the-rabbit-42")

        call_command("changepassword", "boss")

        user.refresh_from_db()
        assert user.check_password("follow-the-rabbit-42")
