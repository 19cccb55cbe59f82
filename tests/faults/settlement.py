"""A crowded refund stopped in the middle, on PostgreSQL: the tools the SIGKILL and the
pg_terminate_backend tests share."""

from ledger.models import Account, Event, Notification, Posting, Transaction
from missions import services
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.faults.crowd import backer_ids, make_crowded_mission_sql
from tests.faults.harness import PgOperator, wait_for

CROWD = 10_000
PLEDGE = 100  # each backer's, besides the creator's 1,000
EVENT_TABLE = Event._meta.db_table


def crowded_mission_failed() -> Mission:
    """A mission of CROWD backers, failed by its streamer: its refund is queued."""
    streamer = UserFactory(is_streamer=True)
    mission = make_crowded_mission_sql(contributors=CROWD, amount=PLEDGE, streamer=streamer)
    services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action="fail")
    return mission


def ledger_rows(mission_id: int) -> dict[str, object]:
    """Everything a settlement of the mission would change."""
    escrow = Account.objects.get(kind="escrow", mission_id=mission_id)
    mission = Mission.objects.get(pk=mission_id)
    return {
        "postings": Posting.objects.count(),
        "transactions": Transaction.objects.count(),
        "emails": Notification.objects.filter(mission_id=mission_id).count(),
        "events": Event.objects.filter(mission_id=mission_id).count(),
        "escrow": (escrow.balance, escrow.version),
        "refunded wallets": Account.objects.filter(kind="wallet", balance__gt=0).count(),
        "settled_at": mission.settled_at,
    }


def blocked_before_its_event(pg_operator: PgOperator, *, written: tuple, what: str, timeout: float) -> dict:
    """A backend waiting (on the EVENT_TABLE lock the caller holds) to append its event,
    with the tables of `written` already written in its transaction, not committed."""
    blocked = wait_for(
        lambda: pg_operator.waiting_backend(statement_prefix=f'INSERT INTO "{EVENT_TABLE}"'),
        timeout=timeout,
        what=what,
        interval=0.02,
    )
    assert blocked["has_written"]
    for model in written:
        assert pg_operator.holds_write_lock(blocked["pid"], model._meta.db_table), model
    return blocked


def blocked_settlement(pg_operator: PgOperator) -> dict:
    """The worker's settlement, waiting to append `settled`: the refund's legs, the
    balances, the emails and `settled_at` are written, not committed."""
    return blocked_before_its_event(
        pg_operator,
        written=(Posting, Account, Notification, Mission),
        what="the settlement to reach its last statement",
        timeout=90,
    )


def assert_refunded_once(mission: Mission) -> None:
    mission.refresh_from_db()
    assert mission.settled_at is not None
    (refund,) = Transaction.objects.filter(mission_id=mission.pk, kind__in=["refund", "payout"])
    assert refund.kind == "refund"
    assert Posting.objects.filter(transaction=refund).count() == CROWD + 2  # the creator's and the escrow's
    assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == 0
    backers = Account.objects.filter(kind="wallet", user_id__range=backer_ids(mission.pk))
    assert backers.count() == CROWD
    assert backers.filter(balance=PLEDGE).count() == CROWD  # exactly what each put in
    assert Account.objects.get(kind="wallet", user_id=mission.creator_id).balance == 1_000
    assert Event.objects.filter(mission_id=mission.pk, kind="settled").count() == 1
    assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == CROWD + 1
