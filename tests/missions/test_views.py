"""The server-rendered pages, through Django's test client: permissions, the plain-form
(no JavaScript) paths, htmx partials, the overlay, the channel, the home list, query
counts and the error pages."""

import re
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from accounts.models import User
from ledger.models import Account, Event, Posting, Transaction
from ledger.selectors import wallet_balance
from ledger.verify import CHECKS
from missions import services
from missions.forms import MissionForm, one_time_key
from missions.ledger_checks import ledger_check_run
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases, query_counts

pytestmark = both_databases


# --- helpers ------------------------------------------------------------------------------


def _codes(response) -> list[str]:
    """The codes of the messages on the page (the base template's `data-code`)."""
    return re.findall(r'data-code="([^"]*)"', response.content.decode())


def _field_errors(response, field: str) -> list[str]:
    """The errors shown inside the form field's own block (next to its input)."""
    blocks = response.content.decode().split('<div class="field')
    block = next(b for b in blocks if f'name="{field}"' in b)
    return re.findall(r'<p class="error">(.*?)</p>', block, flags=re.DOTALL)


def _ledger_rows() -> tuple[int, int, int]:
    return Transaction.objects.count(), Posting.objects.count(), Event.objects.count()


def _past_deadline(mission: Mission) -> None:
    Mission.objects.filter(pk=mission.pk).update(deadline=timezone.now() - timedelta(seconds=1))


def _duration() -> int:
    """A duration the new-mission form offers."""
    return MissionForm().fields["duration_seconds"].choices[0][0]


def _queries(client, url: str) -> dict[str, int]:
    """How many queries one GET makes on each database."""
    return query_counts(lambda: client.get(url))


def _positions(content: bytes, titles: list[str]) -> list[str]:
    """The titles found on the page, in the order they appear."""
    text = content.decode()
    found = [title for title in titles if title in text]
    return sorted(found, key=text.index)


@pytest.fixture
def mission(streamer):
    """A pending mission of `streamer` with a 1,000 pot from its creator."""
    return make_mission(streamer=streamer, amount=1_000, title="Speedrun the tutorial blindfolded")


@pytest.fixture
def viewer(db):
    """A signed-up viewer (not a streamer) with 10,000 cash."""
    user = UserFactory()
    fund(user, 10_000)
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def streamer_client(client, streamer):
    client.force_login(streamer)
    return client


# --- permissions --------------------------------------------------------------------------


class TestPermissions:
    def test_a_viewer_is_sent_home_from_the_dashboard_with_a_message(self, viewer_client):
        response = viewer_client.get("/dashboard", follow=True)

        assert response.redirect_chain == [("/", 302)]
        assert b"The dashboard is for streamers." in response.content
        assert b'class="message info"' in response.content

    def test_a_viewer_cannot_decide_someone_elses_mission(self, viewer_client, mission):
        events = Event.objects.filter(mission_id=mission.pk).count()

        response = viewer_client.post(
            f"/missions/{mission.pk}/decide", {"action": "success", "next": f"/missions/{mission.pk}"}, follow=True
        )

        assert response.status_code == 200
        assert "not_mission_streamer" in _codes(response)
        mission.refresh_from_db()
        assert mission.status == Mission.Status.PENDING
        assert Event.objects.filter(mission_id=mission.pk).count() == events

    def test_a_streamer_cannot_decide_another_streamers_mission(self, client, mission):
        other = UserFactory(is_streamer=True)
        client.force_login(other)
        events = Event.objects.filter(mission_id=mission.pk).count()

        response = client.post(
            f"/missions/{mission.pk}/decide", {"action": "success", "next": "/dashboard"}, follow=True
        )

        assert response.redirect_chain == [("/dashboard", 302)]
        assert "not_mission_streamer" in _codes(response)
        mission.refresh_from_db()
        assert mission.status == Mission.Status.PENDING
        assert Event.objects.filter(mission_id=mission.pk).count() == events

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/wallet"),
            ("get", "/missions/new"),
            ("get", "/dashboard"),
            ("post", "/wallet"),
            ("post", "/missions/new"),
            ("post", "/missions/{id}/pledge"),
            ("post", "/missions/{id}/decide"),
        ],
    )
    def test_anonymous_users_are_sent_to_sign_in(self, client, mission, method, path):
        path = path.format(id=mission.pk)
        rows = _ledger_rows()

        response = getattr(client, method)(path, {"amount": "500", "action": "success"} if method == "post" else {})

        assert response.status_code == 302
        assert response.url == f"/login?next={path}"
        assert _ledger_rows() == rows
        assert Mission.objects.get(pk=mission.pk).status == Mission.Status.PENDING

    @pytest.mark.parametrize("who", ["anonymous", "viewer", "creator", "another streamer"])
    def test_the_mission_page_shows_no_decision_buttons_but_to_its_streamer(self, client, mission, who):
        if who == "viewer":
            client.force_login(UserFactory())
        elif who == "creator":
            client.force_login(User.objects.get(pk=mission.creator_id))
        elif who == "another streamer":
            client.force_login(UserFactory(is_streamer=True))

        response = client.get(f"/missions/{mission.pk}")

        assert response.status_code == 200
        assert b"/decide" not in response.content
        assert b'name="action"' not in response.content

    def test_the_streamer_sees_the_decision_buttons_on_their_mission(self, streamer_client, mission):
        response = streamer_client.get(f"/missions/{mission.pk}")

        assert f'action="/missions/{mission.pk}/decide"'.encode() in response.content
        for action in ("accept", "reject", "success", "fail"):
            assert f'name="action" value="{action}"'.encode() in response.content

    def test_the_streamer_sees_no_pledge_form_on_their_own_mission(self, streamer_client, mission):
        response = streamer_client.get(f"/missions/{mission.pk}")

        assert response.status_code == 200
        assert f'action="/missions/{mission.pk}/pledge"'.encode() not in response.content
        assert b'name="amount"' not in response.content

    def test_a_viewer_sees_the_pledge_form(self, viewer_client, mission):
        response = viewer_client.get(f"/missions/{mission.pk}")

        assert f'action="/missions/{mission.pk}/pledge"'.encode() in response.content
        assert b'name="amount" value="500"' in response.content
        assert b"csrfmiddlewaretoken" in response.content


class TestMonitoringPage:
    def test_a_non_staff_user_is_sent_to_the_admin_login(self, viewer_client):
        response = viewer_client.get("/staff/monitoring")

        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")

    def test_an_anonymous_user_is_sent_to_the_admin_login(self, client):
        response = client.get("/staff/monitoring")

        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")

    def test_shows_the_summary_to_staff(self, client, streamer):
        make_mission(streamer=streamer)
        make_mission(streamer=streamer)
        ended = make_mission(streamer=streamer)
        services.mission_decide(mission_id=ended.pk, user_id=streamer.pk, action="fail")
        client.force_login(UserFactory(is_staff=True))

        response = client.get("/staff/monitoring")

        assert response.status_code == 200
        assert b"<dt>Open now</dt><dd>2</dd>" in response.content
        assert b'<dt>Ended, not yet settled</dt><dd class="warn">1</dd>' in response.content
        assert b'action="/staff/monitoring/ledger-check"' in response.content
        assert b'<li class="ok">' not in response.content  # no ledger check has run yet

    def test_shows_the_stored_ledger_check(self, client, mission):
        ledger_check_run()
        client.force_login(UserFactory(is_staff=True))

        response = client.get("/staff/monitoring")

        assert response.status_code == 200
        for name in CHECKS:
            assert f'<li class="ok">{escape(name)}</li>'.encode() in response.content


# --- the no-JavaScript form paths ---------------------------------------------------------


class TestPledgeForm:
    def test_pledges_a_quick_amount(self, viewer_client, viewer, mission):
        response = viewer_client.post(
            f"/missions/{mission.pk}/pledge", {"amount": "500", "form_key": one_time_key()}, follow=True
        )

        assert response.redirect_chain == [(f"/missions/{mission.pk}", 302)]
        assert b"You pledged 500 cash. The pot is now 1,500." in response.content
        assert b'data-testid="pot">1,500<' in response.content
        mission.refresh_from_db()
        assert (mission.pot, mission.contributor_count) == (1_500, 2)
        assert wallet_balance(user_id=viewer.pk) == 9_500
        assert Event.objects.filter(mission_id=mission.pk, kind="pledged", actor_id=viewer.pk, amount=500).exists()

    def test_pledges_the_amount_typed_in_the_field(self, viewer_client, viewer, mission):
        response = viewer_client.post(
            f"/missions/{mission.pk}/pledge", {"amount": "1234", "form_key": one_time_key()}, follow=True
        )

        assert response.status_code == 200
        assert b"You pledged 1,234 cash. The pot is now 2,234." in response.content
        mission.refresh_from_db()
        assert mission.pot == 2_234
        assert wallet_balance(user_id=viewer.pk) == 10_000 - 1_234

    def test_refuses_more_than_the_wallet_holds_and_links_to_the_wallet(self, viewer_client, viewer, mission):
        rows = _ledger_rows()

        response = viewer_client.post(
            f"/missions/{mission.pk}/pledge", {"amount": "10001", "form_key": one_time_key()}, follow=True
        )

        assert response.status_code == 200
        assert _codes(response) == ["insufficient_funds"]
        assert b'<a href="/wallet">Top up your wallet</a>' in response.content
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=viewer.pk) == 10_000
        mission.refresh_from_db()
        assert mission.pot == 1_000

    @pytest.mark.parametrize("amount", ["0", "abc", "-500", ""])
    def test_refuses_an_invalid_amount(self, viewer_client, viewer, mission, amount):
        rows = _ledger_rows()

        response = viewer_client.post(
            f"/missions/{mission.pk}/pledge", {"amount": amount, "form_key": one_time_key()}, follow=True
        )

        assert response.redirect_chain == [(f"/missions/{mission.pk}", 302)]
        assert _codes(response) == ["invalid_amount"]
        assert b'class="message error"' in response.content
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=viewer.pk) == 10_000
        mission.refresh_from_db()
        assert mission.pot == 1_000

    @pytest.mark.parametrize("closing", ["decided", "past its deadline"])
    def test_refuses_a_pledge_on_a_closed_mission(self, viewer_client, viewer, streamer, mission, closing):
        if closing == "decided":
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
        else:
            _past_deadline(mission)
        rows = _ledger_rows()

        response = viewer_client.post(
            f"/missions/{mission.pk}/pledge", {"amount": "500", "form_key": one_time_key()}, follow=True
        )

        assert response.status_code == 200
        assert _codes(response) == ["mission_closed"]
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=viewer.pk) == 10_000

    def test_the_streamer_cannot_pledge_on_their_own_mission(self, client, streamer, mission):
        fund(streamer, 10_000)
        client.force_login(streamer)
        rows = _ledger_rows()

        response = client.post(
            f"/missions/{mission.pk}/pledge", {"amount": "500", "form_key": one_time_key()}, follow=True
        )

        assert _codes(response) == ["streamer_cannot_pledge"]
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=streamer.pk) == 10_000

    def test_a_pledge_on_an_unknown_mission_moves_nothing_and_ends_on_the_404_page(self, viewer_client, viewer):
        rows = _ledger_rows()

        response = viewer_client.post(
            "/missions/999999/pledge", {"amount": "500", "form_key": one_time_key()}, follow=True
        )

        assert response.status_code == 404
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=viewer.pk) == 10_000


class TestDecisionButtons:
    @pytest.mark.parametrize(
        ("action", "status"),
        [
            ("accept", Mission.Status.ACCEPTED),
            ("reject", Mission.Status.REJECTED),
            ("success", Mission.Status.SUCCEEDED),
            ("fail", Mission.Status.FAILED),
        ],
    )
    def test_change_the_status_and_append_the_event(
        self, streamer_client, mission, task_queue, django_capture_on_commit_callbacks, action, status
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = streamer_client.post(
                f"/missions/{mission.pk}/decide", {"action": action, "next": "/dashboard"}, follow=True
            )
        task_queue.run_all()

        assert response.redirect_chain == [("/dashboard", 302)]
        assert b'class="message success"' in response.content
        mission.refresh_from_db()
        assert mission.status == status
        assert Event.objects.filter(mission_id=mission.pk, kind=status.value).count() == 1
        assert (mission.settled_at is None) == (status == Mission.Status.ACCEPTED)

    def test_success_pays_the_pot_to_the_streamer(
        self, streamer_client, streamer, mission, task_queue, django_capture_on_commit_callbacks, settings
    ):
        settings.MISSIONHUB_FEE_BPS = 0

        with django_capture_on_commit_callbacks(execute=True):
            streamer_client.post(f"/missions/{mission.pk}/decide", {"action": "success", "next": "/dashboard"})
        task_queue.run_all()

        assert wallet_balance(user_id=streamer.pk) == 1_000
        assert Event.objects.filter(mission_id=mission.pk, kind="settled").exists()

    def test_fail_refunds_the_creator(self, streamer_client, mission, task_queue, django_capture_on_commit_callbacks):
        creator_balance = wallet_balance(user_id=mission.creator_id)

        with django_capture_on_commit_callbacks(execute=True):
            streamer_client.post(f"/missions/{mission.pk}/decide", {"action": "fail", "next": "/dashboard"})
        task_queue.run_all()

        assert wallet_balance(user_id=mission.creator_id) == creator_balance + 1_000

    def test_go_back_to_the_mission_page_when_asked(self, streamer_client, mission):
        response = streamer_client.post(
            f"/missions/{mission.pk}/decide", {"action": "accept", "next": f"/missions/{mission.pk}"}
        )

        assert response.status_code == 302
        assert response.url == f"/missions/{mission.pk}"

    @pytest.mark.parametrize(
        "next_url", ["https://evil.example/", "//evil.example/", "http://testserver/wallet", "/wallet", ""]
    )
    def test_an_invalid_next_goes_to_the_dashboard(self, streamer_client, mission, next_url):
        response = streamer_client.post(f"/missions/{mission.pk}/decide", {"action": "accept", "next": next_url})

        assert response.status_code == 302
        assert response.url == "/dashboard"

    def test_an_unknown_action_is_refused_and_changes_nothing(self, streamer_client, mission):
        rows = _ledger_rows()

        response = streamer_client.post(f"/missions/{mission.pk}/decide", {"action": "explode"})

        assert response.status_code == 400
        assert _ledger_rows() == rows
        assert Mission.objects.get(pk=mission.pk).status == Mission.Status.PENDING

    def test_a_decided_mission_shows_no_buttons_even_to_its_streamer(self, streamer_client, streamer, mission):
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")

        response = streamer_client.get(f"/missions/{mission.pk}")

        assert response.status_code == 200
        assert b"/decide" not in response.content


class TestNewMissionForm:
    def _post(self, client, **fields):
        data = {
            "streamer": "",
            "title": "Beat the game with a dance pad",
            "description": "No controller.",
            "amount": "2500",
            "duration_seconds": str(_duration()),
            "form_key": one_time_key(),
        }
        data.update(fields)
        return client.post("/missions/new", data, follow=True)

    def test_shows_the_form(self, viewer_client, streamer):
        response = viewer_client.get(f"/missions/new?streamer={streamer.username}")

        assert response.status_code == 200
        assert f'value="{streamer.username}"'.encode() in response.content
        assert f'<option value="{_duration()}"'.encode() in response.content

    def test_creates_the_mission_and_moves_the_cash(self, viewer_client, viewer, streamer):
        response = self._post(viewer_client, streamer=streamer.username)

        mission = Mission.objects.get()
        assert response.redirect_chain == [(f"/missions/{mission.pk}", 302)]
        assert b"Your mission is live." in response.content
        assert (mission.title, mission.streamer_id, mission.creator_id) == (
            "Beat the game with a dance pad",
            streamer.pk,
            viewer.pk,
        )
        assert mission.pot == 2_500
        assert wallet_balance(user_id=viewer.pk) == 7_500
        assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == 2_500
        assert Event.objects.filter(mission_id=mission.pk, kind="created", amount=2_500).exists()

    def _assert_refused(self, response, viewer, rows, field, message):
        assert response.status_code == 400
        assert _field_errors(response, field) == [message]
        assert not Mission.objects.exists()
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=viewer.pk) == 10_000

    def test_refuses_an_unknown_streamer(self, viewer_client, viewer):
        rows = _ledger_rows()

        response = self._post(viewer_client, streamer="nobody_at_all")

        self._assert_refused(response, viewer, rows, "streamer", "No user has that username.")

    def test_refuses_a_user_who_is_not_a_streamer(self, viewer_client, viewer):
        rows = _ledger_rows()

        response = self._post(viewer_client, streamer=UserFactory().username)

        self._assert_refused(response, viewer, rows, "streamer", "That user is not a streamer.")

    def test_refuses_a_mission_for_oneself(self, client, streamer):
        fund(streamer, 10_000)
        client.force_login(streamer)
        rows = _ledger_rows()

        response = self._post(client, streamer=streamer.username)

        self._assert_refused(response, streamer, rows, "streamer", "A streamer cannot create a mission for themselves.")

    def test_refuses_more_than_the_wallet_holds_and_links_to_the_wallet(self, viewer_client, viewer, streamer):
        rows = _ledger_rows()

        response = self._post(viewer_client, streamer=streamer.username, amount="10001")

        self._assert_refused(response, viewer, rows, "amount", "Not enough cash in your wallet.")
        assert b'<a href="/wallet">Top up your wallet</a>' in response.content

    def test_refuses_an_invalid_amount(self, viewer_client, viewer, streamer):
        rows = _ledger_rows()

        response = self._post(viewer_client, streamer=streamer.username, amount="abc")

        assert response.status_code == 400
        assert _field_errors(response, "amount")
        assert not Mission.objects.exists()
        assert _ledger_rows() == rows


class TestWalletPage:
    @pytest.mark.parametrize("amount", ["10000", "2500"], ids=["quick button", "field"])
    def test_a_top_up_raises_the_balance_and_adds_a_history_row(self, client, amount):
        user = UserFactory()
        client.force_login(user)

        response = client.post("/wallet", {"amount": amount, "form_key": one_time_key()}, follow=True)

        shown = f"{int(amount):,}"
        assert response.redirect_chain == [("/wallet", 302)]
        assert f"Added {shown} cash to your wallet.".encode() in response.content
        assert f'data-testid="balance">{shown}<'.encode() in response.content
        assert wallet_balance(user_id=user.pk) == int(amount)
        assert Posting.objects.filter(account__user_id=user.pk).count() == 1
        assert response.content.count(b"<td>Top-up</td>") == 1

    @pytest.mark.parametrize("amount", ["0", "999", "abc", "-1000", "1000001", ""])
    def test_a_bad_amount_shows_an_error_and_moves_nothing(self, viewer_client, viewer, amount):
        rows = _ledger_rows()

        response = viewer_client.post("/wallet", {"amount": amount, "form_key": one_time_key()})

        assert response.status_code == 400
        assert _field_errors(response, "amount")
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=viewer.pk) == 10_000

    def test_the_history_links_each_mission_row_to_its_mission(self, viewer_client, viewer, streamer):
        created = make_mission(streamer=streamer, creator=viewer, amount=1_000, title="Eat a ghost pepper")
        backed = make_mission(streamer=streamer, amount=1_000, title="Play with the monitor upside down")
        services.pledge_create(mission_id=backed.pk, user_id=viewer.pk, amount=700)

        response = viewer_client.get("/wallet")

        assert response.status_code == 200
        assert response.content.count(f'<a href="/missions/{created.pk}">Eat a ghost pepper</a>'.encode()) == 1
        assert (
            response.content.count(f'<a href="/missions/{backed.pk}">Play with the monitor upside down</a>'.encode())
            == 1
        )
        assert response.content.count(b"<td>Pledge</td>") == 2
        assert response.content.count(b"<td>Top-up</td>") == 1


# --- htmx partials ------------------------------------------------------------------------


class TestLivePartials:
    @pytest.fixture
    def urls(self, streamer, mission):
        return {
            "mission": (f"/missions/{mission.pk}", "mission-live"),
            "dashboard": ("/dashboard", "dashboard-live"),
            "overlay": (f"/overlay/{streamer.username}", "overlay-live"),
        }

    @pytest.mark.parametrize("page", ["mission", "dashboard", "overlay"])
    def test_an_htmx_request_gets_only_the_live_part(self, streamer_client, urls, page):
        url, live_id = urls[page]

        response = streamer_client.get(url, headers={"HX-Request": "true"})

        assert response.status_code == 200
        assert b"<html" not in response.content
        assert response.content.lstrip().startswith(f'<div id="{live_id}"'.encode())
        assert "HX-Request" in response["Vary"]

    @pytest.mark.parametrize("page", ["mission", "dashboard", "overlay"])
    def test_the_full_page_polls_its_live_part(self, streamer_client, urls, page):
        url, live_id = urls[page]

        response = streamer_client.get(url)

        assert response.status_code == 200
        assert b"<html" in response.content
        assert f'<div id="{live_id}"'.encode() in response.content
        assert f'hx-get="{url}"'.encode() in response.content
        assert re.search(rb'hx-trigger="every \d+s"', response.content)
        assert "HX-Request" in response["Vary"]

    def test_an_anonymous_htmx_request_for_the_mission_gets_the_live_part(self, client, mission):
        response = client.get(f"/missions/{mission.pk}", headers={"HX-Request": "true"})

        assert response.status_code == 200
        assert b"<html" not in response.content
        assert b'data-testid="pot">1,000<' in response.content
        assert "HX-Request" in response["Vary"]


# --- overlay ------------------------------------------------------------------------------


class TestOverlay:
    def test_shows_the_streamers_live_missions_without_sign_in(self, client, streamer):
        make_mission(streamer=streamer, amount=2_345, title="Win a round with a banana")
        make_mission(streamer=streamer, amount=1_200, title="Sing the anthem")
        ended = make_mission(streamer=streamer, title="Already over")
        services.mission_decide(mission_id=ended.pk, user_id=streamer.pk, action="fail")
        make_mission(title="Someone else's mission")

        response = client.get(f"/overlay/{streamer.username}")

        assert response.status_code == 200
        assert b'<body class="overlay">' in response.content
        assert b"Win a round with a banana" in response.content
        assert b"Sing the anthem" in response.content
        assert b'data-testid="overlay-pot">2,345' in response.content
        assert b'data-testid="overlay-pot">1,200' in response.content
        assert response.content.count(b'class="countdown"') == 2
        assert b"Already over" not in response.content
        assert b"Someone else" not in response.content

    def test_shows_no_backer_email_or_balance(self, client, streamer):
        backer = UserFactory(username="secret_backer", email="backer@private.example")
        fund(backer, 80_000)
        make_mission(streamer=streamer, creator=backer, amount=6_790, title="Play blindfolded")
        client.force_login(backer)  # even the backer's own session shows nothing of theirs

        response = client.get(f"/overlay/{streamer.username}")

        assert response.status_code == 200
        assert b"Play blindfolded" in response.content
        for private in ("secret_backer", "backer@private.example", streamer.email, "73,210", "73210", "@private"):
            assert private.encode() not in response.content

    @pytest.mark.parametrize("spelling", ["ｋｉｗｉ", "𝐊𝐢𝐰𝐢", "KIWI"])  # noqa: RUF001
    def test_finds_the_streamer_by_any_spelling_of_the_name(self, client, db, spelling):
        kiwi = UserFactory(username="kiwi", is_streamer=True)
        make_mission(streamer=kiwi, title="Play blindfolded")

        response = client.get(f"/overlay/{spelling}")

        assert response.status_code == 200
        assert b"Play blindfolded" in response.content

    def test_is_404_for_an_unknown_user(self, client, db):
        response = client.get("/overlay/nobody_at_all")

        assert response.status_code == 404

    def test_is_404_for_a_user_who_is_not_a_streamer(self, client, viewer):
        response = client.get(f"/overlay/{viewer.username}")

        assert response.status_code == 404


# --- channel ------------------------------------------------------------------------------


class TestChannelPage:
    def test_shows_live_and_past_missions_and_the_total_earned(
        self, client, streamer, task_queue, django_capture_on_commit_callbacks, settings
    ):
        settings.MISSIONHUB_FEE_BPS = 0
        make_mission(streamer=streamer, amount=1_000, title="Still running")
        done = make_mission(streamer=streamer, amount=1_500, title="Already won")
        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=done.pk, user_id=streamer.pk, action="success")
        task_queue.run_all()

        response = client.get(f"/streamers/{streamer.username}")

        assert response.status_code == 200
        assert f"@{streamer.username}".encode() in response.content
        assert b"Still running" in response.content
        assert f'<a href="/missions/{done.pk}">Already won</a>'.encode() in response.content
        assert b"1,500 cash earned from missions" in response.content
        assert b'<td class="num optional">1,500</td><td class="num">1,500</td>' in response.content

    def test_is_404_for_a_user_who_is_not_a_streamer(self, client, viewer):
        response = client.get(f"/streamers/{viewer.username}")

        assert response.status_code == 404

    @pytest.mark.parametrize("spelling", ["ｋｉｗｉ", "𝐊𝐢𝐰𝐢", "KIWI"])  # noqa: RUF001
    def test_finds_the_streamer_by_any_spelling_of_the_name(self, client, db, spelling):
        kiwi = UserFactory(username="kiwi", is_streamer=True)
        make_mission(streamer=kiwi, title="Still running")

        response = client.get(f"/streamers/{spelling}")

        assert response.status_code == 200
        assert b"@kiwi" in response.content
        assert b"Still running" in response.content

    def test_is_404_for_an_unknown_user(self, client, db):
        response = client.get("/streamers/nobody_at_all")

        assert response.status_code == 404


# --- home ---------------------------------------------------------------------------------


class TestHomePage:
    def test_lists_the_newest_first_by_default(self, client, streamer):
        for title, amount in (("Alpha quest", 1_000), ("Bravo quest", 3_000), ("Charlie quest", 2_000)):
            make_mission(streamer=streamer, amount=amount, title=title)

        response = client.get("/")

        assert response.status_code == 200
        assert _positions(response.content, ["Alpha quest", "Bravo quest", "Charlie quest"]) == [
            "Charlie quest",
            "Bravo quest",
            "Alpha quest",
        ]

    def test_sorts_by_pot(self, client, streamer):
        for title, amount in (("Alpha quest", 1_000), ("Bravo quest", 3_000), ("Charlie quest", 2_000)):
            make_mission(streamer=streamer, amount=amount, title=title)

        response = client.get("/?sort=pot")

        assert _positions(response.content, ["Alpha quest", "Bravo quest", "Charlie quest"]) == [
            "Bravo quest",
            "Charlie quest",
            "Alpha quest",
        ]

    def test_filters_by_streamer(self, client, streamer):
        other = UserFactory(is_streamer=True)
        make_mission(streamer=streamer, title="Alpha quest")
        make_mission(streamer=other, title="Bravo quest")

        response = client.get(f"/?streamer={streamer.username.upper()}")

        assert _positions(response.content, ["Alpha quest", "Bravo quest"]) == ["Alpha quest"]

    def test_filters_by_streamer_in_any_spelling(self, client, db):
        elodie, other = UserFactory(username="élodie", is_streamer=True), UserFactory(is_streamer=True)
        make_mission(streamer=elodie, title="Alpha quest")
        make_mission(streamer=other, title="Bravo quest")

        response = client.get("/", {"streamer": "ÉLODIE"})

        assert _positions(response.content, ["Alpha quest", "Bravo quest"]) == ["Alpha quest"]

    def test_an_unknown_streamer_filter_lists_nothing(self, client, streamer):
        make_mission(streamer=streamer, title="Alpha quest")

        response = client.get("/?streamer=nobody_at_all")

        assert response.status_code == 200
        assert b"Alpha quest" not in response.content
        assert b"No live missions right now." in response.content

    def test_leaves_out_missions_past_their_deadline_or_ended(self, client, streamer):
        make_mission(streamer=streamer, title="Alpha quest")
        late = make_mission(streamer=streamer, title="Bravo quest")
        _past_deadline(late)
        ended = make_mission(streamer=streamer, title="Charlie quest")
        services.mission_decide(mission_id=ended.pk, user_id=streamer.pk, action="fail")

        response = client.get("/")

        assert _positions(response.content, ["Alpha quest", "Bravo quest", "Charlie quest"]) == ["Alpha quest"]


# --- streamer suggestions -----------------------------------------------------------------


class TestStreamerSuggestions:
    @pytest.mark.parametrize("prefix", ["st", "ST", " St "])
    def test_offers_streamers_whose_names_start_with_the_prefix(self, client, db, prefix):
        for name in ("stella", "Stormy", "ST_ranger", "bob_st"):
            UserFactory(username=name, is_streamer=True)
        UserFactory(username="steve_viewer")

        response = client.get("/streamers/suggest", {"streamer": prefix})

        assert response.status_code == 200
        options = re.findall(r'<option value="([^"]*)"></option>', response.content.decode())
        assert sorted(options) == sorted(["stella", "Stormy", "ST_ranger"])

    @pytest.mark.parametrize("prefix", ["ÉLO", "ｅｌｏ", "𝐞𝐥𝐨"])  # noqa: RUF001
    def test_offers_names_beyond_ascii_in_any_spelling(self, client, db, prefix):
        for name in ("élodie", "Éloïse", "elon"):
            UserFactory(username=name, is_streamer=True)

        response = client.get("/streamers/suggest", {"streamer": prefix})

        options = re.findall(r'<option value="([^"]*)"></option>', response.content.decode())
        expected = ["elon"] if prefix != "ÉLO" else ["élodie", "Éloïse"]
        assert sorted(options) == sorted(expected)

    def test_offers_nothing_for_an_empty_prefix(self, client, streamer):
        response = client.get("/streamers/suggest", {"streamer": ""})

        assert response.status_code == 200
        assert b"<option" not in response.content


# --- query counts -------------------------------------------------------------------------


# The home page for a signed-in viewer, however many missions.
HOME_PAGE_QUERIES = {"default": 2, "accounts": 3}
# A mission's page for a signed-in viewer, however many contributors.
MISSION_PAGE_QUERIES = {"default": 6, "accounts": 5}
# A streamer's dashboard, however many open missions.
DASHBOARD_QUERIES = {"default": 4, "accounts": 3}


class TestConstantQueries:
    def test_the_home_page_makes_as_many_queries_for_many_missions(self, viewer_client):
        for _ in range(2):
            make_mission()
        viewer_client.get("/")
        few = _queries(viewer_client, "/")

        for _ in range(10):
            make_mission()
        many = _queries(viewer_client, "/")

        assert Mission.objects.count() == 12
        assert few == many == HOME_PAGE_QUERIES

    def test_the_mission_page_makes_as_many_queries_for_many_contributors(self, viewer_client, mission):
        url = f"/missions/{mission.pk}"
        viewer_client.get(url)
        few = _queries(viewer_client, url)

        for user in UserFactory.create_batch(9):
            fund(user, 1_000)
            services.pledge_create(mission_id=mission.pk, user_id=user.pk, amount=100)
        many = _queries(viewer_client, url)

        assert Mission.objects.get(pk=mission.pk).contributor_count == 10
        assert few == many == MISSION_PAGE_QUERIES

    def test_the_mission_page_shows_the_top_backers_and_latest_events_of_a_big_crowd(
        self, viewer_client, mission, settings
    ):
        settings.MISSIONHUB_PAGE_BACKERS = 3
        settings.MISSIONHUB_PAGE_EVENTS = 4
        backers = UserFactory.create_batch(6)
        for i, user in enumerate(backers):
            fund(user, 10_000)
            services.pledge_create(mission_id=mission.pk, user_id=user.pk, amount=100 * (i + 1))
        url = f"/missions/{mission.pk}"

        page = viewer_client.get(url).content.decode()

        shown = re.findall(r'<ol class="contributors">(.*?)</ol>', page, re.S)[0]
        # The creator's 1,000 first, then the biggest two of the six.
        assert re.findall(r"<strong>([\d,]+)</strong>", shown) == ["1,000", "600", "500"]
        assert "and 4 more backers" in page
        timeline = re.findall(r'<ol class="timeline">(.*?)</ol>', page, re.S)[0]
        assert timeline.count("<li") == 4 and backers[-1].username in timeline
        assert "3 earlier events not shown" in page  # created and two pledges

        few = _queries(viewer_client, url)
        for user in UserFactory.create_batch(5):
            fund(user, 1_000)
            services.pledge_create(mission_id=mission.pk, user_id=user.pk, amount=100)
        assert _queries(viewer_client, url) == few

    def test_the_dashboard_makes_as_many_queries_for_many_open_missions(self, streamer_client, streamer):
        ended = make_mission(streamer=streamer)
        services.mission_decide(mission_id=ended.pk, user_id=streamer.pk, action="fail")
        make_mission(streamer=streamer)
        streamer_client.get("/dashboard")
        few = _queries(streamer_client, "/dashboard")

        for _ in range(5):
            make_mission(streamer=streamer)
        many = _queries(streamer_client, "/dashboard")

        assert Mission.objects.filter(streamer_id=streamer.pk, is_active=True).count() == 6
        assert few == many == DASHBOARD_QUERIES


# --- error pages --------------------------------------------------------------------------


class TestErrorPages:
    def test_an_unknown_page_renders_the_styled_404(self, client, db):
        response = client.get("/no-such-page")

        assert response.status_code == 404
        assert b"This page went missing." in response.content
        assert b'href="/">Back to live missions</a>' in response.content

    def test_an_unknown_mission_renders_the_styled_404(self, client, db):
        response = client.get("/missions/999999")

        assert response.status_code == 404
        assert b"This page went missing." in response.content
        assert b'href="/">Back to live missions</a>' in response.content

    @pytest.mark.parametrize("debug", [True, False])
    @pytest.mark.parametrize("url", ["/missions/99999", "/streamers/nobody", "/overlay/nobody"])
    def test_an_unknown_mission_or_streamer_shows_our_404_page_with_debug_on_or_off(
        self, client, db, settings, url, debug
    ):
        settings.DEBUG = debug

        response = client.get(url)

        assert response.status_code == 404
        assert [t.name for t in response.templates][:2] == ["404.html", "base.html"]
        assert b"This page went missing." in response.content
        assert b'href="/">Back to live missions</a>' in response.content

    def test_an_unknown_mission_in_htmx_polling_is_404(self, client, db):
        response = client.get("/missions/999999", headers={"HX-Request": "true"})

        assert response.status_code == 404

    def test_the_500_template_renders_without_context(self):
        html = render_to_string("500.html")

        assert "Something broke on our side." in html
        assert 'href="/"' in html
