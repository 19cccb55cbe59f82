"""The email crash window: a worker killed (SIGKILL) after the provider took a message and
before the outbox marks it sent. That one email goes out a second time, once its claim
(MISSIONHUB_EMAIL_CLAIM_SECONDS) has passed; every other email goes out exactly once,
the ones the dead worker never reached included, and none is lost."""

import os
import signal

import pytest

from ledger.models import Notification
from missions import services
from tests.accounts.factories import UserFactory
from tests.faults.harness import assert_sound, requires_redis_server, wait_for
from tests.ledger.factories import fund
from tests.missions.factories import make_mission

pytestmark = [
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

BACKERS = 6
CLAIM_SECONDS = "3"


class TestAWorkerKilledWhileSendingEmails:
    def test_only_the_email_in_flight_is_sent_twice_and_none_is_lost(self, broker, processes, mailbox, fault_report):
        streamer, creator = UserFactory(is_streamer=True), UserFactory()
        fund(creator, 1_000)
        mission = make_mission(streamer=streamer, creator=creator, amount=1_000, title="Crash window")
        backers = UserFactory.create_batch(BACKERS)
        for backer in backers:
            fund(backer, 1_000)
            services.pledge_create(mission_id=mission.pk, user_id=backer.pk, amount=200)
        users = {u.pk: u for u in [creator, *backers]}
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
        services.mission_settle(mission_id=mission.pk)  # here: the emails are the subject
        outbox = Notification.objects.filter(mission_id=mission.pk, kind="result")
        # The sender goes through the outbox in id order: it dies on the third of seven.
        in_flight = users[outbox.order_by("pk").values_list("user_id", flat=True)[2]]
        worker = processes.worker(  # not waited for: it hangs on the queued emails before any ping
            ready=False, MISSIONHUB_EMAIL_CLAIM_SECONDS=CLAIM_SECONDS, MISSIONHUB_FAULTS_MAIL_HANG_AFTER=in_flight.email
        )
        wait_for(
            lambda: any(to == in_flight.email for to, _ in mailbox.delivered()),
            timeout=60,
            what="the provider to take the email that will be in flight",
        )
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        unsent = set(outbox.filter(sent_at__isnull=True).values_list("user_id", flat=True))
        assert in_flight.pk in unsent  # taken by the provider, never marked sent
        assert len(unsent) > 1  # and the dead worker never reached the ones after it

        processes.worker(MISSIONHUB_EMAIL_CLAIM_SECONDS=CLAIM_SECONDS, MISSIONHUB_RESEND_GRACE_SECONDS="1")
        processes.beat(MISSIONHUB_EXPIRE_SWEEP_SECONDS="1")
        wait_for(lambda: not outbox.filter(sent_at__isnull=True).exists(), timeout=60, what="every result email")
        for process in processes.started:
            process.stop()

        delivered = mailbox.delivered()
        recipients = {u.email for u in [streamer, creator, *backers]}
        assert {to for to, _ in delivered} == recipients  # none lost
        twice = {to for (to, _), n in delivered.items() if n > 1}
        assert twice == {in_flight.email}, delivered
        assert delivered.most_common(1)[0][1] == 2
        assert_sound()
        fault_report.record(
            operations=len(recipients),
            faults=1,
            lost=0,
            emails=len(recipients),
            unsent_at_the_kill=len(unsent),
            sent_twice=len(twice),
            claim_s=int(CLAIM_SECONDS),
        )
