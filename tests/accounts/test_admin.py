# ruff: noqa: RUF001 - look-alike usernames (full-width, Cyrillic) are what these tests are about
"""The admin's user forms keep one account per canonical username."""

import pytest

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.utils import both_databases

pytestmark = both_databases


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


class TestUserAdmin:
    def test_adding_a_look_alike_of_a_taken_username_is_a_form_error(self, staff_client):
        UserFactory(username="élodie")
        body = {
            "username": "ÉLODIE",
            "email": "e2@example.com",
            "usable_password": "true",
            "password1": "x-Long-pass-99",
            "password2": "x-Long-pass-99",
        }

        response = staff_client.post("/admin/accounts/user/add/", body)

        assert response.status_code == 200
        assert "That username is taken." in response.content.decode()
        assert User.objects.count() == 2

    def test_adding_a_new_username_stores_it_normalised(self, staff_client):
        body = {
            "username": "ｎｅｏ",
            "email": "neo@example.com",
            "usable_password": "true",
            "password1": "x-Long-pass-99",
            "password2": "x-Long-pass-99",
        }

        response = staff_client.post("/admin/accounts/user/add/", body)

        assert response.status_code == 302
        assert User.objects.filter(username="neo", username_canonical="neo").exists()

    def test_renaming_a_user_into_a_look_alike_is_a_form_error(self, staff_client):
        UserFactory(username="élodie")
        other = UserFactory(username="trinity")
        page = staff_client.get(f"/admin/accounts/user/{other.pk}/change/")
        body = {**page.context["adminform"].form.initial, "username": "ÉLODIE"}
        body = {k: v for k, v in body.items() if v is not None and k not in {"groups", "user_permissions", "password"}}

        response = staff_client.post(f"/admin/accounts/user/{other.pk}/change/", body)

        assert response.status_code == 200
        assert "That username is taken." in response.content.decode()
        other.refresh_from_db()
        assert other.username == "trinity"
