"""The email provider fails (every send refused, a passing failure) while a mission is
created, decided and settled, then recovers: the money moves once regardless, each email
is tried again with backoff by the sweep of a real beat and worker, and each goes out
exactly once after the provider is back."""

import time

import pytest

from ledger.models import Notification, Transaction
from ledger.selectors import wallet_balance
from missions import services
from tests.accounts.factories import UserFactory
from tests.faults.harness import assert_sound, requires_redis_server, wait_for, wait_settled
from tests.ledger.factories import fund
from tests.missions.factories import make_mission

pytestmark = [
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

BACKERS = 8


class TestTheEmailProviderFailingThenRecovering:
    def test_each_email_goes_out_once_after_the_provider_is_back(self, broker, processes, mailbox, fault_report):
        mailbox.down_flag.touch()
        processes.worker(MISSIONHUB_EMAIL_RETRY_SECONDS="1", MISSIONHUB_RESEND_GRACE_SECONDS="1")
        processes.beat(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1")
        streamer, creator = UserFactory(is_streamer=True), UserFactory()
        fund(creator, 1_000)
        mission = make_mission(streamer=streamer, creator=creator, amount=1_000, title="Mail outage")
        backers = UserFactory.create_batch(BACKERS)
        for backer in backers:
            fund(backer, 1_000)
            services.pledge_create(mission_id=mission.pk, user_id=backer.pk, amount=400)
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
        wait_settled(mission.pk, timeout=60, what="the settlement")
        outbox = Notification.objects.filter(mission_id=mission.pk)
        emails = 1 + 1 + BACKERS  # the new mission; the creator's and each backer's result
        # Each email has failed, backed off and been tried again by the sweep at least once.
        wait_for(
            lambda: outbox.count() == emails and not outbox.filter(attempts__lt=2).exists(),
            timeout=60,
            what="every email to be retried while the provider is down",
        )
        assert not outbox.filter(sent_at__isnull=False).exists()
        assert not outbox.filter(failed_at__isnull=False).exists()
        assert mailbox.delivered() == {}
        refused = mailbox.refused()

        mailbox.down_flag.unlink()
        back = time.monotonic()
        wait_for(lambda: outbox.filter(sent_at__isnull=False).count() == emails, timeout=60, what="every email")
        recovered = time.monotonic() - back
        time.sleep(2)  # two more sweeps: nothing is sent again
        for process in processes.started:
            process.stop()

        delivered = mailbox.delivered()
        assert sum(delivered.values()) == emails and set(delivered.values()) == {1}, delivered
        assert {to for to, _ in delivered} == {u.email for u in [streamer, creator, *backers]}
        assert not outbox.filter(failed_at__isnull=False).exists()
        assert set(outbox.values_list("last_error", flat=True)) == {""}
        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == 1
        assert [wallet_balance(user_id=u.pk) for u in [creator, *backers]] == [1_000] * (1 + BACKERS)
        assert_sound()
        attempts = list(outbox.values_list("attempts", flat=True))
        fault_report.record(
            operations=1 + emails,
            faults=refused,
            lost=0,
            emails=emails,
            sends_refused_in_outage=refused,
            most_attempts=max(attempts),
            emails_sent=sum(delivered.values()),
            duplicate_emails=sum(n - 1 for n in delivered.values()),
            all_sent_after_recovery_s=round(recovered, 1),
        )
