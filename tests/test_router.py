import pytest
from django.apps import apps
from django.db import connections

from accounts.models import User
from ledger.models import Account
from missionhub.routers import AppLabelRouter
from tests.utils import both_databases, requires_postgresql

pytestmark = both_databases

ACCOUNTS_SIDE = ["accounts", "auth", "contenttypes", "sessions", "admin", "token_blacklist"]
DEFAULT_SIDE = ["ledger", "missions", "django_celery_beat"]


class TestAppLabelRouter:
    @pytest.mark.parametrize("label", ACCOUNTS_SIDE)
    def test_sends_user_apps_to_the_accounts_database(self, label):
        router = AppLabelRouter()

        assert router.allow_migrate("accounts", label) is True
        assert router.allow_migrate("default", label) is False

    @pytest.mark.parametrize("label", DEFAULT_SIDE)
    def test_keeps_everything_else_on_default(self, label):
        router = AppLabelRouter()

        assert router.allow_migrate("default", label) is True
        assert router.allow_migrate("accounts", label) is False

    def test_reads_and_writes_each_model_on_its_side(self):
        router = AppLabelRouter()

        assert router.db_for_write(User) == router.db_for_read(User) == "accounts"
        assert router.db_for_write(Account) == router.db_for_read(Account) == "default"

    def test_refuses_a_relation_across_the_two(self):
        assert AppLabelRouter().allow_relation(User(), Account()) is False


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


def _app_tables(labels) -> set[str]:
    return {m._meta.db_table for label in labels for m in apps.get_app_config(label).get_models()}


class TestTablesLiveOnOneSide:
    def test_user_tables_exist_only_in_the_accounts_database(self):
        accounts_tables = _app_tables(ACCOUNTS_SIDE)

        assert accounts_tables <= _tables("accounts")
        assert not accounts_tables & _tables("default")

    def test_no_missions_or_ledger_table_exists_in_the_accounts_database(self):
        default_tables = _app_tables(DEFAULT_SIDE)

        assert default_tables <= _tables("default")
        assert not default_tables & _tables("accounts")

    @requires_postgresql
    def test_the_two_are_separate_postgresql_databases(self):
        names = {connections[alias].settings_dict["NAME"] for alias in ("default", "accounts")}

        assert len(names) == 2
        assert all(connections[alias].vendor == "postgresql" for alias in ("default", "accounts"))

    def test_a_registered_user_lands_in_the_accounts_database_only(self, api_client):
        api_client.post(
            "/api/auth/register",
            {"username": "neo", "email": "neo@example.com", "password": "follow-the-rabbit-42"},
            format="json",
        )

        with connections["accounts"].cursor() as cursor:
            cursor.execute("SELECT username FROM accounts_user")
            assert cursor.fetchall() == [("neo",)]
        assert "accounts_user" not in _tables("default")
