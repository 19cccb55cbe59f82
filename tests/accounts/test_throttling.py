import time

import pytest

from accounts.models import User
from tests.accounts.factories import PASSWORD
from tests.utils import both_databases

pytestmark = both_databases


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


class TestLoginThrottle:
    def test_allows_ten_attempts_a_minute_per_username_and_address(self, api_client, user):
        body = {"username": user.username, "password": "wrong-wrong-wrong"}
        statuses = [api_client.post("/api/auth/token", body, format="json").status_code for _ in range(11)]

        assert statuses == [401] * 10 + [429]

    def test_a_throttled_request_says_so_with_a_code(self, api_client, user, rates):
        rates(login="1/min")
        body = {"username": user.username, "password": "wrong-wrong-wrong"}
        api_client.post("/api/auth/token", body, format="json")

        response = api_client.post("/api/auth/token", {**body, "password": PASSWORD}, format="json")

        assert response.status_code == 429
        assert response.json()["code"] == "throttled"
        assert "Retry-After" in response.headers

    @pytest.mark.parametrize(
        "body", [[None, None], ["viewer", "password"], "viewer", 7, {"username": [None], "password": "x"}]
    )
    def test_answers_a_json_body_that_is_no_object_with_400(self, api_client, body):
        response = api_client.post("/api/auth/token", body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "invalid"

    def test_counts_each_username_separately(self, api_client, user, rates):
        rates(login="1/min")
        api_client.post("/api/auth/token", {"username": "someone", "password": "x"}, format="json")

        response = api_client.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")

        assert response.status_code == 200

    def test_holds_for_the_account_from_any_address(self, api_client, user, rates):
        rates(login="1/min")
        api_client.post(
            "/api/auth/token", {"username": user.username, "password": "x"}, format="json", REMOTE_ADDR="10.0.0.1"
        )

        response = api_client.post(
            "/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json", REMOTE_ADDR="10.0.0.2"
        )

        assert response.status_code == 429

    def test_limits_each_address_whatever_the_username(self, api_client, user, rates):
        rates(login_address="1/min")
        api_client.post("/api/auth/token", {"username": "someone", "password": "x"}, format="json")
        body = {"username": user.username, "password": PASSWORD}

        refused = api_client.post("/api/auth/token", body, format="json")
        elsewhere = api_client.post("/api/auth/token", body, format="json", REMOTE_ADDR="10.0.0.2")

        assert refused.status_code == 429
        assert refused.json()["code"] == "throttled"
        assert elsewhere.status_code == 200

    def test_throttles_the_sign_in_page_too(self, client, user, rates):
        rates(login="2/min")
        body = {"username": user.username, "password": "wrong-wrong-wrong"}
        statuses = [client.post("/login", body).status_code for _ in range(3)]

        assert statuses == [200, 200, 429]


class TestRegisterThrottle:
    def test_limits_registrations_per_address(self, api_client, rates):
        rates(register="2/hour")
        statuses = [
            api_client.post(
                "/api/auth/register",
                {"username": f"u{i}", "email": f"u{i}@example.com", "password": "follow-the-rabbit-42"},
                format="json",
            ).status_code
            for i in range(3)
        ]

        assert statuses == [201, 201, 429]
        assert User.objects.count() == 2


class TestOtherCalls:
    def test_limits_anonymous_calls_per_address(self, api_client, user, rates):
        rates(anon="2/min")
        statuses = [api_client.get(f"/api/users/{user.username}").status_code for _ in range(3)]

        assert statuses == [200, 200, 429]

    def test_limits_signed_in_calls_per_user(self, auth_client, rates):
        rates(user="2/min")
        statuses = [auth_client.get("/api/users/me").status_code for _ in range(3)]

        assert statuses == [200, 200, 429]


class TestWindows:
    def test_a_refusal_says_how_long_its_window_has_left(self, auth_client, rates):
        rates(user="2/min")
        auth_client.get("/api/users/me")
        auth_client.get("/api/users/me")

        response = auth_client.get("/api/users/me")

        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 60

    def test_a_new_window_opens_once_the_last_has_passed(self, auth_client, rates):
        rates(user="1/s")
        first = auth_client.get("/api/users/me").status_code
        refused = auth_client.get("/api/users/me").status_code

        time.sleep(1.2)
        again = auth_client.get("/api/users/me").status_code

        assert (first, refused, again) == (200, 429, 200)

    def test_a_request_refused_by_one_throttle_of_a_group_is_counted_by_the_others(self, auth_client, rates):
        rates(money="1/min", user="3/min")
        topup = {"amount": 5_000}
        auth_client.post("/api/wallet/topups", topup, format="json")

        refused = auth_client.post("/api/wallet/topups", topup, format="json")
        read = auth_client.get("/api/users/me")
        over = auth_client.get("/api/users/me")

        assert (refused.status_code, read.status_code, over.status_code) == (429, 200, 429)
