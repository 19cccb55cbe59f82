import re

import pytest
from django.contrib.auth import get_user
from django.core import mail
from django.test import Client

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

    def test_links_to_the_password_reset(self, client):
        response = client.get("/login")

        assert b'href="/password-reset"' in response.content


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


NEW_PASSWORD = "a-brand-new-secret-77"
CHANGE = "/account/password"


def _change(client, old=PASSWORD, new1=NEW_PASSWORD, new2=NEW_PASSWORD):
    return client.post(CHANGE, {"old_password": old, "new_password1": new1, "new_password2": new2})


class TestPasswordChangePage:
    def test_needs_a_signed_in_user(self, client):
        response = client.get(CHANGE)

        assert response.status_code == 302
        assert response.url == f"/login?next={CHANGE}"

    def test_shows_the_form_in_the_layout(self, client, user):
        client.force_login(user)

        response = client.get(CHANGE)

        assert response.status_code == 200
        assert b'class="topbar"' in response.content
        for field in (b"old_password", b"new_password1", b"new_password2"):
            assert b'name="' + field + b'"' in response.content

    def test_the_footer_links_to_it_for_signed_in_users_only(self, client, user):
        anonymous = client.get("/login")
        client.force_login(user)
        signed_in = client.get("/wallet")

        assert f'href="{CHANGE}"'.encode() not in anonymous.content
        assert f'href="{CHANGE}"'.encode() in signed_in.content

    def test_changes_it_and_keeps_this_session_but_ends_the_others(self, client, user):
        other_browser = Client()
        other_browser.force_login(user)
        client.force_login(user)

        response = _change(client)

        assert response.status_code == 302
        assert response.url == CHANGE
        user.refresh_from_db()
        assert user.check_password(NEW_PASSWORD)
        assert get_user(client).pk == user.pk
        assert not get_user(other_browser).is_authenticated
        assert client.get(CHANGE).status_code == 200
        assert other_browser.get(CHANGE).status_code == 302

    @pytest.mark.parametrize(
        ("form", "field"),
        [
            ({"old": "not-my-password"}, "old_password"),
            ({"new1": "short1", "new2": "short1"}, "new_password1"),
            ({"new2": "something-else-entirely"}, "new_password2"),
            ({"old": ""}, "old_password"),
        ],
    )
    def test_refuses_and_changes_nothing(self, client, user, form, field):
        client.force_login(user)
        hash_before = user.password

        response = _change(client, **form)

        assert response.status_code == 400
        assert f'id="id_{field}-error"'.encode() in response.content
        user.refresh_from_db()
        assert user.password == hash_before
        assert get_user(client).pk == user.pk


def _reset_link(message) -> str:
    return re.search(r"http://testserver-site(/password-reset/\S+)", message.body).group(1)


@pytest.fixture
def site_url(settings):
    settings.MISSIONHUB_SITE_URL = "http://testserver-site"
    return settings.MISSIONHUB_SITE_URL


class TestPasswordReset:
    def test_shows_the_form(self, client):
        response = client.get("/password-reset")

        assert response.status_code == 200
        assert b'name="email"' in response.content
        assert b'class="topbar"' in response.content

    def test_emails_the_user_a_link_built_from_the_site_url_not_the_host(self, client, user, site_url):
        response = client.post("/password-reset", {"email": user.email})

        assert response.status_code == 302
        assert response.url == "/password-reset/done"
        (message,) = mail.outbox
        assert message.to == [user.email]
        assert message.subject == f"Reset the MissionHub password of {user.username}"
        assert _reset_link(message).startswith("/password-reset/")
        assert client.get(response.url).status_code == 200

    def test_answers_the_same_for_an_unknown_address_and_sends_nothing(self, client, user):
        response = client.post("/password-reset", {"email": "nobody@example.com"})

        assert response.status_code == 302
        assert response.url == "/password-reset/done"
        assert mail.outbox == []

    def test_sends_nothing_to_a_deactivated_user(self, client):
        user = UserFactory(is_active=False)

        client.post("/password-reset", {"email": user.email})

        assert mail.outbox == []

    def test_the_email_is_text_without_html_escaping(self, client, site_url):
        user = UserFactory(username="obrien", email="o'brien&co@example.com")

        client.post("/password-reset", {"email": user.email})

        (message,) = mail.outbox
        assert "o'brien&co@example.com" in message.body
        assert "&amp;" not in message.body + message.subject
        assert "&#x27;" not in message.body

    def test_the_email_speaks_the_users_language(self, client, site_url):
        user = UserFactory(username="minji", language="ko")

        client.post("/password-reset", {"email": user.email})  # asked in English

        (message,) = mail.outbox
        assert message.subject == "minji 님의 MissionHub 비밀번호 재설정"
        assert "비밀번호" in message.body
        assert _reset_link(message).startswith("/password-reset/")

    def test_the_link_sets_a_new_password_once_and_ends_every_session(self, client, user, site_url):
        signed_in_elsewhere = Client()
        signed_in_elsewhere.force_login(user)
        client.post("/password-reset", {"email": user.email})
        link = _reset_link(mail.outbox[0])

        form = client.get(link)
        page = client.get(form.url)
        done = client.post(form.url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
        again = client.get(link)

        assert form.status_code == 302
        assert page.status_code == 200
        assert b'name="new_password1"' in page.content
        assert done.status_code == 302
        assert done.url == "/password-reset/complete"
        user.refresh_from_db()
        assert user.check_password(NEW_PASSWORD)
        assert not get_user(signed_in_elsewhere).is_authenticated
        assert again.status_code == 200
        assert b'name="new_password1"' not in again.content  # the link worked once
        assert client.get(done.url).status_code == 200

    def test_refuses_a_weak_password_and_changes_nothing(self, client, user, site_url):
        client.post("/password-reset", {"email": user.email})
        form = client.get(_reset_link(mail.outbox[0]))
        hash_before = user.password

        response = client.post(form.url, {"new_password1": "short1", "new_password2": "short1"})

        assert response.status_code == 200
        assert b"has-error" in response.content
        user.refresh_from_db()
        assert user.password == hash_before

    def test_a_forged_link_sets_nothing(self, client, user):
        hash_before = user.password

        response = client.get("/password-reset/MQ/abc-0123456789abcdef")

        assert response.status_code == 200
        assert b'name="new_password1"' not in response.content
        user.refresh_from_db()
        assert user.password == hash_before
