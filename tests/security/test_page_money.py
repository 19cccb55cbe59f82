"""Page forms that move cash (pledge, top-up, new mission): they share the API's money
limit, and each carries a one-time key so that a double submit moves cash once
(issue 7 item 6; DESIGN.md "Users and sign-in")."""

import re

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from ledger.models import Account, Event, IdempotencyRecord, Posting, Transaction
from ledger.selectors import wallet_balance
from missions.forms import MissionForm
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases


# --- helpers ------------------------------------------------------------------------------


def _codes(response) -> list[str]:
    return re.findall(r'data-code="([^"]*)"', response.content.decode())


def _form_keys(response) -> list[str]:
    """The one-time keys of the page's forms, in page order."""
    return re.findall(r'<input type="hidden" name="form_key" value="([^"]*)"', response.content.decode())


def _money() -> tuple[int, ...]:
    """Everything a cash movement would change."""
    return (
        Transaction.objects.count(),
        Posting.objects.count(),
        Event.objects.count(),
        Mission.objects.count(),
        *Account.objects.order_by("pk").values_list("balance", flat=True),
    )


def _key(client, page: str) -> str:
    """The first form's key on the page ("" if there is none)."""
    keys = _form_keys(client.get(page))
    return keys[0] if keys else ""


class Form:
    """One of the three money forms: where it is shown, where it posts, what it sends."""

    def __init__(self, name, *, page, action, data, moved):
        self.name, self.page, self.action, self.data, self.moved = name, page, action, data, moved

    def post(self, client, *, key: str | None = None, follow=True, **data):
        """Post the form as the browser would: with the key the page rendered into it."""
        if key is None:
            key = _key(client, self.page)
        return client.post(self.action, {**self.data, **data, "form_key": key}, follow=follow)


@pytest.fixture
def viewer(db):
    user = UserFactory()
    fund(user, 10_000)
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def viewer_api(viewer):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")
    return api


@pytest.fixture
def mission(db):
    return make_mission(amount=1_000, title="Speedrun the tutorial blindfolded")


def _forms(mission, viewer) -> dict[str, Form]:
    duration = MissionForm().fields["duration_seconds"].choices[0][0]
    return {
        "pledge": Form(
            "pledge",
            page=f"/missions/{mission.pk}",
            action=f"/missions/{mission.pk}/pledge",
            data={"amount": "500"},
            moved=lambda: Transaction.objects.filter(kind="pledge", actor_id=viewer.pk).count(),
        ),
        "top-up": Form(
            "top-up",
            page="/wallet",
            action="/wallet",
            data={"amount": "2000"},
            moved=lambda: Transaction.objects.filter(kind="topup", actor_id=viewer.pk).count() - 1,  # less `fund`
        ),
        "new mission": Form(
            "new mission",
            page="/missions/new",
            action="/missions/new",
            data={
                "streamer": User.objects.get(pk=mission.streamer_id).username,
                "title": "Beat the game with a dance pad",
                "description": "",
                "amount": "2500",
                "duration_seconds": str(duration),
            },
            moved=lambda: Mission.objects.filter(creator_id=viewer.pk).count(),
        ),
    }


FORMS = ["pledge", "top-up", "new mission"]


@pytest.fixture(params=FORMS)
def form(request, mission, viewer) -> Form:
    return _forms(mission, viewer)[request.param]


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates


# --- the money limit ----------------------------------------------------------------------


class TestMoneyLimit:
    def test_after_120_api_posts_a_page_post_is_refused_with_429_and_nothing_moves(
        self, viewer_client, viewer_api, form
    ):
        statuses = [
            viewer_api.post("/api/wallet/topups", {"amount": 1_000}, format="json").status_code for _ in range(120)
        ]
        assert statuses == [201] * 120  # THROTTLE_MONEY's default, 120/min, all spent
        key = _key(viewer_client, form.page)
        before = _money()

        response = form.post(viewer_client, key=key, follow=False)

        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert _codes(response) == ["throttled"]
        assert "Nothing moved" in response.content.decode()
        assert _money() == before

    def test_after_the_pages_spend_the_limit_the_api_is_refused(self, viewer_client, viewer_api, form, rates):
        rates(money="3/min")
        for amount in ("1000", "1100", "1200"):
            form.post(viewer_client, amount=amount)
        assert form.moved() == 3
        before = _money()

        response = viewer_api.post("/api/wallet/topups", {"amount": 1_000}, format="json")

        assert response.status_code == 429
        assert response.json()["code"] == "throttled"
        assert _money() == before

    def test_pages_and_the_api_draw_on_one_budget(self, viewer_client, viewer_api, mission, viewer, rates):
        rates(money="4/min")
        forms = _forms(mission, viewer)
        viewer_api.post("/api/wallet/topups", {"amount": 1_000}, format="json")
        forms["pledge"].post(viewer_client)
        viewer_api.post(f"/api/missions/{mission.pk}/pledges", {"amount": 100}, format="json")
        forms["top-up"].post(viewer_client)
        before = _money()

        refused = [forms[name].post(viewer_client, follow=False).status_code for name in FORMS]

        assert refused == [429, 429, 429]
        assert _money() == before

    def test_the_limit_is_per_user(self, viewer_client, client, form, rates):
        rates(money="1/min")
        form.post(viewer_client)
        other = UserFactory()
        fund(other, 10_000)
        client.force_login(other)

        response = form.post(client, follow=False)

        assert response.status_code == 302
        assert form.moved() == 1

    def test_viewing_the_pages_is_not_limited(self, viewer_client, form, rates):
        rates(money="1/min")
        form.post(viewer_client)

        assert [viewer_client.get(form.page).status_code for _ in range(3)] == [200] * 3


# --- the one-time key ---------------------------------------------------------------------


class TestDoubleSubmit:
    def test_each_money_form_on_a_page_carries_its_own_key(self, viewer_client, mission):
        for page, forms in ((f"/missions/{mission.pk}", 2), ("/wallet", 2), ("/missions/new", 1)):
            first, second = _form_keys(viewer_client.get(page)), _form_keys(viewer_client.get(page))

            assert len(first) == forms, page
            assert len(set(first + second)) == 2 * forms, page  # a fresh key on every render

    def test_the_same_post_twice_moves_cash_once_and_shows_the_first_result(self, viewer_client, viewer, form):
        key = _key(viewer_client, form.page)
        first = form.post(viewer_client, key=key)
        after_first = _money()

        second = form.post(viewer_client, key=key)

        assert form.moved() == 1
        assert _money() == after_first
        assert second.redirect_chain == first.redirect_chain
        assert second.status_code == 200
        assert _codes(second) == ["already_done"]
        assert IdempotencyRecord.objects.filter(user_id=viewer.pk, key=f"page:{key}").count() == 1

    def test_the_replay_says_what_was_done_the_first_time(self, viewer_client, mission, viewer):
        forms = _forms(mission, viewer)
        key = _key(viewer_client, forms["pledge"].page)
        forms["pledge"].post(viewer_client, key=key)

        response = forms["pledge"].post(viewer_client, key=key)

        assert b"You already sent this pledge: 500 cash, pledged once. Nothing more moved." in response.content
        assert wallet_balance(user_id=viewer.pk) == 9_500

    def test_the_replay_and_the_limit_speak_korean(self, viewer_client, mission, rates):
        rates(money="2/min")
        url, data = f"/missions/{mission.pk}/pledge", {"amount": "500", "form_key": _key(viewer_client, "/wallet")}
        viewer_client.post(url, data, HTTP_ACCEPT_LANGUAGE="ko")

        replay = viewer_client.post(url, data, HTTP_ACCEPT_LANGUAGE="ko", follow=True)
        refused = viewer_client.post(url, data, HTTP_ACCEPT_LANGUAGE="ko")

        assert "이미 보낸 후원이에요. 500 캐시는 한 번만 후원됐고, 더 옮겨진 건 없어요." in replay.content.decode()
        assert refused.status_code == 429
        assert "짧은 시간에 결제가 너무 많아요. 아무것도 옮겨지지 않았어요." in refused.content.decode()

    def test_the_same_key_with_other_values_is_refused_and_moves_nothing(self, viewer_client, form):
        key = _key(viewer_client, form.page)
        form.post(viewer_client, key=key)
        before = _money()

        response = form.post(viewer_client, key=key, amount="1700")

        assert _codes(response) == ["form_reused"]
        assert _money() == before
        assert form.moved() == 1

    @pytest.mark.parametrize(
        "key", ["", "short", "x" * 65, "not a key!!!!!!!!!!!"], ids=["missing", "short", "long", "bad"]
    )
    def test_a_form_without_a_valid_key_is_refused_and_moves_nothing(self, viewer_client, form, key):
        before = _money()

        response = form.post(viewer_client, key=key)

        assert "form_expired" in _codes(response)
        assert b"This form has expired. Nothing moved: please send it again." in response.content
        assert _money() == before
        assert form.moved() == 0

    def test_a_refused_submission_can_be_sent_again_once_fixed(self, viewer_client, viewer, mission):
        pledge = _forms(mission, viewer)["pledge"]
        key = _key(viewer_client, pledge.page)
        pledge.post(viewer_client, key=key, amount="20000")  # more than the wallet holds: nothing stored

        response = pledge.post(viewer_client, key=key, amount="20000")

        assert _codes(response) == ["insufficient_funds"]
        assert pledge.moved() == 0

    def test_page_keys_never_meet_api_keys(self, viewer_client, viewer_api, viewer):
        key = _key(viewer_client, "/wallet")
        api = viewer_api.post("/api/wallet/topups", {"amount": 2_000}, format="json", HTTP_IDEMPOTENCY_KEY=key)

        page = viewer_client.post("/wallet", {"amount": "2000", "form_key": key}, follow=True)

        assert api.status_code == 201
        assert "already_done" not in _codes(page)
        assert b"Added 2,000 cash to your wallet." in page.content
        assert wallet_balance(user_id=viewer.pk) == 14_000
        assert set(IdempotencyRecord.objects.filter(user_id=viewer.pk).values_list("key", flat=True)) == {
            key,
            f"page:{key}",
        }

    def test_one_users_key_is_not_another_users(self, viewer_client, client, mission, viewer):
        pledge = _forms(mission, viewer)["pledge"]
        key = _key(viewer_client, pledge.page)
        pledge.post(viewer_client, key=key)
        other = UserFactory()
        fund(other, 1_000)
        client.force_login(other)

        response = pledge.post(client, key=key)

        assert "already_done" not in _codes(response)
        assert b"You pledged 500 cash." in response.content
        assert wallet_balance(user_id=other.pk) == 500


# --- query counts -------------------------------------------------------------------------


def _statements(client, method: str, url: str, data=None) -> list[str]:
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections["accounts"]) as accounts,
    ):
        response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
    assert response.status_code in (200, 302, 429)
    return [q["sql"] for q in (*default.captured_queries, *accounts.captured_queries)]


def _writes(statements: list[str]) -> list[str]:
    money_tables = ("ledger_", "missions_")
    return [
        s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE") and any(t in s for t in money_tables)
    ]


class TestQueryCounts:
    # The session and the user (accounts), then the replay's look-up of its record (default).
    # No purge (the sweep's), no lock, no posting, no charge.
    def test_a_replayed_form_reads_its_record_and_writes_no_money(self, viewer_client, form):
        key = _key(viewer_client, form.page)
        form.post(viewer_client, key=key)

        statements = _statements(viewer_client, "post", form.action, {**form.data, "form_key": key})

        assert len(statements) == 3, statements
        assert _writes(statements) == []

    def test_a_refused_form_over_the_limit_touches_no_money_table(self, viewer_client, form, rates):
        rates(money="1/min")
        key = _key(viewer_client, form.page)
        form.post(viewer_client)

        statements = _statements(viewer_client, "post", form.action, {**form.data, "form_key": key})

        assert _writes(statements) == []

    def test_the_wallet_page_makes_as_many_queries_for_a_long_history(self, viewer_client, viewer, mission):
        viewer_client.get("/wallet")
        few = len(_statements(viewer_client, "get", "/wallet"))

        for _ in range(25):
            fund(viewer, 1_000)
        many = len(_statements(viewer_client, "get", "/wallet"))

        assert many == few

    def test_the_new_mission_page_makes_a_fixed_number_of_queries(self, viewer_client):
        viewer_client.get("/missions/new")

        # The session and the user on accounts, the wallet's balance on default.
        assert len(_statements(viewer_client, "get", "/missions/new")) == 3
