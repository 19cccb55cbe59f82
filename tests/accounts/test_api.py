from datetime import timedelta

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tests.accounts.factories import PASSWORD, UserFactory
from tests.utils import both_databases

pytestmark = both_databases

REGISTER = "/api/auth/register"
TOKEN = "/api/auth/token"
REFRESH = "/api/auth/token/refresh"
LOGOUT = "/api/auth/logout"
PASSWORD_CHANGE = "/api/auth/password"
NEW_PASSWORD = "a-brand-new-secret-77"
ME = "/api/users/me"


def _register(client, **overrides):
    body = {"username": "neo", "email": "neo@example.com", "password": "follow-the-rabbit-42"}
    body.update(overrides)
    return client.post(REGISTER, body, format="json")


class TestRegister:
    def test_creates_a_user_in_the_accounts_database(self, api_client):
        response = _register(api_client, is_streamer=True)

        assert response.status_code == 201
        assert response.json() == {
            "id": response.json()["id"],
            "username": "neo",
            "email": "neo@example.com",
            "is_streamer": True,
        }
        user = User.objects.using("accounts").get(username="neo")
        assert user.is_streamer
        assert user.check_password("follow-the-rabbit-42")

    def test_defaults_to_a_viewer(self, api_client):
        response = _register(api_client)

        assert response.json()["is_streamer"] is False

    @pytest.mark.argon2
    def test_hashes_the_password_with_argon2(self, api_client):
        _register(api_client)

        assert User.objects.get(username="neo").password.startswith("argon2")

    @pytest.mark.parametrize("username", ["neo", "NEO", "Neo"])
    def test_refuses_a_taken_username_in_any_case(self, api_client, username):
        UserFactory(username="neo", email="first@example.com")

        response = _register(api_client, username=username)

        assert response.status_code == 400
        assert response.json()["code"] == "username_taken"
        assert response.json()["errors"]["username"][0]["code"] == "username_taken"
        assert User.objects.count() == 1

    @pytest.mark.parametrize("email", ["neo@example.com", "NEO@Example.COM"])
    def test_refuses_a_taken_email_in_any_case(self, api_client, email):
        UserFactory(username="first", email="neo@example.com")

        response = _register(api_client, email=email)

        assert response.status_code == 400
        assert response.json()["code"] == "email_taken"
        assert User.objects.count() == 1

    @pytest.mark.parametrize(
        ("password", "code"),
        [
            ("short1", "password_too_short"),
            ("password123", "password_too_common"),
            ("8675309123", "password_entirely_numeric"),
            ("neo@example.com", "password_too_similar"),
        ],
    )
    def test_refuses_a_weak_password(self, api_client, password, code):
        response = _register(api_client, password=password)

        assert response.status_code == 400
        codes = [e["code"] for e in response.json()["errors"]["password"]]
        assert code in codes
        assert not User.objects.exists()

    @pytest.mark.parametrize("missing", ["username", "email", "password"])
    def test_refuses_a_missing_field(self, api_client, missing):
        body = {"username": "neo", "email": "neo@example.com", "password": "follow-the-rabbit-42"}
        del body[missing]

        response = api_client.post(REGISTER, body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "required"
        assert missing in response.json()["errors"]
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("username", "has space", "invalid"),
            ("username", "", "blank"),
            ("username", "x" * 151, "max_length"),
            ("email", "not-an-email", "invalid"),
            ("is_streamer", "perhaps", "invalid"),
        ],
    )
    def test_refuses_a_malformed_field(self, api_client, field, value, code):
        response = _register(api_client, **{field: value})

        assert response.status_code == 400
        assert response.json()["errors"][field][0]["code"] == code
        assert not User.objects.exists()

    def test_refuses_malformed_json(self, api_client):
        response = api_client.post(REGISTER, "{not json", content_type="application/json")

        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"
        assert not User.objects.exists()

    def test_refuses_a_form_encoded_body(self, api_client):
        response = api_client.post(REGISTER, {"username": "neo"})

        assert response.status_code == 415
        assert response.json()["code"] == "unsupported_media_type"


class TestToken:
    def test_issues_an_access_and_a_refresh_token(self, api_client, user):
        response = api_client.post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")

        assert response.status_code == 200
        assert set(response.json()) == {"access", "refresh"}
        assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)

    def test_ignores_the_case_of_the_username(self, api_client, user):
        response = api_client.post(TOKEN, {"username": user.username.upper(), "password": PASSWORD}, format="json")

        assert response.status_code == 200

    def test_a_wrong_password_and_an_unknown_user_look_the_same(self, api_client, user):
        wrong = api_client.post(TOKEN, {"username": user.username, "password": "nope-nope-nope"}, format="json")
        unknown = api_client.post(TOKEN, {"username": "nobody", "password": "nope-nope-nope"}, format="json")

        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert wrong.json()["code"] == "no_active_account"

    def test_refuses_an_inactive_user(self, api_client):
        user = UserFactory(is_active=False)

        response = api_client.post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")

        assert response.status_code == 401


class TestTokenRefresh:
    def test_rotates_the_refresh_token_and_blacklists_the_old_one(self, api_client, user):
        old = str(RefreshToken.for_user(user))

        first = api_client.post(REFRESH, {"refresh": old}, format="json")
        again = api_client.post(REFRESH, {"refresh": old}, format="json")

        assert first.status_code == 200
        assert set(first.json()) == {"access", "refresh"}
        assert first.json()["refresh"] != old
        assert again.status_code == 401
        assert again.json()["code"] == "token_not_valid"

    def test_refuses_a_tampered_token(self, api_client, user):
        token = str(RefreshToken.for_user(user))

        response = api_client.post(REFRESH, {"refresh": token[:-4] + "AAAA"}, format="json")

        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"

    def test_refuses_the_token_of_a_deleted_user(self, api_client, user):
        token = str(RefreshToken.for_user(user))
        user.delete()

        response = api_client.post(REFRESH, {"refresh": token}, format="json")

        assert response.status_code == 401
        assert response.json()["code"] == "no_active_account"
        assert set(response.json()) == {"code", "detail"}

    def test_refuses_the_token_of_a_deactivated_user(self, api_client, user):
        token = str(RefreshToken.for_user(user))
        User.objects.filter(pk=user.pk).update(is_active=False)

        response = api_client.post(REFRESH, {"refresh": token}, format="json")

        assert response.status_code == 401
        assert response.json()["code"] == "no_active_account"


class TestLogout:
    def test_blacklists_the_refresh_token(self, auth_client):
        refresh = str(RefreshToken.for_user(auth_client.user))

        response = auth_client.post(LOGOUT, {"refresh": refresh}, format="json")
        reuse = auth_client.post(REFRESH, {"refresh": refresh}, format="json")

        assert response.status_code == 204
        assert reuse.status_code == 401

    def test_needs_a_signed_in_user(self, api_client, user):
        response = api_client.post(LOGOUT, {"refresh": str(RefreshToken.for_user(user))}, format="json")

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_refuses_another_users_token(self, auth_client):
        other = str(RefreshToken.for_user(UserFactory()))

        response = auth_client.post(LOGOUT, {"refresh": other}, format="json")

        assert response.status_code == 403
        assert response.json()["code"] == "token_not_yours"
        assert auth_client.post(REFRESH, {"refresh": other}, format="json").status_code == 200


class TestPasswordChange:
    def _change(self, client, old_password=PASSWORD, new_password=NEW_PASSWORD):
        return client.post(PASSWORD_CHANGE, {"old_password": old_password, "new_password": new_password}, format="json")

    def test_changes_the_password(self, auth_client, api_client):
        user = auth_client.user

        response = self._change(auth_client)

        assert response.status_code == 204
        assert response.content == b""
        user.refresh_from_db()
        assert user.check_password(NEW_PASSWORD)
        for password, status in [(PASSWORD, 401), (NEW_PASSWORD, 200)]:
            signin = api_client.post(TOKEN, {"username": user.username, "password": password}, format="json")
            assert signin.status_code == status

    def test_refuses_a_wrong_old_password(self, auth_client):
        user = auth_client.user
        hash_before = user.password

        response = self._change(auth_client, old_password="not-my-password")

        assert response.status_code == 400
        assert response.json()["code"] == "password_incorrect"
        assert response.json()["errors"]["old_password"][0]["code"] == "password_incorrect"
        user.refresh_from_db()
        assert user.password == hash_before
        assert not BlacklistedToken.objects.exists()

    @pytest.mark.parametrize(
        ("password", "code"),
        [
            ("short1", "password_too_short"),
            ("password123", "password_too_common"),
            ("8675309123", "password_entirely_numeric"),
        ],
    )
    def test_refuses_a_weak_new_password_with_the_validators_codes(self, auth_client, password, code):
        user = auth_client.user
        hash_before = user.password

        response = self._change(auth_client, new_password=password)

        assert response.status_code == 400
        assert code in [e["code"] for e in response.json()["errors"]["new_password"]]
        user.refresh_from_db()
        assert user.password == hash_before

    def test_refuses_a_new_password_like_the_email_address(self, auth_client):
        user = auth_client.user

        response = self._change(auth_client, new_password=user.email)

        assert response.status_code == 400
        assert "password_too_similar" in [e["code"] for e in response.json()["errors"]["new_password"]]

    @pytest.mark.parametrize("missing", ["old_password", "new_password"])
    def test_refuses_a_missing_field(self, auth_client, missing):
        body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
        del body[missing]
        hash_before = auth_client.user.password

        response = auth_client.post(PASSWORD_CHANGE, body, format="json")

        assert response.status_code == 400
        assert response.json()["errors"][missing][0]["code"] == "required"
        auth_client.user.refresh_from_db()
        assert auth_client.user.password == hash_before

    def test_needs_a_signed_in_user(self, api_client, user):
        hash_before = user.password

        response = self._change(api_client)

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        user.refresh_from_db()
        assert user.password == hash_before

    def test_blacklists_the_users_recorded_refresh_tokens_and_no_one_elses(self, auth_client):
        for _ in range(2):
            RefreshToken.for_user(auth_client.user)
        theirs = RefreshToken.for_user(UserFactory())
        mine = set(OutstandingToken.objects.filter(user=auth_client.user).values_list("jti", flat=True))

        self._change(auth_client)

        blacklisted = set(BlacklistedToken.objects.values_list("token__jti", flat=True))
        assert len(mine) == 3  # the fixture's sign-in and these two
        assert blacklisted == mine
        assert OutstandingToken.objects.filter(jti=theirs["jti"]).exists()

    def test_a_browser_calling_with_its_session_stays_signed_in(self, client, user):
        from django.contrib.auth import get_user

        client.force_login(user)

        response = client.post(
            PASSWORD_CHANGE,
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            content_type="application/json",
        )

        assert response.status_code == 204
        assert get_user(client).pk == user.pk


class TestMe:
    def test_shows_the_user_and_their_balance(self, auth_client):
        user = auth_client.user

        response = auth_client.get(ME)

        assert response.status_code == 200
        assert response.json() == {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "is_streamer": False,
            "balance": 0,
        }

    def test_refuses_no_token(self, api_client):
        response = api_client.get(ME)

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_refuses_an_expired_token(self, api_client, user):
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        response = api_client.get(ME)

        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"

    def test_refuses_a_tampered_token(self, api_client, user):
        token = str(AccessToken.for_user(user))
        header, payload, signature = token.split(".")
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{signature[::-1]}")

        response = api_client.get(ME)

        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"

    def test_refuses_a_refresh_token_used_as_access(self, api_client, user):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user)}")

        assert api_client.get(ME).status_code == 401

    def test_refuses_the_token_of_a_deleted_user(self, api_client, user):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        user.delete()

        response = api_client.get(ME)

        assert response.status_code == 401
        assert response.json()["code"] == "no_active_account"

    def test_refuses_the_token_of_a_deactivated_user(self, api_client, user):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        User.objects.filter(pk=user.pk).update(is_active=False)

        response = api_client.get(ME)

        assert response.status_code == 401
        assert response.json()["code"] == "no_active_account"


class TestUserProfile:
    def test_shows_public_fields_only(self, api_client):
        UserFactory(username="neo", is_streamer=True)

        response = api_client.get("/api/users/neo")

        assert response.status_code == 200
        assert set(response.json()) == {"username", "is_streamer", "date_joined"}
        assert response.json()["is_streamer"] is True

    @pytest.mark.parametrize("spelling", ["ｎｅｏ", "𝐍𝐞𝐨", "NEO"])  # noqa: RUF001
    def test_finds_the_user_by_any_spelling_of_the_name(self, api_client, spelling):
        UserFactory(username="neo")

        response = api_client.get(f"/api/users/{spelling}")

        assert response.status_code == 200
        assert response.json()["username"] == "neo"

    def test_answers_404_for_an_unknown_user(self, api_client):
        response = api_client.get("/api/users/nobody")

        assert response.status_code == 404
        assert response.json()["code"] == "user_not_found"

    def test_whole_flow_register_token_me(self, api_client):
        _register(api_client)
        tokens = api_client.post(TOKEN, {"username": "neo", "password": "follow-the-rabbit-42"}, format="json")
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")

        response = api_client.get(ME)

        assert response.json()["username"] == "neo"
