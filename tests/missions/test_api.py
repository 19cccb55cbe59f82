from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ledger.models import Account, Event, IdempotencyRecord, Notification, Posting, Transaction
from ledger.selectors import escrow_for_mission, system_balance, wallet_balance
from missions.models import Mission
from missions.services import mission_cancel, mission_decide, pledge_create
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases, query_counts

pytestmark = both_databases

MISSIONS = "/api/missions"
MISSION_FIELDS = {
    "id",
    "title",
    "description",
    "streamer",
    "creator",
    "status",
    "is_active",
    "pot",
    "contributor_count",
    "deadline",
    "created_at",
    "decided_at",
    "settled_at",
}
DECISIONS = ["accept", "reject", "success", "fail"]


# --- helpers ---------------------------------------------------------------------------------


def _url(mission_or_id, suffix: str = "") -> str:
    mission_id = getattr(mission_or_id, "pk", mission_or_id)
    return f"{MISSIONS}/{mission_id}{'/' + suffix if suffix else ''}"


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    client.user = user
    return client


def _key(key: str) -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": key}


def _create_body(streamer, /, **overrides) -> dict:
    body = {
        "title": "Clear the boss without healing",
        "description": "Thirty minutes, no potions.",
        "streamer": getattr(streamer, "username", None),
        "amount": 2_500,
        "duration_seconds": 3_600,
    }
    body.update(overrides)
    return body


def _state(*users, mission=None) -> dict:
    """What a refused request must leave as it was: the mission, balances and row counts."""
    state = {
        "balances": [wallet_balance(user_id=u.pk) for u in users],
        "missions": Mission.objects.count(),
        "accounts": Account.objects.count(),
        "transactions": Transaction.objects.count(),
        "postings": Posting.objects.count(),
        "events": Event.objects.count(),
        "notifications": Notification.objects.count(),
        "idempotency_records": IdempotencyRecord.objects.count(),
    }
    if mission is not None:
        state["mission"] = Mission.objects.filter(pk=mission.pk).values().get()
    return state


def _move_deadline_into_the_past(mission) -> None:
    # An hour, not a second: on PostgreSQL the database's now() is the start of the test's
    # transaction, which may be a moment before this line runs.
    Mission.objects.filter(pk=mission.pk).update(deadline=timezone.now() - timedelta(hours=1))


def _end(mission, how: str) -> None:
    """Bring the mission to a terminal status through the services (left unsettled)."""
    if how == "cancel":
        mission_cancel(mission_id=mission.pk, staff_id=UserFactory(is_staff=True).pk)
    else:
        mission_decide(mission_id=mission.pk, user_id=mission.streamer_id, action=how)


# What each list costs on each database, however long it is.
MISSION_LIST_QUERIES = {
    "api_client": {"default": 2, "accounts": 1},
    "auth_client": {"default": 2, "accounts": 2},  # and the JWT's user
}
MISSION_LIST_FILTERED_QUERIES = {"default": 2, "accounts": 2}  # and the streamer by name
PLEDGE_LIST_QUERIES = {"default": 2, "accounts": 1}
EVENT_LIST_QUERIES = {"default": 2, "accounts": 1}


@pytest.fixture
def viewer(db):
    """A signed-in viewer with cash."""
    user = UserFactory()
    fund(user, 100_000)
    return _client_for(user)


@pytest.fixture
def mission(streamer):
    """A pending mission for `streamer`, with a 1,000 first pledge by its creator."""
    return make_mission(streamer=streamer, amount=1_000)


# --- create ----------------------------------------------------------------------------------


class TestMissionCreate:
    def test_creates_a_mission_with_the_creators_amount_as_first_pledge(self, auth_client, streamer):
        fund(auth_client.user, 10_000)

        response = auth_client.post(MISSIONS, _create_body(streamer), format="json")

        assert response.status_code == 201
        body = response.json()
        assert set(body) == MISSION_FIELDS
        assert body["title"] == "Clear the boss without healing"
        assert body["description"] == "Thirty minutes, no potions."
        assert body["streamer"] == streamer.username
        assert body["creator"] == auth_client.user.username
        assert body["status"] == "pending"
        assert body["is_active"] is True
        assert body["pot"] == 2_500
        assert body["contributor_count"] == 1
        assert body["decided_at"] is None
        assert body["settled_at"] is None
        duration = parse_datetime(body["deadline"]) - parse_datetime(body["created_at"])
        assert abs(duration - timedelta(seconds=3_600)) < timedelta(seconds=2)
        assert body["created_at"].endswith("Z")
        mission = Mission.objects.get()
        assert mission.pk == body["id"]
        assert (mission.streamer_id, mission.creator_id) == (streamer.pk, auth_client.user.pk)
        assert wallet_balance(user_id=auth_client.user.pk) == 7_500
        assert escrow_for_mission(mission_id=mission.pk).balance == 2_500

    def test_names_the_streamer_in_any_case(self, auth_client):
        UserFactory(username="Shroud", is_streamer=True)
        fund(auth_client.user, 10_000)

        response = auth_client.post(MISSIONS, _create_body(None, streamer="sHROUD"), format="json")

        assert response.status_code == 201
        assert response.json()["streamer"] == "Shroud"

    @pytest.mark.parametrize("spelling", ["ｓｈｒｏｕｄ", "𝐒𝐡𝐫𝐨𝐮𝐝", "ＳＨＲＯＵＤ"])  # noqa: RUF001
    def test_names_the_streamer_in_any_spelling(self, auth_client, spelling):
        shroud = UserFactory(username="Shroud", is_streamer=True)
        fund(auth_client.user, 10_000)

        response = auth_client.post(MISSIONS, _create_body(None, streamer=spelling), format="json")

        assert response.status_code == 201
        assert response.json()["streamer"] == "Shroud"
        assert Mission.objects.get().streamer_id == shroud.pk

    def test_a_mixed_script_look_alike_is_no_streamer(self, auth_client):
        UserFactory(username="shroud", is_streamer=True)
        fund(auth_client.user, 10_000)

        response = auth_client.post(MISSIONS, _create_body(None, streamer="ѕhroud"), format="json")  # noqa: RUF001 - a Cyrillic s

        assert response.status_code == 400
        assert response.json()["code"] == "streamer_not_found"
        assert not Mission.objects.exists()
        assert wallet_balance(user_id=auth_client.user.pk) == 10_000

    def test_the_description_may_be_left_out(self, auth_client, streamer):
        fund(auth_client.user, 10_000)
        body = _create_body(streamer)
        del body["description"]

        response = auth_client.post(MISSIONS, body, format="json")

        assert response.status_code == 201
        assert response.json()["description"] == ""

    @pytest.mark.parametrize("amount", [100, 1_000_000])
    def test_accepts_the_pledge_limits(self, auth_client, streamer, amount):
        fund(auth_client.user, 1_000_000)

        response = auth_client.post(MISSIONS, _create_body(streamer, amount=amount), format="json")

        assert response.status_code == 201
        assert response.json()["pot"] == amount

    def test_accepts_the_shortest_and_longest_durations(self, auth_client, streamer):
        fund(auth_client.user, 10_000)
        shortest = _create_body(streamer, duration_seconds=settings.MISSIONHUB_MIN_MISSION_SECONDS)
        longest = _create_body(streamer, duration_seconds=settings.MISSIONHUB_MAX_MISSION_SECONDS)

        responses = [auth_client.post(MISSIONS, body, format="json") for body in (shortest, longest)]

        assert [r.status_code for r in responses] == [201, 201]

    def test_appends_a_created_event_and_queues_the_streamers_email(self, auth_client, streamer):
        fund(auth_client.user, 10_000)

        response = auth_client.post(MISSIONS, _create_body(streamer), format="json")

        event = Event.objects.get(mission_id=response.json()["id"])
        assert (event.kind, event.actor_id, event.amount) == ("created", auth_client.user.pk, 2_500)
        notification = Notification.objects.get(mission_id=response.json()["id"])
        assert (notification.user_id, notification.kind) == (streamer.pk, "mission_created")

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("streamer", "nobody", "streamer_not_found"),
            ("streamer", "", "blank"),
            ("title", "", "blank"),
            ("title", "x" * 121, "max_length"),
            ("description", "x" * 2_001, "max_length"),
            ("duration_seconds", 59, "min_value"),
            ("duration_seconds", 7 * 24 * 3600 + 1, "max_value"),
            ("duration_seconds", 0, "min_value"),
            ("duration_seconds", -3_600, "min_value"),
            ("duration_seconds", "an hour", "invalid"),
            ("amount", 0, "min_value"),
            ("amount", -1_000, "min_value"),
            ("amount", 99, "min_value"),
            ("amount", 1_000_001, "max_value"),
            ("amount", 1.5, "invalid"),
            ("amount", 500.0, "invalid"),
            ("amount", "500", "invalid"),
            ("amount", True, "invalid"),
            ("amount", None, "null"),
        ],
    )
    def test_refuses_bad_input_and_writes_nothing(self, auth_client, streamer, field, value, code):
        fund(auth_client.user, 10_000)
        before = _state(auth_client.user, streamer)

        response = auth_client.post(MISSIONS, _create_body(streamer, **{field: value}), format="json")

        assert response.status_code == 400
        assert response.json()["code"] == code
        assert response.json()["errors"][field][0]["code"] == code
        assert _state(auth_client.user, streamer) == before

    def test_the_duration_limits_follow_the_settings(self, auth_client, streamer, settings):
        settings.MISSIONHUB_MIN_MISSION_SECONDS = 600
        settings.MISSIONHUB_MAX_MISSION_SECONDS = 1_200
        fund(auth_client.user, 10_000)

        short = auth_client.post(MISSIONS, _create_body(streamer, duration_seconds=599), format="json")
        long = auth_client.post(MISSIONS, _create_body(streamer, duration_seconds=1_201), format="json")
        fits = auth_client.post(MISSIONS, _create_body(streamer, duration_seconds=600), format="json")

        assert short.json()["errors"]["duration_seconds"][0]["code"] == "min_value"
        assert long.json()["errors"]["duration_seconds"][0]["code"] == "max_value"
        assert fits.status_code == 201

    @pytest.mark.parametrize("missing", ["title", "streamer", "amount", "duration_seconds"])
    def test_refuses_a_missing_field(self, auth_client, streamer, missing):
        fund(auth_client.user, 10_000)
        body = _create_body(streamer)
        del body[missing]
        before = _state(auth_client.user)

        response = auth_client.post(MISSIONS, body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "required"
        assert response.json()["errors"][missing][0]["code"] == "required"
        assert _state(auth_client.user) == before

    def test_refuses_a_user_who_is_not_a_streamer(self, auth_client):
        fund(auth_client.user, 10_000)
        plain = UserFactory(is_streamer=False)
        before = _state(auth_client.user, plain)

        response = auth_client.post(MISSIONS, _create_body(plain), format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "not_a_streamer"
        assert response.json()["errors"]["streamer"][0]["code"] == "not_a_streamer"
        assert _state(auth_client.user, plain) == before

    def test_refuses_an_inactive_streamer(self, auth_client):
        fund(auth_client.user, 10_000)
        gone = UserFactory(is_streamer=True, is_active=False)
        before = _state(auth_client.user)

        response = auth_client.post(MISSIONS, _create_body(gone), format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "streamer_not_found"
        assert _state(auth_client.user) == before

    def test_refuses_a_streamer_creating_a_mission_for_themselves(self, streamer):
        fund(streamer, 10_000)
        client = _client_for(streamer)
        before = _state(streamer)

        response = client.post(MISSIONS, _create_body(streamer), format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "own_mission"
        assert response.json()["errors"]["streamer"][0]["code"] == "own_mission"
        assert _state(streamer) == before

    def test_refuses_an_amount_above_the_creators_cash(self, auth_client, streamer):
        fund(auth_client.user, 2_000)
        before = _state(auth_client.user, streamer)

        response = auth_client.post(MISSIONS, _create_body(streamer, amount=2_001), format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "insufficient_funds"
        assert response.json()["errors"]["amount"][0]["code"] == "insufficient_funds"
        assert _state(auth_client.user, streamer) == before

    def test_refuses_a_creator_without_a_wallet(self, auth_client, streamer):
        before = _state(auth_client.user, streamer)

        response = auth_client.post(MISSIONS, _create_body(streamer, amount=100), format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "insufficient_funds"
        assert _state(auth_client.user, streamer) == before

    def test_needs_a_signed_in_user(self, api_client, streamer):
        before = _state(streamer)

        response = api_client.post(MISSIONS, _create_body(streamer), format="json")

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert _state(streamer) == before


class TestMissionCreateIdempotency:
    def test_replays_the_first_response_and_creates_one_mission(self, auth_client, streamer):
        fund(auth_client.user, 10_000)
        first = auth_client.post(MISSIONS, _create_body(streamer), format="json", **_key("create-1"))
        before = _state(auth_client.user, streamer)

        again = auth_client.post(MISSIONS, _create_body(streamer), format="json", **_key("create-1"))

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _state(auth_client.user, streamer) == before
        assert Mission.objects.count() == 1
        assert wallet_balance(user_id=auth_client.user.pk) == 7_500

    def test_refuses_the_same_key_with_another_body(self, auth_client, streamer):
        fund(auth_client.user, 10_000)
        auth_client.post(MISSIONS, _create_body(streamer), format="json", **_key("create-1"))
        before = _state(auth_client.user, streamer)

        response = auth_client.post(MISSIONS, _create_body(streamer, amount=3_000), format="json", **_key("create-1"))

        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert _state(auth_client.user, streamer) == before

    def test_a_refused_creation_does_not_use_up_its_key(self, auth_client, streamer):
        refused = auth_client.post(MISSIONS, _create_body(streamer), format="json", **_key("create-1"))
        fund(auth_client.user, 10_000)

        retried = auth_client.post(MISSIONS, _create_body(streamer), format="json", **_key("create-1"))

        assert refused.json()["code"] == "insufficient_funds"
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried.headers

    def test_refuses_a_malformed_key(self, auth_client, streamer):
        fund(auth_client.user, 10_000)
        before = _state(auth_client.user)

        response = auth_client.post(MISSIONS, _create_body(streamer), format="json", **_key("k" * 300))

        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_invalid"
        assert _state(auth_client.user) == before


# --- list and detail -------------------------------------------------------------------------


class TestMissionList:
    def test_lists_missions_newest_first_for_anyone(self, api_client):
        missions = [make_mission(title=f"mission {n}") for n in range(3)]

        response = api_client.get(MISSIONS)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 3
        assert [m["id"] for m in body["results"]] == [m.pk for m in reversed(missions)]
        assert all(set(m) == MISSION_FIELDS for m in body["results"])

    def test_shows_usernames_for_streamer_and_creator(self, api_client):
        streamer = UserFactory(username="shroud", is_streamer=True)
        creator = UserFactory(username="ninja")
        fund(creator, 5_000)
        make_mission(streamer=streamer, creator=creator)

        response = api_client.get(MISSIONS)

        result = response.json()["results"][0]
        assert (result["streamer"], result["creator"]) == ("shroud", "ninja")

    def test_pages_through_many_missions(self, api_client):
        streamer = UserFactory(is_streamer=True)
        creator = UserFactory()
        fund(creator, 100_000)
        for _ in range(21):
            make_mission(streamer=streamer, creator=creator, amount=100)

        first = api_client.get(MISSIONS)
        second = api_client.get(first.json()["next"])

        assert first.json()["count"] == 21
        assert len(first.json()["results"]) == 20
        assert first.json()["previous"] is None
        assert len(second.json()["results"]) == 1
        assert second.json()["next"] is None
        assert second.json()["results"][0]["id"] == Mission.objects.order_by("pk").first().pk

    @pytest.mark.parametrize(
        ("query", "titles"),
        [
            ("", ["m4", "m3", "m2", "m1"]),
            ("status=pending", ["m1"]),
            ("status=accepted", ["m2"]),
            ("status=rejected", ["m3"]),
            ("status=succeeded", ["m4"]),
            ("status=failed", []),
            ("streamer=alice", ["m2", "m1"]),
            ("streamer=ALICE", ["m2", "m1"]),
            ("streamer=ａｌｉｃｅ", ["m2", "m1"]),  # noqa: RUF001
            ("creator=𝐗𝐚𝐯𝐢𝐞𝐫", ["m3", "m1"]),  # noqa: RUF001
            ("creator=xavier", ["m3", "m1"]),
            ("streamer=bob&creator=yann", ["m4"]),
            ("active=true", ["m2", "m1"]),
            ("active=false", ["m4", "m3"]),
            ("active=false&streamer=alice", []),
            ("streamer=nobody", []),
            ("creator=nobody", []),
        ],
    )
    def test_filters(self, api_client, query, titles):
        alice = UserFactory(username="alice", is_streamer=True)
        bob = UserFactory(username="bob", is_streamer=True)
        xavier, yann = UserFactory(username="xavier"), UserFactory(username="yann")
        fund(xavier, 10_000)
        fund(yann, 10_000)
        make_mission(title="m1", streamer=alice, creator=xavier)
        m2 = make_mission(title="m2", streamer=alice, creator=yann)
        m3 = make_mission(title="m3", streamer=bob, creator=xavier)
        m4 = make_mission(title="m4", streamer=bob, creator=yann)
        mission_decide(mission_id=m2.pk, user_id=alice.pk, action="accept")
        mission_decide(mission_id=m3.pk, user_id=bob.pk, action="reject")
        mission_decide(mission_id=m4.pk, user_id=bob.pk, action="success")

        response = api_client.get(f"{MISSIONS}?{query}")

        assert response.status_code == 200
        assert [m["title"] for m in response.json()["results"]] == titles
        assert response.json()["count"] == len(titles)

    @pytest.mark.parametrize(
        ("query", "field", "code"),
        [
            ("status=bogus", "status", "invalid_choice"),
            ("active=perhaps", "active", "invalid"),
            (f"streamer={'x' * 151}", "streamer", "max_length"),
        ],
    )
    def test_refuses_a_bad_filter(self, api_client, query, field, code):
        make_mission()

        response = api_client.get(f"{MISSIONS}?{query}")

        assert response.status_code == 400
        assert response.json()["code"] == code
        assert response.json()["errors"][field][0]["code"] == code

    @pytest.mark.parametrize("client_fixture", ["api_client", "auth_client"])
    def test_the_number_of_queries_does_not_grow_with_the_missions(self, request, client_fixture):
        client = request.getfixturevalue(client_fixture)
        for _ in range(2):
            make_mission()
        few = query_counts(lambda: client.get(MISSIONS))
        for _ in range(8):
            make_mission()

        many = query_counts(lambda: client.get(MISSIONS))

        assert len(client.get(MISSIONS).json()["results"]) == 10
        assert few == many == MISSION_LIST_QUERIES[client_fixture]

    def test_the_number_of_queries_does_not_grow_with_the_missions_when_filtered(self, api_client):
        streamer = UserFactory(is_streamer=True)
        make_mission(streamer=streamer)
        few = query_counts(lambda: api_client.get(f"{MISSIONS}?streamer={streamer.username}"))
        for _ in range(9):
            make_mission(streamer=streamer)

        many = query_counts(lambda: api_client.get(f"{MISSIONS}?streamer={streamer.username}"))

        assert few == many == MISSION_LIST_FILTERED_QUERIES


class TestMissionDetail:
    def test_shows_a_mission_to_anyone(self, api_client, mission, streamer):
        response = api_client.get(_url(mission))

        assert response.status_code == 200
        body = response.json()
        assert set(body) == MISSION_FIELDS
        assert body["id"] == mission.pk
        assert body["streamer"] == streamer.username
        assert body["status"] == "pending"
        assert body["is_active"] is True
        assert (body["pot"], body["contributor_count"]) == (1_000, 1)

    def test_answers_404_for_an_unknown_mission(self, api_client):
        response = api_client.get(_url(999_999))

        assert response.status_code == 404
        assert response.json()["code"] == "mission_not_found"

    @pytest.mark.parametrize("method", ["put", "patch", "delete"])
    def test_nobody_edits_or_deletes_a_mission(self, api_client, method):
        creator = UserFactory()
        fund(creator, 5_000)
        mission = make_mission(creator=creator)
        before = _state(creator, mission=mission)

        responses = [
            getattr(client, method)(_url(mission), {"title": "changed", "pot": 1}, format="json")
            for client in (_client_for(creator), api_client)
        ]

        assert [r.status_code for r in responses] == [405, 405]
        assert responses[0].json()["code"] == "method_not_allowed"
        assert _state(creator, mission=mission) == before


# --- pledges ---------------------------------------------------------------------------------


class TestPledge:
    def test_moves_cash_from_the_wallet_into_the_pot(self, viewer, mission):
        response = viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json")

        assert response.status_code == 201
        body = response.json()
        assert body == {"id": body["id"], "amount": 700, "pot": 1_700, "balance": 99_300}
        assert Transaction.objects.filter(pk=body["id"], kind="pledge", actor_id=viewer.user.pk).exists()
        mission.refresh_from_db()
        assert (mission.pot, mission.contributor_count) == (1_700, 2)
        assert escrow_for_mission(mission_id=mission.pk).balance == 1_700
        assert wallet_balance(user_id=viewer.user.pk) == 99_300
        event = Event.objects.filter(mission_id=mission.pk).order_by("pk").last()
        assert (event.kind, event.actor_id, event.amount) == ("pledged", viewer.user.pk, 700)

    def test_a_second_pledge_by_the_same_user_does_not_add_a_contributor(self, viewer, mission):
        viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json")

        response = viewer.post(_url(mission, "pledges"), {"amount": 300}, format="json")

        assert response.json()["pot"] == 2_000
        mission.refresh_from_db()
        assert (mission.pot, mission.contributor_count) == (2_000, 2)

    def test_the_creator_pledging_again_is_not_a_new_contributor(self, streamer):
        creator = UserFactory()
        fund(creator, 5_000)
        mission = make_mission(streamer=streamer, creator=creator)

        response = _client_for(creator).post(_url(mission, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 201
        mission.refresh_from_db()
        assert (mission.pot, mission.contributor_count) == (1_500, 1)

    def test_an_accepted_mission_takes_pledges(self, viewer, mission, streamer):
        mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="accept")

        response = viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json")

        assert response.status_code == 201

    @pytest.mark.parametrize("amount", [100, 1_000_000])
    def test_accepts_the_pledge_limits(self, mission, amount):
        user = UserFactory()
        fund(user, 1_000_000)

        response = _client_for(user).post(_url(mission, "pledges"), {"amount": amount}, format="json")

        assert response.status_code == 201

    def test_refuses_a_pledge_by_the_missions_streamer(self, mission, streamer):
        fund(streamer, 10_000)
        before = _state(streamer, mission=mission)

        response = _client_for(streamer).post(_url(mission, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 403
        assert response.json()["code"] == "streamer_cannot_pledge"
        assert _state(streamer, mission=mission) == before

    def test_another_streamer_may_pledge(self, mission):
        other = UserFactory(is_streamer=True)
        fund(other, 10_000)

        response = _client_for(other).post(_url(mission, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 201

    def test_refuses_a_pledge_after_the_deadline(self, viewer, mission):
        _move_deadline_into_the_past(mission)
        before = _state(viewer.user, mission=mission)

        response = viewer.post(_url(mission, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "mission_closed"
        assert _state(viewer.user, mission=mission) == before

    @pytest.mark.parametrize("how", ["reject", "success", "fail", "cancel"])
    def test_refuses_a_pledge_on_an_ended_mission(self, viewer, mission, how):
        _end(mission, how)
        before = _state(viewer.user, mission=mission)

        response = viewer.post(_url(mission, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "mission_closed"
        assert _state(viewer.user, mission=mission) == before

    def test_refuses_a_pledge_above_the_users_cash(self, mission):
        user = UserFactory()
        fund(user, 1_000)
        before = _state(user, mission=mission)

        response = _client_for(user).post(_url(mission, "pledges"), {"amount": 1_001}, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "insufficient_funds"
        assert response.json()["errors"]["amount"][0]["code"] == "insufficient_funds"
        assert _state(user, mission=mission) == before

    def test_refuses_a_pledge_from_a_user_without_a_wallet(self, auth_client, mission):
        before = _state(auth_client.user, mission=mission)

        response = auth_client.post(_url(mission, "pledges"), {"amount": 100}, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "insufficient_funds"
        assert _state(auth_client.user, mission=mission) == before

    @pytest.mark.parametrize(
        ("amount", "code"),
        [
            (0, "min_value"),
            (-500, "min_value"),
            (99, "min_value"),
            (1_000_001, "max_value"),
            (1.5, "invalid"),
            (500.0, "invalid"),
            ("500", "invalid"),
            (True, "invalid"),
            (None, "null"),
        ],
    )
    def test_refuses_a_bad_amount(self, viewer, mission, amount, code):
        before = _state(viewer.user, mission=mission)

        response = viewer.post(_url(mission, "pledges"), {"amount": amount}, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == code
        assert response.json()["errors"]["amount"][0]["code"] == code
        assert _state(viewer.user, mission=mission) == before

    def test_refuses_a_missing_amount(self, viewer, mission):
        before = _state(viewer.user, mission=mission)

        response = viewer.post(_url(mission, "pledges"), {}, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "required"
        assert _state(viewer.user, mission=mission) == before

    def test_answers_404_for_an_unknown_mission(self, viewer):
        before = _state(viewer.user)

        response = viewer.post(_url(999_999, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 404
        assert response.json()["code"] == "mission_not_found"
        assert _state(viewer.user) == before

    def test_needs_a_signed_in_user(self, api_client, mission):
        before = _state(mission=mission)

        response = api_client.post(_url(mission, "pledges"), {"amount": 500}, format="json")

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert _state(mission=mission) == before


class TestPledgeIdempotency:
    def test_replays_the_first_response_and_moves_cash_once(self, viewer, mission):
        first = viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))
        before = _state(viewer.user, mission=mission)

        again = viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _state(viewer.user, mission=mission) == before
        assert wallet_balance(user_id=viewer.user.pk) == 99_300

    def test_refuses_the_same_key_with_another_amount(self, viewer, mission):
        viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))
        before = _state(viewer.user, mission=mission)

        response = viewer.post(_url(mission, "pledges"), {"amount": 800}, format="json", **_key("pledge-1"))

        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert _state(viewer.user, mission=mission) == before

    def test_refuses_the_same_key_on_another_mission(self, viewer, mission):
        other = make_mission()
        viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))
        before = _state(viewer.user, mission=other)

        response = viewer.post(_url(other, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))

        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert _state(viewer.user, mission=other) == before

    def test_another_user_may_use_the_same_key(self, viewer, mission):
        other = UserFactory()
        fund(other, 5_000)
        viewer.post(_url(mission, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))

        response = _client_for(other).post(_url(mission, "pledges"), {"amount": 700}, format="json", **_key("pledge-1"))

        assert response.status_code == 201
        assert response.json()["pot"] == 2_400


class TestContributors:
    def test_lists_each_contributors_total_biggest_first(self, api_client, streamer):
        creator = UserFactory(username="creator")
        fund(creator, 5_000)
        mission = make_mission(streamer=streamer, creator=creator, amount=1_000)
        big, small = UserFactory(username="big"), UserFactory(username="small")
        for user in (big, small):
            fund(user, 5_000)
        pledge_create(mission_id=mission.pk, user_id=small.pk, amount=500)
        pledge_create(mission_id=mission.pk, user_id=big.pk, amount=300)
        pledge_create(mission_id=mission.pk, user_id=big.pk, amount=900)

        response = api_client.get(_url(mission, "pledges"))

        assert response.status_code == 200
        assert response.json() == [
            {"username": "big", "amount": 1_200},
            {"username": "creator", "amount": 1_000},
            {"username": "small", "amount": 500},
        ]

    def test_answers_404_for_an_unknown_mission(self, api_client):
        response = api_client.get(_url(999_999, "pledges"))

        assert response.status_code == 404
        assert response.json()["code"] == "mission_not_found"

    def test_the_number_of_queries_does_not_grow_with_the_contributors(self, api_client, mission):
        few = query_counts(lambda: api_client.get(_url(mission, "pledges")))
        for _ in range(8):
            user = UserFactory()
            fund(user, 1_000)
            pledge_create(mission_id=mission.pk, user_id=user.pk, amount=100)

        many = query_counts(lambda: api_client.get(_url(mission, "pledges")))

        assert few == many == PLEDGE_LIST_QUERIES


# --- decisions -------------------------------------------------------------------------------


class TestDecide:
    @pytest.mark.parametrize(
        ("first", "action", "status"),
        [
            (None, "accept", "accepted"),
            (None, "reject", "rejected"),
            (None, "success", "succeeded"),
            ("accept", "success", "succeeded"),
            (None, "fail", "failed"),
            ("accept", "fail", "failed"),
        ],
    )
    def test_moves_the_mission_along(self, mission, streamer, first, action, status):
        client = _client_for(streamer)
        if first:
            client.post(_url(mission, first))

        response = client.post(_url(mission, action))

        assert response.status_code == 200
        body = response.json()
        assert set(body) == MISSION_FIELDS
        assert body["status"] == status
        terminal = status != "accepted"
        assert body["is_active"] is not terminal
        assert (body["decided_at"] is not None) is terminal
        assert body["settled_at"] is None
        mission.refresh_from_db()
        assert mission.status == status

    @pytest.mark.parametrize("action", DECISIONS)
    @pytest.mark.parametrize("who", ["another streamer", "a viewer", "the creator"])
    def test_only_the_missions_streamer_decides(self, streamer, who, action):
        creator = UserFactory()
        fund(creator, 5_000)
        mission = make_mission(streamer=streamer, creator=creator)
        user = {
            "another streamer": UserFactory(is_streamer=True),
            "a viewer": UserFactory(),
            "the creator": creator,
        }[who]
        before = _state(creator, mission=mission)

        response = _client_for(user).post(_url(mission, action))

        assert response.status_code == 403
        assert response.json()["code"] == "not_mission_streamer"
        assert _state(creator, mission=mission) == before

    @pytest.mark.parametrize("action", DECISIONS)
    def test_needs_a_signed_in_user(self, api_client, mission, action):
        before = _state(mission=mission)

        response = api_client.post(_url(mission, action))

        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert _state(mission=mission) == before

    @pytest.mark.parametrize("action", ["accept", "reject"])
    def test_refuses_an_invalid_transition(self, mission, streamer, action):
        client = _client_for(streamer)
        client.post(_url(mission, "accept"))
        before = _state(mission=mission)

        response = client.post(_url(mission, action))

        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        assert _state(mission=mission) == before

    @pytest.mark.parametrize("action", DECISIONS)
    @pytest.mark.parametrize("how", ["reject", "success", "fail", "cancel"])
    def test_refuses_any_decision_on_an_ended_mission(self, mission, streamer, how, action):
        _end(mission, how)
        before = _state(mission=mission)

        response = _client_for(streamer).post(_url(mission, action))

        assert response.status_code == 409
        assert response.json()["code"] == "mission_closed"
        assert _state(mission=mission) == before

    @pytest.mark.parametrize("action", DECISIONS)
    @pytest.mark.parametrize("accepted", [False, True])
    def test_refuses_a_decision_after_the_deadline(self, mission, streamer, action, accepted):
        client = _client_for(streamer)
        if accepted:
            client.post(_url(mission, "accept"))
        _move_deadline_into_the_past(mission)
        before = _state(mission=mission)

        response = client.post(_url(mission, action))

        assert response.status_code == 409
        assert response.json()["code"] == "mission_closed"
        assert _state(mission=mission) == before

    @pytest.mark.parametrize("action", DECISIONS)
    def test_answers_404_for_an_unknown_mission(self, streamer, action):
        response = _client_for(streamer).post(_url(999_999, action))

        assert response.status_code == 404
        assert response.json()["code"] == "mission_not_found"

    @pytest.mark.parametrize("action", DECISIONS)
    def test_a_decision_only_takes_post(self, mission, streamer, action):
        response = _client_for(streamer).get(_url(mission, action))

        assert response.status_code == 405


# --- events ----------------------------------------------------------------------------------


class TestEvents:
    def test_shows_the_timeline_in_order(self, api_client, streamer, task_queue, django_capture_on_commit_callbacks):
        creator, backer = UserFactory(username="creator"), UserFactory(username="backer")
        fund(creator, 5_000)
        fund(backer, 5_000)
        mission = make_mission(streamer=streamer, creator=creator, amount=1_000)
        _client_for(backer).post(_url(mission, "pledges"), {"amount": 500}, format="json")
        _client_for(streamer).post(_url(mission, "accept"))
        with django_capture_on_commit_callbacks(execute=True):
            _client_for(streamer).post(_url(mission, "success"))
        task_queue.run_all()

        response = api_client.get(_url(mission, "events"))

        assert response.status_code == 200
        events = response.json()
        assert [(e["kind"], e["actor"], e["amount"]) for e in events] == [
            ("created", "creator", 1_000),
            ("pledged", "backer", 500),
            ("accepted", streamer.username, None),
            ("succeeded", streamer.username, 1_500),
            ("settled", None, 1_500),
        ]
        assert all(set(e) == {"id", "kind", "actor", "amount", "created_at"} for e in events)
        assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    def test_answers_404_for_an_unknown_mission(self, api_client):
        response = api_client.get(_url(999_999, "events"))

        assert response.status_code == 404
        assert response.json()["code"] == "mission_not_found"

    def test_the_number_of_queries_does_not_grow_with_the_events(self, api_client, mission):
        few = query_counts(lambda: api_client.get(_url(mission, "events")))
        for _ in range(8):
            user = UserFactory()
            fund(user, 1_000)
            pledge_create(mission_id=mission.pk, user_id=user.pk, amount=100)

        many = query_counts(lambda: api_client.get(_url(mission, "events")))

        assert few == many == EVENT_LIST_QUERIES


# --- settlement ------------------------------------------------------------------------------


@pytest.fixture
def backers(db):
    """Two viewers with 10,000 each."""
    users = [UserFactory(username="backer_one"), UserFactory(username="backer_two")]
    for user in users:
        fund(user, 10_000)
    return users


@pytest.fixture
def funded_mission(streamer, backers, task_queue, django_capture_on_commit_callbacks):
    """Created over the API by the first backer (2,500) with its streamer's email sent;
    the second backer pledges 1,000 twice, the first 500 more: a pot of 5,000."""
    one, two = (_client_for(user) for user in backers)
    with django_capture_on_commit_callbacks(execute=True):
        created = one.post(MISSIONS, _create_body(streamer, amount=2_500), format="json")
    mission_id = created.json()["id"]
    two.post(_url(mission_id, "pledges"), {"amount": 1_000}, format="json")
    two.post(_url(mission_id, "pledges"), {"amount": 1_000}, format="json")
    one.post(_url(mission_id, "pledges"), {"amount": 500}, format="json")
    task_queue.run_all()
    return Mission.objects.get(pk=mission_id)


def _emails_to(address: str) -> list:
    return [message for message in mail.outbox if message.to == [address]]


class TestSettlement:
    def test_creation_emails_the_streamer(self, funded_mission, streamer):
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == [streamer.email]
        assert "2,500" in message.subject
        assert funded_mission.title in message.body

    def test_success_pays_the_pot_to_the_streamer(
        self, funded_mission, streamer, backers, task_queue, django_capture_on_commit_callbacks
    ):
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            response = _client_for(streamer).post(_url(funded_mission, "success"))
        task_queue.run_all()

        assert response.status_code == 200
        assert wallet_balance(user_id=streamer.pk) == 5_000
        assert [wallet_balance(user_id=u.pk) for u in backers] == [7_000, 8_000]
        assert escrow_for_mission(mission_id=funded_mission.pk).balance == 0
        assert Transaction.objects.filter(mission_id=funded_mission.pk, kind="payout").count() == 1
        funded_mission.refresh_from_db()
        assert funded_mission.settled_at is not None
        assert Event.objects.filter(mission_id=funded_mission.pk, kind="settled").count() == 1
        detail = _client_for(streamer).get(_url(funded_mission)).json()
        assert (detail["status"], detail["is_active"]) == ("succeeded", False)
        assert detail["settled_at"] is not None

    def test_success_emails_the_streamer_and_every_contributor(
        self, funded_mission, streamer, backers, task_queue, django_capture_on_commit_callbacks
    ):
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            _client_for(streamer).post(_url(funded_mission, "success"))
        task_queue.run_all()

        assert len(mail.outbox) == 3
        payout = _emails_to(streamer.email)
        assert len(payout) == 1
        assert "5,000" in payout[0].subject
        assert "5,000" in payout[0].body
        for user in backers:
            (result,) = _emails_to(user.email)
            assert funded_mission.title in result.subject
            assert "5,000" in result.body
        assert not Notification.objects.filter(mission_id=funded_mission.pk, sent_at__isnull=True).exists()

    def test_a_fee_goes_to_the_fees_account(
        self, settings, funded_mission, streamer, task_queue, django_capture_on_commit_callbacks
    ):
        settings.MISSIONHUB_FEE_BPS = 250
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            _client_for(streamer).post(_url(funded_mission, "success"))
        task_queue.run_all()

        assert system_balance(kind=Account.Kind.FEES) == 125
        assert wallet_balance(user_id=streamer.pk) == 4_875
        assert escrow_for_mission(mission_id=funded_mission.pk).balance == 0
        (payout,) = _emails_to(streamer.email)
        assert "4,875" in payout.body

    @pytest.mark.parametrize("action", ["reject", "fail"])
    def test_refunds_every_contributor_what_they_put_in(
        self, funded_mission, streamer, backers, task_queue, django_capture_on_commit_callbacks, action
    ):
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            response = _client_for(streamer).post(_url(funded_mission, action))
        task_queue.run_all()

        assert response.status_code == 200
        assert [wallet_balance(user_id=u.pk) for u in backers] == [10_000, 10_000]
        assert wallet_balance(user_id=streamer.pk) == 0
        assert escrow_for_mission(mission_id=funded_mission.pk).balance == 0
        refund = Transaction.objects.get(mission_id=funded_mission.pk, kind="refund")
        assert sorted(refund.postings.values_list("amount", flat=True)) == [-5_000, 2_000, 3_000]
        funded_mission.refresh_from_db()
        assert funded_mission.settled_at is not None
        assert Event.objects.filter(mission_id=funded_mission.pk, kind="settled").exists()

    @pytest.mark.parametrize("action", ["reject", "fail"])
    def test_emails_every_contributor_their_refund(
        self, funded_mission, streamer, backers, task_queue, django_capture_on_commit_callbacks, action
    ):
        mail.outbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            _client_for(streamer).post(_url(funded_mission, action))
        task_queue.run_all()

        assert len(mail.outbox) == 2
        assert not _emails_to(streamer.email)
        for user, refunded in zip(backers, ["3,000", "2,000"], strict=True):
            (message,) = _emails_to(user.email)
            assert "refunded" in message.subject
            assert f"{refunded} cash" in message.body

    def test_settles_once_however_often_the_task_runs(
        self, funded_mission, streamer, backers, task_queue, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            _client_for(streamer).post(_url(funded_mission, "fail"))
        task_queue.sent.append(("missions.settle_mission", {"mission_id": funded_mission.pk}))
        task_queue.sent.append(("missions.settle_mission", {"mission_id": funded_mission.pk}))

        task_queue.run_all()

        assert [wallet_balance(user_id=u.pk) for u in backers] == [10_000, 10_000]
        assert Transaction.objects.filter(mission_id=funded_mission.pk, kind="refund").count() == 1
        assert Event.objects.filter(mission_id=funded_mission.pk, kind="settled").count() == 1

    def test_a_decision_queues_settlement_only_after_commit(
        self, funded_mission, streamer, task_queue, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            _client_for(streamer).post(_url(funded_mission, "success"))

        assert task_queue.sent == []
        assert len(callbacks) == 1
        for callback in callbacks:
            callback()
        assert task_queue.names() == ["missions.settle_mission"]


# --- schema ----------------------------------------------------------------------------------


CONTRACT_PATHS = {
    "/api/auth/register": {"post"},
    "/api/auth/token": {"post"},
    "/api/auth/token/refresh": {"post"},
    "/api/auth/logout": {"post"},
    "/api/users/me": {"get"},
    "/api/users/{username}": {"get"},
    "/api/wallet": {"get"},
    "/api/wallet/topups": {"post"},
    "/api/wallet/transactions": {"get"},
    "/api/missions": {"get", "post"},
    "/api/missions/{mission_id}": {"get"},
    "/api/missions/{mission_id}/pledges": {"get", "post"},
    "/api/missions/{mission_id}/accept": {"post"},
    "/api/missions/{mission_id}/reject": {"post"},
    "/api/missions/{mission_id}/success": {"post"},
    "/api/missions/{mission_id}/fail": {"post"},
    "/api/missions/{mission_id}/events": {"get"},
}


class TestSchema:
    def test_describes_every_path_of_the_contract(self, api_client):
        response = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")

        assert response.status_code == 200
        schema = response.json()
        assert schema["openapi"].startswith("3.")
        paths = schema["paths"]
        assert set(CONTRACT_PATHS) <= set(paths)
        for path, methods in CONTRACT_PATHS.items():
            assert methods <= set(paths[path]), path
        assert not [path for path in paths if path.endswith("/")]

    def test_serves_the_swagger_ui(self, api_client):
        response = api_client.get("/api/docs")

        assert response.status_code == 200
        assert b"swagger" in response.content.lower()
