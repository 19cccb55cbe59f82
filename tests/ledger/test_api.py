import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ledger.models import Account, IdempotencyRecord, Posting, Transaction
from ledger.selectors import system_balance, wallet_balance
from missions.services import mission_decide, mission_settle, pledge_create
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases, query_counts

pytestmark = both_databases

WALLET = "/api/wallet"
TOPUPS = "/api/wallet/topups"
HISTORY = "/api/wallet/transactions"


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


def _ledger_state(*users) -> dict:
    """What a refused request must leave as it was: balances and the ledger's row counts."""
    return {
        "balances": [wallet_balance(user_id=u.pk) for u in users],
        "accounts": Account.objects.count(),
        "transactions": Transaction.objects.count(),
        "postings": Posting.objects.count(),
        "idempotency_records": IdempotencyRecord.objects.count(),
    }


def _topup(client, amount, **headers):
    return client.post(TOPUPS, {"amount": amount}, format="json", **headers)


def _key(key: str) -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": key}


# The wallet history on each database, however long: the JWT's user; the page and its count.
HISTORY_QUERIES = {"default": 2, "accounts": 1}


class TestWallet:
    def test_shows_zero_for_a_user_who_never_had_cash(self, auth_client):
        response = auth_client.get(WALLET)

        assert response.status_code == 200
        assert response.json() == {"balance": 0}

    def test_shows_the_users_balance(self, auth_client):
        fund(auth_client.user, 12_345)
        fund(UserFactory(), 50_000)

        response = auth_client.get(WALLET)

        assert response.json() == {"balance": 12_345}

    def test_needs_a_signed_in_user(self, api_client):
        response = api_client.get(WALLET)

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


class TestTopup:
    def test_moves_cash_into_the_wallet(self, auth_client):
        fund(auth_client.user, 2_000)

        response = _topup(auth_client, 5_000)

        assert response.status_code == 201
        body = response.json()
        assert body == {"id": body["id"], "amount": 5_000, "balance": 7_000}
        assert Transaction.objects.filter(pk=body["id"], kind=Transaction.Kind.TOPUP).exists()
        assert wallet_balance(user_id=auth_client.user.pk) == 7_000
        assert system_balance(kind=Account.Kind.EXTERNAL) == -7_000

    def test_writes_one_balanced_transaction_of_two_legs(self, auth_client):
        response = _topup(auth_client, 5_000)

        legs = Posting.objects.filter(transaction_id=response.json()["id"])
        assert sorted(legs.values_list("amount", flat=True)) == [-5_000, 5_000]

    @pytest.mark.parametrize("amount", [1_000, 1_000_000])
    def test_accepts_the_limits(self, auth_client, amount):
        assert settings.MISSIONHUB_TOPUP_MIN == 1_000
        assert settings.MISSIONHUB_TOPUP_MAX == 1_000_000

        response = _topup(auth_client, amount)

        assert response.status_code == 201
        assert wallet_balance(user_id=auth_client.user.pk) == amount

    @pytest.mark.parametrize(
        ("amount", "code"),
        [
            (0, "min_value"),
            (-5_000, "min_value"),
            (999, "min_value"),
            (1_000_001, "max_value"),
            (1.5, "invalid"),
            (100.0, "invalid"),
            (5_000.0, "invalid"),
            ("5000", "invalid"),
            (True, "invalid"),
            (None, "null"),
            ([5_000], "invalid"),
        ],
    )
    def test_refuses_a_bad_amount(self, auth_client, amount, code):
        fund(auth_client.user, 3_000)
        before = _ledger_state(auth_client.user)

        response = _topup(auth_client, amount)

        assert response.status_code == 400
        assert response.json()["code"] == code
        assert response.json()["errors"]["amount"][0]["code"] == code
        assert _ledger_state(auth_client.user) == before

    def test_refuses_a_missing_amount(self, auth_client):
        before = _ledger_state(auth_client.user)

        response = auth_client.post(TOPUPS, {}, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "required"
        assert response.json()["errors"]["amount"][0]["code"] == "required"
        assert _ledger_state(auth_client.user) == before

    def test_needs_a_signed_in_user(self, api_client):
        before = _ledger_state()

        response = _topup(api_client, 5_000)

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert _ledger_state() == before


class TestTopupIdempotency:
    def test_replays_the_first_response_and_moves_cash_once(self, auth_client):
        first = _topup(auth_client, 5_000, **_key("topup-1"))
        transactions = Transaction.objects.count()

        again = _topup(auth_client, 5_000, **_key("topup-1"))

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert Transaction.objects.count() == transactions
        assert wallet_balance(user_id=auth_client.user.pk) == 5_000

    def test_refuses_the_same_key_with_another_body(self, auth_client):
        _topup(auth_client, 5_000, **_key("topup-1"))
        before = _ledger_state(auth_client.user)

        response = _topup(auth_client, 6_000, **_key("topup-1"))

        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert _ledger_state(auth_client.user) == before

    @pytest.mark.parametrize("key", ["x" * 256, "x" * 300, "", "tab\there"])
    def test_refuses_a_malformed_key(self, auth_client, key):
        before = _ledger_state(auth_client.user)

        response = _topup(auth_client, 5_000, **_key(key))

        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_invalid"
        assert _ledger_state(auth_client.user) == before

    def test_accepts_a_key_of_255_characters(self, auth_client):
        response = _topup(auth_client, 5_000, **_key("k" * 255))

        assert response.status_code == 201

    def test_keys_belong_to_one_user(self, auth_client):
        other = _client_for(UserFactory())
        _topup(auth_client, 5_000, **_key("shared-key"))

        response = _topup(other, 7_000, **_key("shared-key"))

        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
        assert response.json()["balance"] == 7_000
        assert wallet_balance(user_id=auth_client.user.pk) == 5_000
        assert wallet_balance(user_id=other.user.pk) == 7_000

    def test_a_request_without_a_key_is_not_deduplicated(self, auth_client):
        _topup(auth_client, 5_000)

        _topup(auth_client, 5_000)

        assert wallet_balance(user_id=auth_client.user.pk) == 10_000


class TestWalletTransactions:
    def test_lists_signed_amounts_newest_first(self, auth_client):
        user = auth_client.user
        fund(user, 5_000)
        mission = make_mission(creator=user, amount=1_000)
        pledge_create(mission_id=mission.pk, user_id=user.pk, amount=300)
        mission_decide(mission_id=mission.pk, user_id=mission.streamer_id, action="reject")
        mission_settle(mission_id=mission.pk)

        response = auth_client.get(HISTORY)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 4
        assert body["next"] is None
        assert body["previous"] is None
        rows = [(r["kind"], r["amount"], r["balance_after"], r["mission"]) for r in body["results"]]
        assert rows == [
            ("refund", 1_300, 5_000, mission.pk),
            ("pledge", -300, 3_700, mission.pk),
            ("pledge", -1_000, 4_000, mission.pk),
            ("topup", 5_000, 5_000, None),
        ]
        fields = {"id", "kind", "amount", "balance_after", "mission", "created_at"}
        assert all(set(r) == fields for r in body["results"])
        assert body["results"][-1]["id"] == Transaction.objects.get(kind=Transaction.Kind.TOPUP).pk

    def test_shows_only_the_users_own_wallet(self, auth_client):
        fund(auth_client.user, 2_000)
        fund(UserFactory(), 3_000)

        response = auth_client.get(HISTORY)

        assert response.json()["count"] == 1
        assert response.json()["results"][0]["amount"] == 2_000

    def test_is_empty_for_a_user_without_a_wallet(self, auth_client):
        response = auth_client.get(HISTORY)

        assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}

    def test_pages_through_a_long_history(self, auth_client):
        for amount in range(1_000, 1_021):
            fund(auth_client.user, amount)

        first = auth_client.get(HISTORY)
        second = auth_client.get(first.json()["next"])

        assert first.json()["count"] == 21
        assert len(first.json()["results"]) == 20
        assert first.json()["results"][0]["amount"] == 1_020
        assert second.json()["previous"] is not None
        assert second.json()["next"] is None
        assert [r["amount"] for r in second.json()["results"]] == [1_000]

    def test_the_number_of_queries_does_not_grow_with_the_history(self, auth_client):
        fund(auth_client.user, 1_000)
        few = query_counts(lambda: auth_client.get(HISTORY))
        for _ in range(9):
            fund(auth_client.user, 1_000)

        many = query_counts(lambda: auth_client.get(HISTORY))

        assert few == many == HISTORY_QUERIES

    def test_needs_a_signed_in_user(self, api_client):
        response = api_client.get(HISTORY)

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
