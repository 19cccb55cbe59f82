# ruff: noqa: RUF001 - look-alike usernames (full-width, Cyrillic) are what these tests are about
"""The canonical username (accounts.usernames), the model that keeps it, and the data
migration that filled it in for existing users."""

import importlib

import pytest
from django.db import IntegrityError, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from accounts.usernames import username_canonical, username_is_confusable
from tests.accounts.factories import UserFactory
from tests.utils import both_databases

migration = importlib.import_module("accounts.migrations.0003_user_username_canonical")


class TestUsernameCanonical:
    @pytest.mark.parametrize(
        ("spelling", "canonical"),
        [
            ("viewer1", "viewer1"),
            ("ｖｉｅｗｅｒ１", "viewer1"),
            ("𝐯𝐢𝐞𝐰𝐞𝐫𝟐", "viewer2"),
            ("ᵛiewer2", "viewer2"),
            ("viewer₂", "viewer2"),
            ("ÉLODIE", "élodie"),
            ("E\u0301lodie", "élodie"),  # a combining accent composes
            ("Straße", "strasse"),
            ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),
        ],
    )
    def test_is_nfkc_then_case_folded(self, spelling, canonical):
        assert username_canonical(spelling) == canonical

    @pytest.mark.parametrize(
        ("name", "confusable"),
        [("streаmer", True), ("pаypal", True), ("streamer", False), ("дмитрий", False), ("민준", False)],
    )
    def test_is_confusable_only_for_mixed_scripts_that_look_alike(self, name, confusable):
        assert username_is_confusable(name) is confusable


@both_databases
class TestUserModel:
    def test_stores_the_username_nfkc_and_its_canonical_form_however_it_is_saved(self):
        user = UserFactory(username="ＴＲＩＮＩＴＹ")

        user.refresh_from_db()

        assert (user.username, user.username_canonical) == ("TRINITY", "trinity")

    def test_a_rename_keeps_the_canonical_form_in_step(self):
        user = UserFactory(username="neo")
        user.username = "Ｍｏｒｐｈｅｕｓ"

        user.save(update_fields=["username"])

        user.refresh_from_db()
        assert (user.username, user.username_canonical) == ("Morpheus", "morpheus")

    def test_the_database_refuses_a_second_account_with_the_same_canonical_form(self):
        UserFactory(username="élodie")

        with pytest.raises(IntegrityError), transaction.atomic(using="accounts"):
            UserFactory(username="ÉLODIE")

        assert User.objects.count() == 1


class TestDataMigration:
    def test_normalises_names_and_fills_the_canonical_form(self):
        plan = migration.usernames_plan([(1, "ｎｅｏ"), (2, "Trinity")])

        assert plan == {1: ("neo", "neo"), 2: ("Trinity", "trinity")}

    def test_renames_the_later_look_alikes_and_keeps_the_name_that_could_sign_in(self):
        plan = migration.usernames_plan([(3, "ｖｉｅｗｅｒ１"), (5, "viewer1"), (8, "VIEWER₁"), (9, "viewer1-3")])

        assert plan[5] == ("viewer1", "viewer1")
        assert plan[3] == ("viewer1-3-1", "viewer1-3-1")  # viewer1-3 is someone's name
        assert plan[8] == ("VIEWER1-8", "viewer1-8")
        assert plan[9] == ("viewer1-3", "viewer1-3")
        assert len({canonical for _, canonical in plan.values()}) == 4
        # The renamed are saved first, so no two rows hold one stored name on the way.
        assert list(plan)[:2] == [3, 8]

    def test_without_a_normalised_name_the_oldest_keeps_it(self):
        plan = migration.usernames_plan([(4, "ＭＯＲＰＨＥＵＳ"), (2, "ｍｏｒｐｈｅｕｓ")])

        assert plan[2] == ("morpheus", "morpheus")
        assert plan[4] == ("MORPHEUS-4", "morpheus-4")

    def test_a_name_too_long_once_normalised_is_shortened(self):
        plan = migration.usernames_plan([(7, "ﷺ" * 10)])  # one character, eighteen once normalised

        username, _canonical = plan[7]
        assert len(username) == 150
        assert username.endswith("-7")


@pytest.mark.django_db(databases=["default", "accounts"], transaction=True)
def test_the_migration_fills_in_existing_users_on_the_accounts_database(caplog):
    before, after = [("accounts", "0002_user_language")], [("accounts", "0003_user_username_canonical")]
    executor = MigrationExecutor(connections["accounts"])
    executor.migrate(before)
    old_user = executor.loader.project_state(before).apps.get_model("accounts", "User")
    for i, name in enumerate(["viewer1", "ｖｉｅｗｅｒ１", "ｎｅｏ"]):
        old_user.objects.using("accounts").create(username=name, email=f"u{i}@example.com", password="!")

    try:
        MigrationExecutor(connections["accounts"]).migrate(after)
    finally:
        executor = MigrationExecutor(connections["accounts"])
        executor.migrate(executor.loader.graph.leaf_nodes("accounts"))

    first, second, third = User.objects.order_by("pk").values_list("pk", "username", "username_canonical")
    assert first[1:] == ("viewer1", "viewer1")
    assert second[1:] == (f"viewer1-{second[0]}", f"viewer1-{second[0]}")
    assert third[1:] == ("neo", "neo")
    assert f"renamed user #{second[0]} 'ｖｉｅｗｅｒ１' to 'viewer1-{second[0]}'" in caplog.text
