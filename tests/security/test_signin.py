# ruff: noqa: RUF001, RUF003 - look-alike usernames (full-width, Cyrillic) are what these tests are about
"""Sign-in, tried as an attacker would: one canonical username on every way in, look-alike
spellings that share one limit, limits on the admin and the sign-in page, a limit per
address against password spraying, and look-alike registrations refused."""

import pytest
from django.contrib.auth import get_user
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from tests.accounts.factories import PASSWORD, UserFactory
from tests.utils import both_databases

pytestmark = both_databases

TOKEN = "/api/auth/token"
LOGIN = "/login"
ADMIN_LOGIN = "/admin/login/"
REGISTER = "/api/auth/register"
SIGNUP = "/signup"
WRONG = "wrong-wrong-wrong"
# Each is `viewer2` once normalised (NFKC) and case folded.
LOOK_ALIKES = ["ｖｉｅｗｅｒ２", "𝐯𝐢𝐞𝐰𝐞𝐫𝟐", "ᵛiewer2", "viewer₂", "VIEWER2"]
DOORS = ["api", "page", "admin"]


@pytest.fixture
def viewer2(db):
    """Staff too, so that the right password would open the admin as well."""
    return UserFactory(username="viewer2", is_staff=True)


def _sign_in(door: str, username: str, password: str, *, address: str = "127.0.0.1"):
    """One attempt through one way in; returns (status, signed-in user id or None)."""
    if door == "api":
        response = APIClient().post(
            TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=address
        )
        user_id = AccessToken(response.json()["access"])["user_id"] if response.status_code == 200 else None
        return response.status_code, int(user_id) if user_id is not None else None
    client = Client()
    response = _page(door, username, password, address=address, client=client)
    user = get_user(client)
    return response.status_code, user.pk if user.is_authenticated else None


def _page(door: str, username: str, password: str, *, address: str = "127.0.0.1", client=None):
    """One form post to `/login` ("page") or `/admin/login/` ("admin")."""
    url = LOGIN if door == "page" else ADMIN_LOGIN
    return (client or Client()).post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


class TestOneCanonicalUsername:
    @pytest.mark.parametrize("door", DOORS)
    @pytest.mark.parametrize("spelling", LOOK_ALIKES)
    def test_each_look_alike_signs_in_as_that_user_on_every_way_in(self, viewer2, door, spelling):
        status, user_id = _sign_in(door, spelling, PASSWORD)

        assert status in (200, 302)
        assert user_id == viewer2.pk

    @pytest.mark.parametrize("door", DOORS)
    def test_case_is_ignored_beyond_ascii(self, door):
        elodie = UserFactory(username="élodie", is_staff=True)

        status, user_id = _sign_in(door, "ÉLODIE", PASSWORD)

        assert status in (200, 302)
        assert user_id == elodie.pk

    @pytest.mark.parametrize("door", DOORS)
    def test_a_look_alike_with_a_wrong_password_signs_nobody_in(self, viewer2, door):
        status, user_id = _sign_in(door, "ｖｉｅｗｅｒ２", WRONG)

        assert status in (200, 401)
        assert user_id is None

    def test_a_mixed_script_look_alike_is_another_name_and_signs_nobody_in(self, db):
        UserFactory(username="streamer", is_streamer=True)

        status, user_id = _sign_in("api", "streаmer", PASSWORD)  # a Cyrillic а

        assert (status, user_id) == (401, None)


class TestRegistrationRefusesLookAlikes:
    @pytest.mark.parametrize("spelling", LOOK_ALIKES)
    def test_a_name_whose_canonical_form_is_taken_is_refused(self, api_client, viewer2, spelling):
        body = {"username": spelling, "email": "new@example.com", "password": "follow-the-rabbit-42"}

        response = api_client.post(REGISTER, body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "username_taken"
        assert list(User.objects.values_list("username", flat=True)) == ["viewer2"]

    @pytest.mark.parametrize("spelling", ["streаmer", "ѕtreamer", "strеamer", "viewer2ο"])  # Cyrillic а, ѕ, е; Greek ο
    def test_a_mixed_script_look_alike_is_refused(self, api_client, db, spelling):
        UserFactory(username="streamer", is_streamer=True)
        body = {"username": spelling, "email": "fake@example.com", "password": "follow-the-rabbit-42"}

        response = api_client.post(REGISTER, {**body, "is_streamer": True}, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "username_confusable"
        assert response.json()["errors"]["username"][0]["code"] == "username_confusable"
        assert list(User.objects.values_list("username", flat=True)) == ["streamer"]

    def test_a_mixed_script_look_alike_is_refused_even_when_nobody_has_the_name(self, api_client, db):
        body = {"username": "pаypal", "email": "fake@example.com", "password": "follow-the-rabbit-42"}

        response = api_client.post(REGISTER, body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "username_confusable"
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        ("spelling", "code"), [("ｖｉｅｗｅｒ２", "username_taken"), ("streаmer", "username_confusable")]
    )
    def test_the_signup_page_refuses_them_too(self, client, viewer2, spelling, code):
        body = {"username": spelling, "email": "new@example.com", "password": "follow-the-rabbit-42"}

        response = client.post(SIGNUP, body)

        assert response.status_code == 400
        assert b"has-error" in response.content
        assert User.objects.count() == 1
        assert not get_user(client).is_authenticated

    @pytest.mark.parametrize("name", ["дмитрий", "민준", "δημήτρης", "jane_doe"])
    def test_a_name_in_one_script_is_welcome(self, api_client, db, name):
        body = {"username": name, "email": "someone@example.com", "password": "follow-the-rabbit-42"}

        response = api_client.post(REGISTER, body, format="json")

        assert response.status_code == 201
        assert response.json()["username"] == name

    def test_a_full_width_name_is_stored_normalised_and_signs_in_on_every_way_in(self, api_client, db):
        body = {"username": "ｎｅｏ", "email": "neo@example.com", "password": "follow-the-rabbit-42"}

        response = api_client.post(REGISTER, body, format="json")

        assert response.status_code == 201
        assert response.json()["username"] == "neo"
        user = User.objects.get()
        assert (user.username, user.username_canonical) == ("neo", "neo")
        for door in ("api", "page"):
            for spelling in ("ｎｅｏ", "neo", "NEO"):
                assert _sign_in(door, spelling, "follow-the-rabbit-42")[1] == user.pk


class TestLookAlikesShareTheLimit:
    @pytest.mark.parametrize("door", DOORS)
    @pytest.mark.parametrize("spelling", LOOK_ALIKES)
    def test_after_eleven_wrong_passwords_on_the_api_no_look_alike_gets_in(self, viewer2, door, spelling):
        statuses = [_sign_in("api", "viewer2", WRONG)[0] for _ in range(11)]

        status, user_id = _sign_in(door, spelling, PASSWORD)

        assert statuses == [401] * 10 + [429]
        assert status == 429
        assert user_id is None

    def test_look_alikes_on_every_door_add_up_to_one_limit(self, viewer2):
        attempts = [(door, spelling) for door in DOORS for spelling in LOOK_ALIKES][:10]
        for door, spelling in attempts:
            assert _sign_in(door, spelling, WRONG)[1] is None

        status, user_id = _sign_in("api", "viewer2", PASSWORD)

        assert (status, user_id) == (429, None)

    def test_another_account_is_not_held_up(self, viewer2):
        other = UserFactory(username="viewer1")
        for _ in range(11):
            _sign_in("api", "viewer2", WRONG)

        assert _sign_in("page", "ｖｉｅｗｅｒ１", PASSWORD)[1] == other.pk


class TestAdminSignInLimit:
    def test_fifteen_wrong_passwords_then_the_right_one_is_refused(self, viewer2):
        statuses = [_page("admin", "viewer2", WRONG).status_code for _ in range(15)]

        status, user_id = _sign_in("admin", "viewer2", PASSWORD)

        assert statuses == [200] * 10 + [429] * 5
        assert (status, user_id) == (429, None)

    def test_a_refused_attempt_says_why_and_when_to_come_back(self, viewer2):
        for _ in range(10):
            _page("admin", "viewer2", WRONG)

        response = _page("admin", "viewer2", PASSWORD)

        assert response.status_code == 429
        assert b"Too many sign-in attempts" in response.content
        assert int(response["Retry-After"]) > 0
        assert b'name="password"' in response.content

    def test_the_right_password_under_the_limit_opens_the_admin(self, client, viewer2):
        response = client.post(ADMIN_LOGIN, {"username": "ｖｉｅｗｅｒ２", "password": PASSWORD})

        assert response.status_code == 302
        assert response["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200

    def test_the_admin_sign_in_page_shows_its_form(self, client, db):
        response = client.get(ADMIN_LOGIN)

        assert response.status_code == 200
        assert b'name="username"' in response.content
        assert b"csrfmiddlewaretoken" in response.content

    def test_a_viewer_who_is_not_staff_does_not_get_in(self, client, db):
        UserFactory(username="viewer1")

        response = client.post(ADMIN_LOGIN, {"username": "viewer1", "password": PASSWORD})

        assert response.status_code == 200
        assert not get_user(client).is_authenticated


class TestPageSignInLimit:
    def test_ten_wrong_passwords_then_the_right_one_is_refused(self, viewer2):
        statuses = [_page("page", "viewer2", WRONG).status_code for _ in range(10)]

        response = _page("page", "ｖｉｅｗｅｒ２", PASSWORD)

        assert statuses == [200] * 10
        assert response.status_code == 429
        assert b'data-code="throttled"' in response.content
        assert b"Too many sign-in attempts" in response.content
        assert int(response["Retry-After"]) > 0

    @pytest.mark.parametrize("door", DOORS)
    def test_the_limit_holds_for_the_account_from_another_address(self, viewer2, door):
        for _ in range(10):
            _sign_in(door, "viewer2", WRONG, address="10.0.0.1")

        status, user_id = _sign_in(door, "viewer2", PASSWORD, address="10.0.0.2")

        assert (status, user_id) == (429, None)


class TestPerAddressLimit:
    def test_spraying_many_usernames_from_one_address_is_limited(self, viewer2):
        statuses = [_sign_in("api", f"guess{i}", WRONG, address="10.9.9.9")[0] for i in range(61)]

        from_there = _sign_in("api", "viewer2", PASSWORD, address="10.9.9.9")
        elsewhere = _sign_in("api", "viewer2", PASSWORD, address="10.0.0.2")

        assert statuses == [401] * 60 + [429]
        assert from_there == (429, None)
        assert elsewhere == (200, viewer2.pk)

    @pytest.mark.parametrize("door", DOORS)
    def test_every_way_in_shares_the_count_of_an_address(self, viewer2, door):
        for i in range(60):
            _sign_in(DOORS[i % 3], f"guess{i}", WRONG, address="10.9.9.9")

        status, user_id = _sign_in(door, "viewer2", PASSWORD, address="10.9.9.9")

        assert (status, user_id) == (429, None)

    def test_the_page_answers_with_the_message(self, db):
        for i in range(60):
            _page("page", f"guess{i}", WRONG, address="10.9.9.9")

        response = _page("page", "guess-again", WRONG, address="10.9.9.9")

        assert response.status_code == 429
        assert b'data-code="throttled"' in response.content

    def test_the_rate_follows_the_setting(self, viewer2, settings):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_address": "2/min"},
        }
        statuses = [_sign_in("api", f"guess{i}", WRONG)[0] for i in range(3)]

        assert statuses == [401, 401, 429]
