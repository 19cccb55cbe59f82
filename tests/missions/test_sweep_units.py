"""The sweep: each mission's close, settle and email is its own unit of work (issue 8,
items 2 and 9). One that fails is logged, recorded, counted and retried with backoff,
and never holds up the others; work already queued is not queued again."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from ledger.models import IdempotencyRecord, Notification
from ledger.selectors import wallet_balance
from missions import monitoring, services
from missions.metrics import MissionHubCollector
from missions.models import Mission, SweepFailure
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases

real_close = services._close


def _overdue(*missions):
    Mission.objects.filter(pk__in=[m.pk for m in missions]).update(deadline=timezone.now() - timedelta(seconds=1))


def _decided_long_ago(mission, **extra):
    Mission.objects.filter(pk=mission.pk).update(decided_at=timezone.now() - timedelta(minutes=5), **extra)


def _close_failing_for(mission_id):
    def close(mission, **kwargs):
        if mission.pk == mission_id:
            raise RuntimeError("the disk is full")
        return real_close(mission, **kwargs)

    return mock.patch.object(services, "_close", side_effect=close)


def _old_idempotency_record(user):
    record = IdempotencyRecord.objects.create(user_id=user.pk, key="old", fingerprint="x", status_code=201, body={})
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=2))


def _metric(name, **labels):
    for family in MissionHubCollector().collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


class TestOneFailingMissionBlocksNothing:
    def test_a_mission_that_cannot_close_leaves_the_others_to_expire_settle_and_purge(
        self, task_queue, caplog, django_capture_on_commit_callbacks
    ):
        viewer = UserFactory()
        fund(viewer, 10_000)
        broken = make_mission(amount=1_000)
        healthy = make_mission(creator=viewer, amount=2_000)
        _overdue(broken, healthy)
        _old_idempotency_record(viewer)

        with _close_failing_for(broken.pk), django_capture_on_commit_callbacks(execute=True):
            report = services.missions_sweep(batch_size=10)
        task_queue.run_all()

        assert report.expired == 1
        assert report.idempotency_purged == 1
        assert Mission.objects.get(pk=healthy.pk).status == "expired"
        assert Mission.objects.get(pk=healthy.pk).settled_at is not None
        assert wallet_balance(user_id=viewer.pk) == 10_000
        assert Mission.objects.get(pk=broken.pk).status == "pending"
        failure = SweepFailure.objects.get(mission=broken)
        assert (failure.step, failure.attempts, failure.resolved_at) == ("expire", 1, None)
        assert failure.retry_at > timezone.now()
        assert "the disk is full" in failure.last_error
        assert f"expire of mission {broken.pk} failed" in caplog.text

    def test_a_failing_mission_is_retried_after_a_doubling_backoff_then_resolved(
        self, task_queue, django_capture_on_commit_callbacks
    ):
        broken = make_mission()
        _overdue(broken)

        with _close_failing_for(broken.pk):
            services.missions_sweep(batch_size=10)
            first = SweepFailure.objects.get(mission=broken)
            services.missions_sweep(batch_size=10)  # still backing off: not tried
            assert SweepFailure.objects.get(mission=broken).attempts == 1
            SweepFailure.objects.filter(pk=first.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
            services.missions_sweep(batch_size=10)
        second = SweepFailure.objects.get(mission=broken)
        assert (second.attempts, second.consecutive) == (2, 2)
        assert second.retry_at - second.failed_at > first.retry_at - first.failed_at

        SweepFailure.objects.filter(pk=first.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            report = services.missions_sweep(batch_size=10)
        task_queue.run_all()

        assert report.expired == 1
        assert Mission.objects.get(pk=broken.pk).settled_at is not None
        resolved = SweepFailure.objects.get(mission=broken)
        assert resolved.resolved_at is not None and resolved.consecutive == 0
        assert resolved.attempts == 2  # the count of failures stays: /metrics reports it as a counter

    @pytest.mark.parametrize("seconds", [15, 120])
    def test_the_first_wait_before_a_retry_is_a_setting(self, task_queue, settings, seconds):
        if seconds != 15:
            settings.MISSIONHUB_SWEEP_RETRY_SECONDS = seconds
        broken = make_mission()
        _overdue(broken)

        with _close_failing_for(broken.pk):
            services.missions_sweep(batch_size=10)

        failure = SweepFailure.objects.get(mission=broken)
        assert failure.retry_at - failure.failed_at == timedelta(seconds=seconds)

    def test_failures_are_counted_on_metrics_and_shown_on_the_monitoring_page(self, task_queue):
        broken = make_mission()
        _overdue(broken)
        with _close_failing_for(broken.pk):
            services.missions_sweep(batch_size=10)

        assert _metric("missionhub_sweep_failures_total", step="expire") == 1
        assert _metric("missionhub_sweep_failing", step="expire") == 1
        assert _metric("missionhub_sweep_failing", step="settle") == 0
        panel = monitoring.sweep_panel(now=timezone.now())
        assert [fact.value for fact in panel.facts] == ["1"]
        assert [item.href for item in panel.items] == [f"/missions/{broken.pk}"]

    def test_a_settlement_that_raises_is_recorded_and_not_sent_again_while_it_backs_off(self, task_queue):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
        task_queue.sent.clear()

        with mock.patch.object(services, "mission_settle", side_effect=RuntimeError("deadlock")):
            assert services.mission_settle_unit(mission_id=mission.pk) is False
        _decided_long_ago(mission)
        services.missions_sweep(batch_size=10)

        assert task_queue.names() == []
        assert SweepFailure.objects.get(mission=mission, step="settle").attempts == 1

        SweepFailure.objects.filter(mission=mission).update(retry_at=timezone.now() - timedelta(seconds=1))
        services.missions_sweep(batch_size=10)
        task_queue.run_all()
        assert Mission.objects.get(pk=mission.pk).settled_at is not None
        assert SweepFailure.objects.get(mission=mission, step="settle").resolved_at is not None

    def test_a_step_that_raises_does_not_stop_the_steps_after_it(self, task_queue):
        viewer = UserFactory()
        _old_idempotency_record(viewer)

        with mock.patch.object(services, "_resend_settlements", side_effect=RuntimeError("broker down")):
            report = services.missions_sweep(batch_size=10)

        assert report.failed_steps == ("settlements_enqueued",)
        assert report.idempotency_purged == 1


class TestEnqueueOnce:
    def test_an_unsettled_mission_is_sent_again_once_per_grace_period(self, task_queue, settings):
        settings.MISSIONHUB_RESEND_GRACE_SECONDS = 30
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")  # its message is lost
        task_queue.sent.clear()
        _decided_long_ago(mission)

        for _ in range(3):
            services.missions_sweep(batch_size=10)
        assert task_queue.names() == ["missions.settle_mission"]

        Mission.objects.filter(pk=mission.pk).update(settle_enqueued_at=timezone.now() - timedelta(seconds=31))
        services.missions_sweep(batch_size=10)
        assert task_queue.names() == ["missions.settle_mission"] * 2

    def test_a_freshly_decided_mission_is_not_sent_again(self, task_queue):
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
        task_queue.sent.clear()

        report = services.missions_sweep(batch_size=10)

        assert report.settlements_enqueued == 0
        assert task_queue.names() == []

    def test_unsent_emails_are_sent_again_once_per_grace_period_and_go_out_once(self, task_queue, settings):
        settings.MISSIONHUB_RESEND_GRACE_SECONDS = 30
        streamer = UserFactory(is_streamer=True)
        mission = make_mission(streamer=streamer)
        task_queue.sent.clear()  # the streamer's email task is lost
        Notification.objects.filter(mission_id=mission.pk).update(created_at=timezone.now() - timedelta(minutes=5))

        reports = [services.missions_sweep(batch_size=10) for _ in range(3)]
        assert [r.emails_enqueued for r in reports] == [1, 0, 0]
        Notification.objects.filter(mission_id=mission.pk).update(enqueued_at=timezone.now() - timedelta(seconds=31))
        assert services.missions_sweep(batch_size=10).emails_enqueued == 1

        task_queue.run_all()
        assert [m.to for m in mail.outbox] == [[streamer.email]]


@pytest.mark.django_db(transaction=True, databases=["default", "accounts"])
def test_an_email_task_that_breaks_is_recorded_for_the_mission(task_queue):
    mission = make_mission()
    with mock.patch.object(services, "missions_attach_usernames", side_effect=RuntimeError("accounts database gone")):
        assert services.mission_emails_unit(mission_id=mission.pk, kinds=("mission_created",)) == 0
    assert SweepFailure.objects.get(mission=mission).step == "email"

    assert services.mission_emails_unit(mission_id=mission.pk, kinds=("mission_created",)) == 1
    assert SweepFailure.objects.get(mission=mission).resolved_at is not None


def test_the_monitoring_page_lists_what_the_sweep_is_retrying(client, task_queue):
    broken = make_mission()
    _overdue(broken)
    with _close_failing_for(broken.pk):
        services.missions_sweep(batch_size=10)
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/staff/monitoring")

    assert response.status_code == 200
    assert f'href="/missions/{broken.pk}">#{broken.pk}</a> · Close (expire) · 1 try'.encode() in response.content
    assert b"RuntimeError: the disk is full" in response.content
