from datetime import timedelta
from unittest import mock

import pytest
import requests
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from ledger.models import Event, Notification, Transaction
from ledger.selectors import system_balance, wallet_balance
from missionhub.errors import MissionHubError
from missions import services
from missions.errors import EmailSendFailed, InvalidTransition, MissionClosed, NotMissionStreamer
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases


def _past_deadline(mission):
    Mission.objects.filter(pk=mission.pk).update(deadline=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def crowd(db):
    """A mission with three contributors: the creator (1,000), a (300 + 200) and b (700)."""
    streamer = UserFactory(is_streamer=True)
    creator, a, b = UserFactory.create_batch(3)
    for user in (creator, a, b):
        fund(user, 10_000)
    mission = make_mission(streamer=streamer, creator=creator, amount=1_000)
    services.pledge_create(mission_id=mission.pk, user_id=a.pk, amount=300)
    services.pledge_create(mission_id=mission.pk, user_id=b.pk, amount=700)
    services.pledge_create(mission_id=mission.pk, user_id=a.pk, amount=200)
    return mission, streamer, {"creator": creator, "a": a, "b": b}


# A refund of any size up to one chunk on `default`: the statements of
# test_settlement_scale.py, plus the SAVEPOINT and RELEASE of settling inside the test's
# transaction (PostgreSQL locks the wallets inside the chunk's first SELECT).
REFUND_QUERIES = {"postgresql": 11, "sqlite": 11}


class TestMissionSettle:
    def test_pays_the_pot_to_the_streamer_once(self, crowd):
        mission, streamer, _ = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")

        first = services.mission_settle(mission_id=mission.pk)
        second = services.mission_settle(mission_id=mission.pk)

        assert (first, second) == (True, False)
        assert wallet_balance(user_id=streamer.pk) == 2_200
        assert Transaction.objects.filter(mission_id=mission.pk, kind="payout").count() == 1
        mission.refresh_from_db()
        assert mission.settled_at is not None
        assert Event.objects.filter(mission_id=mission.pk, kind="settled", amount=2_200).exists()

    def test_keeps_the_fee_setting_in_the_fees_account(self, crowd, settings):
        settings.MISSIONHUB_FEE_BPS = 250
        mission, streamer, _ = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")

        services.mission_settle(mission_id=mission.pk)

        assert wallet_balance(user_id=streamer.pk) == 2_200 - 55
        assert system_balance(kind="fees") == 55

    @pytest.mark.parametrize("action", ["fail", "reject"])
    def test_refunds_every_contributor_exactly_what_they_put_in(self, crowd, action):
        mission, streamer, people = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action=action)

        services.mission_settle(mission_id=mission.pk)

        assert {name: wallet_balance(user_id=u.pk) for name, u in people.items()} == {
            "creator": 10_000,
            "a": 10_000,
            "b": 10_000,
        }
        assert wallet_balance(user_id=streamer.pk) == 0
        refund = Transaction.objects.get(mission_id=mission.pk, kind="refund")
        assert sorted(p.amount for p in refund.postings.all()) == [-2_200, 500, 700, 1_000]

    def test_refunds_any_number_of_contributors_in_constant_queries(self, django_assert_num_queries):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        for user in UserFactory.create_batch(25):
            fund(user, 1_000)
            services.pledge_create(mission_id=mission.pk, user_id=user.pk, amount=100)
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")

        # tests/missions/test_settlement_scale.py's statements, in a savepoint here.
        with django_assert_num_queries(REFUND_QUERIES[connection.vendor], using="default"):
            services.mission_settle(mission_id=mission.pk)

        assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == 26

    def test_does_nothing_for_an_open_mission(self, crowd):
        mission, _, _ = crowd

        assert services.mission_settle(mission_id=mission.pk) is False
        assert not Transaction.objects.filter(mission_id=mission.pk, kind__in=["payout", "refund"]).exists()


class TestMissionDecide:
    def test_a_decision_enqueues_the_settlement_on_commit(self, crowd, task_queue, django_capture_on_commit_callbacks):
        mission, streamer, _ = crowd

        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")

        assert ("missions.settle_mission", {"mission_id": mission.pk}) in task_queue.sent

    def test_nothing_is_enqueued_when_the_decision_rolls_back(
        self, crowd, task_queue, django_capture_on_commit_callbacks
    ):
        mission, _, people = crowd

        with django_capture_on_commit_callbacks(execute=True), pytest.raises(NotMissionStreamer):
            services.mission_decide(mission_id=mission.pk, user_id=people["a"].pk, action="fail")

        assert task_queue.sent == []

    def test_refuses_to_accept_twice(self, crowd):
        mission, streamer, _ = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="accept")

        with pytest.raises(InvalidTransition):
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="accept")

    def test_refuses_a_decision_after_the_deadline(self, crowd):
        mission, streamer, _ = crowd
        _past_deadline(mission)

        with pytest.raises(MissionClosed):
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")

        assert Mission.objects.get(pk=mission.pk).status == "pending"


class TestMissionCancel:
    def test_staff_cancel_refunds_through_the_settlement(self, crowd, task_queue, django_capture_on_commit_callbacks):
        mission, _, people = crowd
        staff = UserFactory(is_staff=True)

        with django_capture_on_commit_callbacks(execute=True):
            services.mission_cancel(mission_id=mission.pk, staff_id=staff.pk)
        task_queue.run_all()

        assert Mission.objects.get(pk=mission.pk).status == "cancelled"
        assert all(wallet_balance(user_id=u.pk) == 10_000 for u in people.values())


class TestSweep:
    def test_expires_due_missions_and_refunds_them(self, crowd, task_queue, django_capture_on_commit_callbacks):
        mission, _, people = crowd
        fresh = make_mission()
        _past_deadline(mission)

        with django_capture_on_commit_callbacks(execute=True):
            report = services.missions_sweep(batch_size=10)
        task_queue.run_all()

        assert report.expired == 1
        assert Mission.objects.get(pk=mission.pk).status == "expired"
        assert Mission.objects.get(pk=fresh.pk).status == "pending"
        assert all(wallet_balance(user_id=u.pk) == 10_000 for u in people.values())
        assert Event.objects.get(mission_id=mission.pk, kind="expired").actor_id is None

    def test_expires_in_bounded_batches(self, task_queue):
        missions = [make_mission() for _ in range(5)]
        for mission in missions:
            _past_deadline(mission)

        report = services.missions_sweep(batch_size=2, max_batches=2)

        assert report.expired == 4
        assert Mission.objects.filter(status="expired").count() == 4

    def test_enqueues_again_a_terminal_mission_left_unsettled(self, crowd, task_queue):
        mission, streamer, _ = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")  # its message is lost
        Mission.objects.filter(pk=mission.pk).update(decided_at=timezone.now() - timedelta(minutes=5))

        report = services.missions_sweep(batch_size=10)
        task_queue.run_all()

        assert report.settlements_enqueued == 1
        assert Mission.objects.get(pk=mission.pk).settled_at is not None

    def test_enqueues_again_unsent_emails(self, crowd, task_queue):
        mission, streamer, _ = crowd
        Notification.objects.filter(mission_id=mission.pk).update(created_at=timezone.now() - timedelta(minutes=5))

        report = services.missions_sweep(batch_size=10)
        task_queue.run_all()

        assert report.emails_enqueued == 1
        assert [m.to for m in mail.outbox] == [[streamer.email]]


class TestEmails:
    def test_each_contributor_gets_one_result_email_with_their_refund(
        self, crowd, task_queue, django_capture_on_commit_callbacks
    ):
        mission, streamer, _ = crowd
        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
        task_queue.run_all()
        mail.outbox.clear()

        services.mission_emails_send(mission_id=mission.pk, kinds=("result",))  # delivered twice: nothing more

        results = Notification.objects.filter(mission_id=mission.pk, kind="result")
        assert results.count() == 3
        assert all(n.sent_at for n in results)
        assert mail.outbox == []

    def test_the_result_email_names_the_refund(self, crowd, task_queue, django_capture_on_commit_callbacks):
        mission, streamer, people = crowd
        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")

        task_queue.run_all()

        to_a = [m for m in mail.outbox if m.to == [people["a"].email]]
        assert len(to_a) == 1
        assert "500 cash was refunded" in to_a[0].body
        assert "500" in to_a[0].alternatives[0][0]


def _postmark_ok(to: str) -> dict:
    return {"To": to, "SubmittedAt": "2026-11-26T00:00:00Z", "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"}


def _response(status: int, payload: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = __import__("json").dumps(payload).encode()
    response.headers["Content-Type"] = "application/json"
    return response


class TestEmailProvider:
    """Through anymail's real Postmark backend, with only its HTTP call replaced."""

    @pytest.fixture
    def postmark(self, settings):
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token"}

    def test_a_provider_failure_leaves_the_email_unsent_for_a_retry(self, postmark):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        outage = _response(500, {"ErrorCode": 500, "Message": "down"})

        with mock.patch.object(requests.Session, "request", return_value=outage), pytest.raises(EmailSendFailed):
            services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",))

        notification = Notification.objects.get(mission_id=mission.pk)
        assert notification.sent_at is None
        assert notification.failed_at is None
        assert notification.attempts == 1
        assert "500" in notification.last_error
        assert notification.claimed_until > timezone.now()  # backing off before the retry

        Notification.objects.filter(pk=notification.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
        with mock.patch.object(
            requests.Session, "request", return_value=_response(200, _postmark_ok(streamer.email))
        ) as http:
            sent = services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",))

        assert sent == 1
        assert http.call_count == 1
        notification.refresh_from_db()
        assert notification.sent_at is not None
        assert notification.provider_message_id == "pm-1"

    @pytest.mark.parametrize("seconds", [30, 300])
    def test_the_first_wait_before_a_retry_is_a_setting(self, postmark, settings, seconds):
        if seconds != 30:
            settings.MISSIONHUB_EMAIL_RETRY_SECONDS = seconds
        mission = make_mission()
        outage = _response(500, {"ErrorCode": 500, "Message": "down"})

        with mock.patch.object(requests.Session, "request", return_value=outage), pytest.raises(EmailSendFailed):
            services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",))

        wait = Notification.objects.get(mission_id=mission.pk).claimed_until - timezone.now()
        assert timedelta(seconds=seconds - 5) < wait <= timedelta(seconds=seconds)

    def test_the_task_leaves_the_retry_to_the_outbox_and_the_sweep(self, postmark):
        from missions.tasks import notify_streamer

        mission = make_mission()
        outage = _response(500, {"ErrorCode": 500, "Message": "down"})

        with mock.patch.object(requests.Session, "request", return_value=outage) as http:
            result = notify_streamer.apply(kwargs={"mission_id": mission.pk})

        assert result.state == "FAILURE"
        assert http.call_count == 1
        notification = Notification.objects.get(mission_id=mission.pk)
        assert (notification.sent_at, notification.failed_at, notification.attempts) == (None, None, 1)
        assert notification.claimed_until > timezone.now()  # the sweep enqueues it again once this passes


class TestEmailClaim:
    @pytest.mark.parametrize("seconds", [300, 900])
    def test_a_sender_owns_the_email_it_claimed_for_a_setting(self, settings, seconds):
        if seconds != 300:
            settings.MISSIONHUB_EMAIL_CLAIM_SECONDS = seconds
        mission = make_mission()

        assert services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",)) == 1

        claimed = Notification.objects.get(mission_id=mission.pk).claimed_until - timezone.now()
        assert timedelta(seconds=seconds - 5) < claimed <= timedelta(seconds=seconds)


class TestEmailLanguage:
    def test_each_user_is_written_to_in_the_language_they_chose(self):
        streamer = UserFactory(is_streamer=True, language="ko")
        mission = make_mission(streamer=streamer, amount=12_345)

        services.mission_emails_send(mission_id=mission.pk, kinds=("mission_created",))

        (message,) = mail.outbox
        assert message.subject.startswith("새 미션이 도착했어요")
        assert "12,345 캐시" in message.body


def _money_rows():
    from ledger.models import Posting

    return Transaction.objects.count(), Posting.objects.count(), Event.objects.count(), Mission.objects.count()


class TestMoneyServicesValidateTheirInput:
    """pledge_create and mission_create refuse what the API would, whoever calls them."""

    @pytest.mark.parametrize(
        ("amount", "code"),
        [(-500, "min_value"), (0, "min_value"), (99, "min_value"), (1_000_001, "max_value"), (1.5, "invalid")],
    )
    def test_pledge_create_refuses_an_amount_outside_the_settings(self, crowd, amount, code):
        mission, _, people = crowd
        before = (_money_rows(), wallet_balance(user_id=people["a"].pk))

        with pytest.raises(MissionHubError) as caught:
            services.pledge_create(mission_id=mission.pk, user_id=people["a"].pk, amount=amount)

        assert (caught.value.code, caught.value.field) == (code, "amount")
        assert (_money_rows(), wallet_balance(user_id=people["a"].pk)) == before
        mission.refresh_from_db()
        assert mission.pot == 2_200

    @pytest.mark.parametrize(
        ("amount", "code"), [(-500, "min_value"), (0, "min_value"), (1_000_001, "max_value"), (True, "invalid")]
    )
    def test_mission_create_refuses_an_amount_outside_the_settings(self, amount, code):
        streamer, creator = UserFactory(is_streamer=True), UserFactory()
        fund(creator, 10_000)
        before = _money_rows()

        with pytest.raises(MissionHubError) as caught:
            make_mission(streamer=streamer, creator=creator, amount=amount)

        assert (caught.value.code, caught.value.field) == (code, "amount")
        assert _money_rows() == before
        assert wallet_balance(user_id=creator.pk) == 10_000

    def test_the_limits_follow_the_settings(self, crowd, settings):
        settings.MISSIONHUB_PLEDGE_MAX = 150
        mission, _, people = crowd

        with pytest.raises(MissionHubError, match="150"):
            services.pledge_create(mission_id=mission.pk, user_id=people["a"].pk, amount=151)
        assert services.pledge_create(mission_id=mission.pk, user_id=people["a"].pk, amount=150).pot == 2_350

    @pytest.mark.parametrize("fee_bps", [-1, 10_001, 20_000])
    def test_settlement_refuses_a_fee_outside_0_to_10000(self, crowd, settings, fee_bps):
        settings.MISSIONHUB_FEE_BPS = fee_bps
        mission, streamer, _ = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")

        with pytest.raises(ImproperlyConfigured):
            services.mission_settle(mission_id=mission.pk)

        assert wallet_balance(user_id=streamer.pk) == 0
        settings.MISSIONHUB_FEE_BPS = 0
        assert services.mission_settle(mission_id=mission.pk) is True  # the ledger stays sound

    def test_the_whole_pot_may_go_to_fees(self, crowd, settings):
        settings.MISSIONHUB_FEE_BPS = 10_000
        mission, streamer, _ = crowd
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")

        services.mission_settle(mission_id=mission.pk)

        assert wallet_balance(user_id=streamer.pk) == 0
