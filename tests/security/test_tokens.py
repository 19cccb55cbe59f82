"""A changed or reset password ends every token issued before it (DESIGN.md, "Users and sign-in").

Each test signs in through the API as a client would, changes or resets the password, then
tries the old tokens where they matter: a top-up (money) and the refresh endpoint.
"""

import re

from django.core import mail
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from ledger.models import Transaction
from ledger.selectors import wallet_balance
from tests.accounts.factories import PASSWORD
from tests.utils import both_databases

pytestmark = both_databases

TOKEN = "/api/auth/token"
REFRESH = "/api/auth/token/refresh"
PASSWORD_CHANGE = "/api/auth/password"
TOPUPS = "/api/wallet/topups"
NEW_PASSWORD = "a-brand-new-secret-77"


def _sign_in(username: str, password: str) -> dict:
    response = APIClient().post(TOKEN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def _topup(access: str):
    return _bearer(access).post(TOPUPS, {"amount": 5_000}, format="json")


def _refresh(refresh: str):
    return APIClient().post(REFRESH, {"refresh": refresh}, format="json")


def _money(user) -> dict:
    return {"balance": wallet_balance(user_id=user.pk), "transactions": Transaction.objects.count()}


def _change_password(access: str) -> None:
    response = _bearer(access).post(
        PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 204, response.content


def _reset_password_through_the_emailed_link(email: str) -> None:
    browser = Client()
    assert browser.post("/password-reset", {"email": email}).status_code == 302
    (message,) = mail.outbox
    link = re.search(r"https?://\S+(/password-reset/\S+)", message.body).group(1)
    form = browser.get(link)  # Django moves the token into the session and redirects
    assert form.status_code == 302
    done = browser.post(form.url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert done.url == "/password-reset/complete"


def _refused(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "token_not_valid"


class TestAPasswordChange:
    def test_the_old_access_token_can_no_longer_top_up(self, user):
        old = _sign_in(user.username, PASSWORD)
        assert _topup(old["access"]).status_code == 201
        _change_password(old["access"])
        before = _money(user)

        response = _topup(old["access"])

        _refused(response)
        assert _money(user) == before

    def test_the_old_refresh_token_gets_no_new_pair(self, user):
        old = _sign_in(user.username, PASSWORD)
        _change_password(old["access"])

        response = _refresh(old["refresh"])

        _refused(response)
        assert "access" not in response.json()

    def test_a_refresh_token_never_recorded_as_outstanding_is_refused_too(self, user):
        unrecorded = RefreshToken.for_user(user)
        OutstandingToken.objects.filter(jti=unrecorded["jti"]).delete()
        old = _sign_in(user.username, PASSWORD)
        _change_password(old["access"])

        response = _refresh(str(unrecorded))

        _refused(response)

    def test_every_access_token_issued_before_it_is_refused(self, user):
        first, second = _sign_in(user.username, PASSWORD), _sign_in(user.username, PASSWORD)
        rotated = _refresh(second["refresh"]).json()
        _change_password(first["access"])
        before = _money(user)

        responses = [_topup(tokens["access"]) for tokens in (first, second, rotated)]

        for response in responses:
            _refused(response)
        assert _money(user) == before

    def test_tokens_issued_after_it_work(self, user):
        old = _sign_in(user.username, PASSWORD)
        _change_password(old["access"])

        new = _sign_in(user.username, NEW_PASSWORD)
        topup = _topup(new["access"])
        refreshed = _refresh(new["refresh"])

        assert topup.status_code == 201
        assert refreshed.status_code == 200
        assert _topup(refreshed.json()["access"]).status_code == 201

    def test_another_users_tokens_keep_working(self, user):
        from tests.accounts.factories import UserFactory

        other = UserFactory()
        theirs = _sign_in(other.username, PASSWORD)
        _change_password(_sign_in(user.username, PASSWORD)["access"])

        assert _topup(theirs["access"]).status_code == 201
        assert _refresh(theirs["refresh"]).status_code == 200


class TestAPasswordReset:
    def test_the_old_access_token_can_no_longer_top_up(self, user):
        old = _sign_in(user.username, PASSWORD)
        _reset_password_through_the_emailed_link(user.email)
        before = _money(user)

        response = _topup(old["access"])

        _refused(response)
        assert _money(user) == before

    def test_the_old_refresh_token_gets_no_new_pair(self, user):
        old = _sign_in(user.username, PASSWORD)
        _reset_password_through_the_emailed_link(user.email)

        response = _refresh(old["refresh"])

        _refused(response)
        assert "access" not in response.json()

    def test_tokens_issued_after_it_work(self, user):
        _sign_in(user.username, PASSWORD)
        _reset_password_through_the_emailed_link(user.email)

        new = _sign_in(user.username, NEW_PASSWORD)

        assert _topup(new["access"]).status_code == 201
        assert _refresh(new["refresh"]).status_code == 200
