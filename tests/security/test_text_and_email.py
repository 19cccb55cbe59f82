"""Safe text and safe email (issue 7, item 4).

Control characters are refused in every text a user types (API, pages, services);
email subjects are plain text on one line; an email that can never be sent is marked
failed with its reason instead of being retried forever.
"""

import json
from datetime import timedelta
from unittest import mock

import pytest
import requests
from django.core import mail
from django.core.mail import BadHeaderError
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from ledger.models import Account, Event, IdempotencyRecord, Notification, Posting, Transaction
from ledger.selectors import wallet_balance
from missionhub.validators import CONTROL_CHARACTERS, has_control_characters
from missions import services
from missions.errors import EmailSendFailed, InvalidText
from missions.forms import MissionForm, one_time_key
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases

# A line break (the header-injection case), NUL, and other Cc characters from both C0 and C1.
BAD_CHARACTERS = ["\r\n", "\n", "\r", "\x00", "\t", "\x0b", "\x1b", "\x7f", "\x85", "\x9f"]


def _ledger_rows() -> tuple[int, ...]:
    return (
        Mission.objects.count(),
        Account.objects.count(),
        Transaction.objects.count(),
        Posting.objects.count(),
        Event.objects.count(),
        Notification.objects.count(),
        IdempotencyRecord.objects.count(),
    )


def _signed_in(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return api_client


@pytest.fixture
def creator(db):
    user = UserFactory()
    fund(user, 10_000)
    return user


@pytest.fixture
def streamer(db):
    return UserFactory(is_streamer=True)


class TestTheValidator:
    def test_control_characters_are_exactly_unicode_cc(self):
        import unicodedata

        every_cc = {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"}

        assert set(CONTROL_CHARACTERS) == every_cc
        assert all(has_control_characters(f"a{ch}b") for ch in every_cc)
        assert not has_control_characters("Tom & Jerry: 보스 클리어 \u2028 ok")  # U+2028 is Zl, not Cc


# --- the API ------------------------------------------------------------------------------


class TestMissionCreateApi:
    def _post(self, api_client, creator, to, **fields):
        body = {
            "title": "Clear the boss",
            "description": "No potions.",
            "streamer": to.username,
            "amount": 1_000,
            "duration_seconds": 3600,
        }
        body.update(fields)
        return _signed_in(api_client, creator).post("/api/missions", body, format="json")

    def test_refuses_a_title_with_an_injected_header_and_creates_nothing(self, api_client, creator, streamer):
        rows = _ledger_rows()

        response = self._post(api_client, creator, streamer, title="Line1\r\nBcc: x@evil.example")

        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert response.json()["errors"]["title"][0]["code"] == "invalid"
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=creator.pk) == 10_000
        assert wallet_balance(user_id=streamer.pk) == 0
        assert mail.outbox == []

    @pytest.mark.parametrize("field", ["title", "description", "streamer"])
    @pytest.mark.parametrize("character", BAD_CHARACTERS, ids=repr)
    def test_refuses_control_characters_in_every_text_field(self, api_client, creator, streamer, field, character):
        value = {"title": "Clear", "description": "No potions.", "streamer": streamer.username}[field]
        rows = _ledger_rows()

        response = self._post(api_client, creator, streamer, **{field: value[:2] + character + value[2:]})

        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert response.json()["errors"][field][0]["code"] == "invalid"
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=creator.pk) == 10_000

    def test_still_accepts_plain_text_with_ampersands_and_other_scripts(self, api_client, creator, streamer):
        response = self._post(api_client, creator, streamer, title="Tom & Jerry <3 보스 클리어")

        assert response.status_code == 201
        assert Mission.objects.get().title == "Tom & Jerry <3 보스 클리어"


class TestMissionFiltersApi:
    @pytest.mark.parametrize("field", ["streamer", "creator"])
    @pytest.mark.parametrize("character", ["\x00", "\n", "\x1b", "\x9f"], ids=repr)
    def test_refuse_control_characters(self, api_client, field, character):
        response = api_client.get("/api/missions", {field: f"ab{character}cd"})

        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert response.json()["errors"][field][0]["code"] == "invalid"


class TestRegisterApi:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("username", "neo\x00"),
            ("username", "ne\r\no"),
            ("username", "ne\x85o"),
            # A quoted local part lets most C0 controls through Django's EmailValidator.
            ("email", '"ne\x1bo"@example.com'),
            ("email", '"ne\x01o"@example.com'),
            ("email", '"ne\x7fo"@example.com'),
            ("email", "ne\x00o@example.com"),
            ("email", "neo@example.com\r\nBcc: x@evil.example"),
        ],
        ids=repr,
    )
    def test_refuses_control_characters(self, api_client, field, value):
        body = {"username": "neo", "email": "neo@example.com", "password": "follow-the-rabbit-42", field: value}

        response = api_client.post("/api/auth/register", body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert response.json()["errors"][field][0]["code"] == "invalid"
        assert not User.objects.exists()


# --- the pages ----------------------------------------------------------------------------


def _duration() -> int:
    return MissionForm().fields["duration_seconds"].choices[0][0]


class TestNewMissionPage:
    def _post(self, client, creator, to, **fields):
        client.force_login(creator)
        data = {
            "streamer": to.username,
            "title": "Clear the boss",
            "description": "No potions.",
            "amount": "1000",
            "duration_seconds": str(_duration()),
            "form_key": one_time_key(),
        }
        data.update(fields)
        return client.post("/missions/new", data)

    @pytest.mark.parametrize("field", ["title", "description", "streamer"])
    @pytest.mark.parametrize("character", ["\x00", "\x1b", "\x7f", "\x85", "\x9f", "\t"], ids=repr)
    def test_refuses_control_characters_in_every_text_field(self, client, creator, streamer, field, character):
        value = {"title": "Clear", "description": "No potions.", "streamer": streamer.username}[field]
        rows = _ledger_rows()

        response = self._post(client, creator, streamer, **{field: value[:2] + character + value[2:]})

        assert response.status_code == 400
        assert response.context["form"].has_error(field, code="invalid")
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=creator.pk) == 10_000

    @pytest.mark.parametrize("field", ["title", "streamer"])
    def test_refuses_line_breaks_in_one_line_fields(self, client, creator, streamer, field):
        value = {"title": "Line1\r\nBcc: x@evil.example", "streamer": f"{streamer.username}\r\nx"}[field]
        rows = _ledger_rows()

        response = self._post(client, creator, streamer, **{field: value})

        assert response.status_code == 400
        assert response.context["form"].has_error(field, code="invalid")
        assert _ledger_rows() == rows

    def test_turns_the_description_textareas_line_breaks_into_spaces(self, client, creator, streamer):
        response = self._post(client, creator, streamer, description="No potions.\r\nNo healers.\nNo pause.")

        assert response.status_code == 302
        assert Mission.objects.get().description == "No potions. No healers. No pause."


class TestSignupPage:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("username", "neo\x00x"),
            ("username", "ne\x1bo"),
            ("email", '"ne\x1bo"@example.com'),
            ("email", '"ne\x7fo"@example.com'),
            ("email", "ne\x00o@example.com"),
        ],
        ids=repr,
    )
    def test_refuses_control_characters(self, client, field, value):
        data = {"username": "neo", "email": "neo@example.com", "password": "follow-the-rabbit-42", field: value}

        response = client.post("/signup", data)

        assert response.status_code == 400
        assert response.context["form"].has_error(field, code="invalid")
        assert not User.objects.exists()


# --- the service --------------------------------------------------------------------------


class TestMissionCreateService:
    @pytest.mark.parametrize("field", ["title", "description"])
    @pytest.mark.parametrize("character", BAD_CHARACTERS, ids=repr)
    def test_refuses_control_characters_whoever_calls_it(self, creator, streamer, field, character):
        text = {"title": "Clear the boss", "description": "No potions."}
        text[field] = f"ab{character}cd"
        rows = _ledger_rows()

        with pytest.raises(InvalidText) as refused:
            services.mission_create(
                creator_id=creator.pk, streamer=streamer.username, amount=1_000, duration_seconds=3600, **text
            )

        assert (refused.value.code, refused.value.field) == ("invalid", field)
        assert refused.value.as_data()["errors"][field][0]["code"] == "invalid"
        assert _ledger_rows() == rows
        assert wallet_balance(user_id=creator.pk) == 10_000


# --- email subjects -----------------------------------------------------------------------


def _settle(mission, streamer, action, task_queue, capture):
    with capture(execute=True):
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action=action)
    task_queue.run_all()
    services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",))


class TestEmailSubjects:
    @pytest.mark.parametrize("action", ["success", "fail"])
    def test_keep_an_ampersand_as_typed(self, streamer, task_queue, django_capture_on_commit_callbacks, action):
        mission = make_mission(streamer=streamer, title="Tom & Jerry <3 \"quotes\" 'too'")

        _settle(mission, streamer, action, task_queue, django_capture_on_commit_callbacks)

        kinds = {n.kind for n in Notification.objects.filter(mission_id=mission.pk)}
        assert kinds == (
            {"mission_created", "result", "payout"} if action == "success" else {"mission_created", "result"}
        )
        assert len(mail.outbox) == len(kinds)
        for message in mail.outbox:
            assert "Tom & Jerry <3 \"quotes\" 'too'" in message.subject, message.subject
            assert "&amp;" not in message.subject and "&lt;" not in message.subject
        html = [m.alternatives[0][0] for m in mail.outbox]
        assert all("Tom &amp; Jerry &lt;3" in body for body in html)  # the HTML part stays escaped

    @pytest.mark.parametrize("action", ["success", "fail"])
    def test_are_one_line_whatever_the_title_holds(
        self, streamer, task_queue, django_capture_on_commit_callbacks, action
    ):
        # A title stored before control characters were refused, written past the service.
        mission = make_mission(streamer=streamer)
        Mission.objects.filter(pk=mission.pk).update(title="Line1\r\nBcc: x@evil.example\x1b\u2028end")

        _settle(mission, streamer, action, task_queue, django_capture_on_commit_callbacks)

        assert not Notification.objects.filter(mission_id=mission.pk, sent_at__isnull=True).exists()
        assert mail.outbox
        for message in mail.outbox:
            assert "Line1 Bcc: x@evil.example end" in message.subject, repr(message.subject)
            assert not has_control_characters(message.subject)
            assert "\u2028" not in message.subject
            headers = message.message()
            assert headers.get_all("Subject") == [message.subject]
            assert headers.get_all("Bcc") is None


# --- emails that cannot be sent -----------------------------------------------------------


class BadHeaderBackend(LocmemBackend):
    """An email backend that refuses every message with Django's BadHeaderError."""

    calls = 0

    def send_messages(self, messages):
        BadHeaderBackend.calls += 1
        raise BadHeaderError("Header values can't contain newlines (got 'Line1\\r\\nBcc: x')")


def _response(status: int, payload: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(payload).encode()
    response.headers["Content-Type"] = "application/json"
    response.reason = "test"
    return response


def _postmark_ok(to: str) -> requests.Response:
    return _response(
        200, {"To": to, "SubmittedAt": "2026-11-26T00:00:00Z", "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"}
    )


def _old(mission) -> None:
    """The mission's emails were queued long ago (past the sweep's grace)."""
    Notification.objects.filter(mission_id=mission.pk).update(created_at=timezone.now() - timedelta(minutes=10))


def _due_now(mission) -> None:
    """Time passes: whatever backoff the outbox set is over."""
    Notification.objects.filter(mission_id=mission.pk, claimed_until__isnull=False).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )


def _send(mission):
    return services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",))


@pytest.fixture
def postmark(settings):
    """anymail's real Postmark backend; tests replace only its HTTP call."""
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token"}


class TestPermanentFailures:
    def test_a_bad_header_is_marked_failed_after_one_try_and_never_enqueued_again(self, settings, task_queue):
        settings.EMAIL_BACKEND = f"{__name__}.BadHeaderBackend"
        BadHeaderBackend.calls = 0
        mission = make_mission()

        with pytest.raises(EmailSendFailed):
            _send(mission)
        _old(mission)
        _due_now(mission)
        report = services.missions_sweep(batch_size=10)
        task_queue.run_all()
        _send(mission)

        notification = Notification.objects.get(mission_id=mission.pk)
        assert notification.failed_at is not None
        assert notification.sent_at is None
        assert notification.attempts == 1
        assert "newlines" in notification.last_error
        assert BadHeaderBackend.calls == 1
        assert report.emails_enqueued == 0
        assert task_queue.sent == []

    @pytest.mark.parametrize(
        ("status", "payload", "raised"),
        [
            (422, {"ErrorCode": 300, "Message": "Invalid 'To' address: '{to}'."}, "AnymailRecipientsRefused"),
            (
                422,
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to a recipient that has been marked as inactive.\n"
                    "Found inactive addresses: {to}.\nInactive recipients are ones that have generated a hard bounce.",
                },
                "AnymailRecipientsRefused",
            ),
            (422, {"ErrorCode": 300, "Message": "Invalid 'From' address: 'x'."}, "AnymailRequestsAPIError"),
            (400, {"ErrorCode": 402, "Message": "Invalid JSON"}, "AnymailRequestsAPIError"),
        ],
    )
    def test_a_providers_permanent_refusal_is_marked_failed_at_once(
        self, postmark, task_queue, status, payload, raised
    ):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        refusal = _response(status, {**payload, "Message": payload["Message"].format(to=streamer.email)})

        with mock.patch.object(requests.Session, "request", return_value=refusal) as http:
            with pytest.raises(EmailSendFailed):
                _send(mission)
            _old(mission)
            _due_now(mission)
            report = services.missions_sweep(batch_size=10)
            _send(mission)

        notification = Notification.objects.get(mission_id=mission.pk)
        assert http.call_count == 1
        assert notification.failed_at is not None
        assert notification.sent_at is None
        assert notification.attempts == 1
        assert notification.last_error.startswith(raised)
        assert report.emails_enqueued == 0


class TestTransientFailures:
    @pytest.mark.parametrize(
        ("outage", "reason"),
        [
            (_response(500, {"ErrorCode": 500, "Message": "down"}), "500"),
            (_response(429, {"ErrorCode": 429, "Message": "slow down"}), "429"),
            # A revoked or mistyped API key is ours to fix, not the message's fault.
            (_response(401, {"ErrorCode": 10, "Message": "Bad or missing API token"}), "401"),
            (requests.ConnectionError("connection refused"), "connection refused"),
        ],
        ids=["500", "429", "401", "connection"],
    )
    def test_are_retried_with_backoff_then_marked_failed_after_the_max_attempts(
        self, postmark, settings, outage, reason
    ):
        settings.MISSIONHUB_EMAIL_MAX_ATTEMPTS = 4
        mission = make_mission()
        waits = []
        answer = {"side_effect": outage} if isinstance(outage, Exception) else {"return_value": outage}

        with mock.patch.object(requests.Session, "request", **answer) as http:
            for attempt in range(1, 5):
                with pytest.raises(EmailSendFailed):
                    _send(mission)
                notification = Notification.objects.get(mission_id=mission.pk)
                assert notification.attempts == attempt
                if attempt < 4:
                    assert notification.failed_at is None
                    waits.append(notification.claimed_until - timezone.now())
                    assert _send(mission) == 0  # backing off: nobody tries before its time
                    _due_now(mission)
            _due_now(mission)
            _send(mission)

        notification = Notification.objects.get(mission_id=mission.pk)
        assert http.call_count == 4
        assert notification.failed_at is not None
        assert notification.sent_at is None
        assert reason in notification.last_error
        assert waits[0] > timedelta(seconds=20)
        assert waits[1] > waits[0] + timedelta(seconds=20) and waits[2] > waits[1] + timedelta(seconds=50)

    def test_the_default_bound_is_a_setting(self, settings):
        assert settings.MISSIONHUB_EMAIL_MAX_ATTEMPTS == 8

    def test_an_email_that_succeeds_on_a_retry_is_sent(self, postmark):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        outage = _response(500, {"ErrorCode": 500, "Message": "down"})

        with mock.patch.object(requests.Session, "request", return_value=outage), pytest.raises(EmailSendFailed):
            _send(mission)
        _due_now(mission)
        with mock.patch.object(requests.Session, "request", return_value=_postmark_ok(streamer.email)):
            sent = _send(mission)

        notification = Notification.objects.get(mission_id=mission.pk)
        assert sent == 1
        assert (notification.sent_at is not None, notification.failed_at, notification.last_error) == (True, None, "")

    def test_the_sweep_waits_for_the_backoff(self, postmark, task_queue):
        mission = make_mission()
        outage = _response(500, {"ErrorCode": 500, "Message": "down"})
        with mock.patch.object(requests.Session, "request", return_value=outage), pytest.raises(EmailSendFailed):
            _send(mission)
        _old(mission)

        backing_off = services.missions_sweep(batch_size=10)
        _due_now(mission)
        due = services.missions_sweep(batch_size=10)

        assert (backing_off.emails_enqueued, due.emails_enqueued) == (0, 1)
        assert task_queue.names() == ["missions.notify_streamer"]


class TestGoneUsers:
    @pytest.mark.parametrize("gone", ["deleted", "inactive"])
    def test_an_email_to_a_gone_user_is_marked_failed_and_not_enqueued_again(self, task_queue, gone):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        if gone == "deleted":
            streamer.delete()
        else:
            User.objects.filter(pk=streamer.pk).update(is_active=False)

        _send(mission)
        _old(mission)
        report = services.missions_sweep(batch_size=10)

        notification = Notification.objects.get(mission_id=mission.pk)
        assert notification.failed_at is not None
        assert notification.sent_at is None
        assert notification.last_error == f"user {gone}"
        assert report.emails_enqueued == 0
        assert task_queue.sent == []
        assert mail.outbox == []


# --- where staff see them -----------------------------------------------------------------


@pytest.fixture
def failed_email(settings):
    settings.EMAIL_BACKEND = f"{__name__}.BadHeaderBackend"
    mission = make_mission(title="Tom & Jerry")
    with pytest.raises(EmailSendFailed):
        _send(mission)
    return Notification.objects.get(mission_id=mission.pk)


class TestStaffSeeFailedEmails:
    def test_on_the_monitoring_page(self, client, failed_email):
        client.force_login(UserFactory(is_staff=True))

        response = client.get("/staff/monitoring")

        assert response.status_code == 200
        (panel,) = [panel for panel in response.context["panels"] if panel.key == "emails"]
        facts = {fact.label: fact.value for fact in panel.facts}
        assert facts["Failed (not retried), last 48 hours"] == "1"
        assert facts["Waiting"] == "0"
        assert facts["Failing (retrying)"] == "0"
        (row,) = panel.items
        assert (row.href, row.meta, row.detail) == (f"/missions/{failed_email.mission_id}", "mission_created",
                                                    failed_email.last_error)  # fmt: skip
        content = response.content.decode()
        assert f'href="/missions/{failed_email.mission_id}"' in content
        assert "Tom &amp; Jerry" in content
        assert "newlines" in content

    def test_in_the_metrics(self, client, failed_email, settings):
        settings.METRICS_TOKEN = "prometheus-scrape-token"
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer prometheus-scrape-token")
        lines = response.content.decode().splitlines()

        assert 'missionhub_failed_emails{kind="mission_created"} 1.0' in lines
        assert 'missionhub_failed_emails{kind="result"} 0.0' in lines

    def test_in_the_admin_with_a_filter(self, client, failed_email):
        make_mission()  # an email still waiting, not failed
        client.force_login(UserFactory(is_staff=True, is_superuser=True))

        failed = client.get("/admin/ledger/notification/", {"failed_at__isempty": "0"})
        waiting = client.get("/admin/ledger/notification/", {"failed_at__isempty": "1"})

        assert failed.status_code == waiting.status_code == 200
        assert [n.pk for n in failed.context["cl"].result_list] == [failed_email.pk]
        assert failed_email.pk not in [n.pk for n in waiting.context["cl"].result_list]
        assert "newlines" in failed.content.decode()
