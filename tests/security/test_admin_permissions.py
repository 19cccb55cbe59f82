"""Staff in the admin: money rows are never edited by hand, and every action that moves
money needs its own permission, refused by HTTP status (issue 7 item 5, issue 8 item 1)."""

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse

from ledger.models import (
    Account,
    Event,
    IdempotencyRecord,
    Notification,
    Posting,
    SandboxCharge,
    TopupCharge,
    Transaction,
)
from ledger.selectors import wallet_balance
from missions import services
from missions.admin import MissionAdmin
from missions.models import Mission, SweepFailure
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases

pytestmark = both_databases

CHANGELIST = "/admin/missions/mission/"


def _staff(*codenames: str):
    """A staff member (not a superuser) holding exactly the `missions` permissions named."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="missions", codename__in=codenames))
    assert set(user.user_permissions.values_list("codename", flat=True)) == set(codenames)
    return user


def _row(model, pk: int) -> dict:
    return model.objects.filter(pk=pk).values().get()


def _money_rows() -> tuple[int, ...]:
    return (
        Transaction.objects.count(),
        Posting.objects.count(),
        Event.objects.count(),
        *Account.objects.order_by("pk").values_list("balance", flat=True),
    )


def _cancel(client, mission: Mission):
    return client.post(CHANGELIST, {"action": "cancel_missions", ACTION_CHECKBOX_NAME: [str(mission.pk)]})


@pytest.fixture
def mission():
    """A pending mission with 1,000 from its creator and 700 from a backer."""
    mission = make_mission(amount=1_000)
    backer = UserFactory()
    fund(backer, 1_000)  # the smallest top-up; 700 of it pledged
    services.pledge_create(mission_id=mission.pk, user_id=backer.pk, amount=700)
    mission.backer = backer
    return mission


class TestCancelAction:
    def test_a_staff_member_with_only_view_permission_is_refused_with_403_and_nothing_moves(
        self, client, mission, task_queue
    ):
        client.force_login(_staff("view_mission"))
        before_row, before_money = _row(Mission, mission.pk), _money_rows()

        response = _cancel(client, mission)
        task_queue.run_all()

        assert response.status_code == 403
        assert _row(Mission, mission.pk) == before_row
        assert _money_rows() == before_money
        assert not Event.objects.filter(mission_id=mission.pk, kind="cancelled").exists()
        assert task_queue.sent == []

    def test_the_action_is_not_offered_without_the_cancel_permission(self, client, mission):
        client.force_login(_staff("view_mission"))

        response = client.get(CHANGELIST)

        assert response.status_code == 200
        assert b'value="cancel_missions"' not in response.content

    def test_a_staff_member_with_the_cancel_permission_cancels_and_everyone_is_refunded(
        self, client, mission, task_queue, django_capture_on_commit_callbacks
    ):
        staff = _staff("view_mission", "cancel_mission")
        client.force_login(staff)
        assert b'value="cancel_missions"' in client.get(CHANGELIST).content

        with django_capture_on_commit_callbacks(execute=True):
            response = _cancel(client, mission)
        task_queue.run_all()

        assert response.status_code == 302
        mission.refresh_from_db()
        assert mission.status == Mission.Status.CANCELLED
        assert mission.settled_at is not None
        assert Event.objects.filter(mission_id=mission.pk, kind="cancelled", actor_id=staff.pk).count() == 1
        assert wallet_balance(user_id=mission.creator_id) == 1_000
        assert wallet_balance(user_id=mission.backer.pk) == 1_000
        assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == 0

    def test_the_cancel_permission_is_declared_on_the_mission_model(self):
        assert ("cancel_mission", "Can cancel a mission and refund its contributors") in Mission._meta.permissions
        assert Permission.objects.filter(content_type__app_label="missions", codename="cancel_mission").exists()


class TestMissionsAreNotEditable:
    def test_a_superusers_save_on_the_change_page_is_refused_and_the_row_is_unchanged(self, client, mission):
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        url = reverse("admin:missions_mission_change", args=[mission.pk])
        assert client.get(url).status_code == 200  # staff still see it
        before = _row(Mission, mission.pk)

        response = client.post(url, {"_save": "Save"})

        assert response.status_code == 403
        assert _row(Mission, mission.pk) == before

    def test_a_stale_save_cannot_undo_a_decision_and_its_settlement(
        self, client, mission, monkeypatch, task_queue, django_capture_on_commit_callbacks
    ):
        # Issue 8 item 1: the admin reads the row, then a `fail` decision and its settlement
        # commit, then the admin's Save writes the row it read. Here the admin's read is
        # made to return the row as it was before the decision.
        stale = Mission.objects.get(pk=mission.pk)
        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=mission.pk, user_id=mission.streamer_id, action="fail")
        task_queue.run_all()
        decided = _row(Mission, mission.pk)
        assert decided["status"] == "failed"
        assert decided["settled_at"] is not None
        monkeypatch.setattr(MissionAdmin, "get_object", lambda self, request, object_id, from_field=None: stale)
        client.force_login(UserFactory(is_staff=True, is_superuser=True))

        response = client.post(reverse("admin:missions_mission_change", args=[mission.pk]), {"_save": "Save"})

        assert response.status_code == 403
        assert _row(Mission, mission.pk) == decided

    def test_no_one_may_add_change_or_delete_a_mission_in_the_admin(self):
        request = RequestFactory().get(CHANGELIST)
        request.user = UserFactory(is_staff=True, is_superuser=True)
        model_admin = admin.site._registry[Mission]

        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert model_admin.has_view_permission(request)


LEDGER_MODELS = [Account, Transaction, Event, Notification, IdempotencyRecord, TopupCharge, SandboxCharge]


class TestLedgerIsNotEditable:
    # and what the sweep records: written only by the sweep
    @pytest.mark.parametrize("model", [*LEDGER_MODELS, SweepFailure], ids=lambda m: m.__name__)
    def test_no_one_may_add_change_or_delete_a_ledger_row_in_the_admin(self, model):
        request = RequestFactory().get("/admin/")
        request.user = UserFactory(is_staff=True, is_superuser=True)
        model_admin = admin.site._registry[model]

        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert model_admin.has_view_permission(request)

    def test_every_ledger_and_missions_model_in_the_admin_is_covered_here(self):
        registered = {m for m in admin.site._registry if m._meta.app_label in ("ledger", "missions")}

        assert registered == {*LEDGER_MODELS, Mission, SweepFailure}
        assert Posting not in admin.site._registry  # postings show only inside their transaction

    @pytest.mark.parametrize("model", LEDGER_MODELS, ids=lambda m: m.__name__)
    def test_a_superusers_post_to_a_ledger_change_page_is_refused_and_nothing_changes(
        self, client, mission, model, task_queue, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            services.mission_decide(mission_id=mission.pk, user_id=mission.streamer_id, action="fail")
        task_queue.run_all()  # settled, and the emails queued in the outbox
        IdempotencyRecord.objects.create(user_id=mission.creator_id, key="k", fingerprint="f", status_code=201, body={})
        row = model.objects.order_by("pk").first()
        before, money = _row(model, row.pk), _money_rows()
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        url = reverse(f"admin:ledger_{model._meta.model_name}_change", args=[row.pk])

        response = client.post(url, {"_save": "Save", "balance": "999999", "amount": "999999"})

        assert response.status_code == 403
        assert _row(model, row.pk) == before
        assert _money_rows() == money

    def test_the_postings_inline_is_read_only(self, client, mission):
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        tx = Transaction.objects.filter(mission_id=mission.pk).order_by("pk").first()

        response = client.get(reverse("admin:ledger_transaction_change", args=[tx.pk]))

        assert response.status_code == 200
        assert b'name="postings-0-amount"' not in response.content
        assert b'name="posting_set-0-amount"' not in response.content
