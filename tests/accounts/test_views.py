from django.contrib.auth import get_user

from accounts.models import User
from tests.accounts.factories import PASSWORD, UserFactory
from tests.utils import both_databases

pytestmark = both_databases


class TestLoginPage:
    def test_shows_the_form(self, client):
        response = client.get("/login")

        assert response.status_code == 200
        assert b'name="username"' in response.content
        assert b'name="password"' in response.content
        assert b"csrfmiddlewaretoken" in response.content

    def test_signs_in_and_redirects(self, client, user):
        response = client.post("/login", {"username": user.username, "password": PASSWORD})

        assert response.status_code == 302
        assert get_user(client).pk == user.pk

    def test_a_wrong_password_signs_nobody_in(self, client, user):
        response = client.post("/login", {"username": user.username, "password": "wrong-wrong-wrong"})

        assert response.status_code == 200
        assert not get_user(client).is_authenticated
        assert b"form-errors" in response.content


class TestSignupPage:
    def test_creates_the_user_and_signs_them_in(self, client):
        response = client.post(
            "/signup",
            {
                "username": "trinity",
                "email": "t@example.com",
                "password": "follow-the-rabbit-42",
                "is_streamer": "on",
            },
        )

        assert response.status_code == 302
        user = User.objects.get(username="trinity")
        assert user.is_streamer
        assert get_user(client).pk == user.pk

    def test_shows_errors_and_creates_nothing(self, client):
        UserFactory(username="trinity")

        response = client.post("/signup", {"username": "TRINITY", "email": "bad", "password": "123"})

        assert response.status_code == 400
        assert User.objects.count() == 1
        assert b"has-error" in response.content

    def test_refuses_a_weak_password(self, client):
        response = client.post("/signup", {"username": "trinity", "email": "t@example.com", "password": "123"})

        assert response.status_code == 400
        assert not User.objects.exists()


class TestLogoutPage:
    def test_signs_out_on_post(self, client, user):
        client.force_login(user)

        response = client.post("/logout")

        assert response.status_code == 302
        assert not get_user(client).is_authenticated

    def test_asks_for_confirmation_on_get(self, client, user):
        client.force_login(user)

        response = client.get("/logout")

        assert response.status_code == 200
        assert get_user(client).is_authenticated

    def test_the_form_needs_a_csrf_token(self, user):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(user)

        response = client.post("/logout")

        assert response.status_code == 403


class TestLanguageSwitch:
    def test_a_signed_in_users_emails_follow_the_switch(self, client, user):
        client.force_login(user)

        response = client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

        assert response.status_code == 302
        user.refresh_from_db()
        assert user.language == "ko"

    def test_an_unknown_language_changes_nothing(self, client, user):
        client.force_login(user)

        client.post("/i18n/setlang/", {"language": "xx", "next": "/"})

        user.refresh_from_db()
        assert user.language == "en"

    def test_signing_up_in_korean_keeps_korean_for_emails(self, client):
        client.post(
            "/signup",
            {"username": "minji", "email": "minji@example.com", "password": "follow-the-rabbit-42"},
            HTTP_ACCEPT_LANGUAGE="ko",
        )

        assert User.objects.get(username="minji").language == "ko"
