"""The same task delivered more than once, to two real workers at the same time: the
mission is settled once and each email goes out once (a broker redelivers a message whose
worker vanished before acknowledging it; the sweep sends again work it thinks is lost)."""

import uuid

import pytest

from ledger.models import Notification, Transaction
from ledger.selectors import wallet_balance
from missionhub.celery import app as celery_app
from missions import services
from tests.accounts.factories import UserFactory
from tests.faults.harness import assert_sound, requires_redis_server, task_results, wait_for, wait_settled
from tests.ledger.factories import fund
from tests.missions.factories import make_mission

pytestmark = [
    requires_redis_server,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

BACKERS = 20


def send_twice(name: str, *, mission_id: int) -> None:
    """The same message twice: one task id, as a redelivery carries it."""
    task_id = str(uuid.uuid4())
    for _ in range(2):
        celery_app.send_task(name, kwargs={"mission_id": mission_id}, task_id=task_id)


class TestTheSameTaskDeliveredTwice:
    def test_two_workers_settle_once_and_send_each_email_once(self, broker, processes, mailbox, fault_report):
        streamer = UserFactory(is_streamer=True)
        creator = UserFactory()
        fund(creator, 1_000)
        mission = make_mission(streamer=streamer, creator=creator, amount=1_000, title="Duplicates")
        backers = UserFactory.create_batch(BACKERS)
        for backer in backers:
            fund(backer, 1_000)
            services.pledge_create(mission_id=mission.pk, user_id=backer.pk, amount=300)
        pot = 1_000 + 300 * BACKERS

        # Decided with no worker running: the settlement's message waits in the queue with
        # its two duplicates, and the two workers start on them together.
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="success")
        send_twice("missions.settle_mission", mission_id=mission.pk)
        workers = [processes.worker(ready=False, MAIL_DELAY="0.05") for _ in range(2)]
        for worker in workers:
            worker.wait_until_ready()
        wait_settled(mission.pk, timeout=60, what="the settlement")
        # The settlement's own message to send the emails is on its way; two more, at once.
        send_twice("missions.notify_contributors", mission_id=mission.pk)
        emails = 1 + (BACKERS + 1) + 1  # the new mission, each backer's result, the payout
        wait_for(
            lambda: Notification.objects.filter(mission_id=mission.pk, sent_at__isnull=False).count() == emails,
            timeout=60,
            what="every email",
        )
        logs = [worker.log for worker in workers]
        wait_for(
            lambda: len(task_results(*logs, name="missions.notify_contributors")) == 3,
            timeout=30,
            what="the three email tasks to finish",
        )
        for worker in workers:
            worker.stop()

        settles = task_results(*logs, name="missions.settle_mission")
        assert sorted(settles) == ["False", "False", "True"]
        sends = task_results(*logs, name="missions.notify_contributors")
        assert sum(int(sent) for sent in sends) == emails - 1
        assert Transaction.objects.filter(mission_id=mission.pk, kind="payout").count() == 1
        assert wallet_balance(user_id=streamer.pk) == pot
        delivered = mailbox.delivered()
        assert sum(delivered.values()) == emails and set(delivered.values()) == {1}, delivered
        assert {to for to, _ in delivered} == {u.email for u in [streamer, creator, *backers]}
        outbox = Notification.objects.filter(mission_id=mission.pk)
        assert list(outbox.values_list("attempts", flat=True).distinct()) == [1]
        assert_sound()
        senders = {r["pid"] for r in mailbox.records() if r["subject"].startswith("Mission succeeded")}
        fault_report.record(
            operations=1 + emails,
            faults=2 + 2,
            lost=0,
            settle_deliveries=len(settles),
            settlements=settles.count("True"),
            email_task_deliveries=len(sends),
            emails_sent=sum(delivered.values()),
            duplicate_emails=sum(n - 1 for n in delivered.values()),
            workers_sending_results=len(senders),
        )
