"""A crowded refund stopped in the middle, on PostgreSQL: the tools the SIGKILL and the
pg_terminate_backend tests share."""

from django.conf import settings

from ledger.models import Account, Contribution, Event, Notification, Posting, Transaction
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


def chunks_of(contributors: int) -> int:
    return -(-contributors // settings.MISSIONHUB_SETTLE_CHUNK)


def ledger_rows_with_all_chunks_but_the_last(mission_id: int) -> dict[str, object]:
    """What a settlement has left once every chunk of the refund but the last committed
    (the worker's default chunk size, as the test's): the last chunk is the one the tests
    stop and kill, with its legs, balances, emails and `settled_at` written, not committed."""
    mission = Mission.objects.get(pk=mission_id)
    contributors = CROWD + 1  # the creator too
    chunk = settings.MISSIONHUB_SETTLE_CHUNK
    committed = (chunks_of(contributors) - 1) * chunk
    by_user = list(
        Contribution.objects.filter(mission_id=mission_id).order_by("user_id").values_list("total", flat=True)
    )
    escrow = Account.objects.get(kind="escrow", mission_id=mission_id)
    return {
        "cursor is past the committed chunks": mission.settle_cursor
        == Contribution.objects.filter(mission_id=mission_id)
        .order_by("user_id")
        .values_list("user_id", flat=True)[committed - 1],
        "refund transactions": Transaction.objects.filter(mission_id=mission_id, kind="refund").count(),
        "emails": Notification.objects.filter(mission_id=mission_id, kind="result").count(),
        "escrow": escrow.balance,
        "settled_at": mission.settled_at,
        "expected": {
            "refund transactions": chunks_of(contributors) - 1,
            "emails": committed,
            "escrow": sum(by_user[committed:]),
        },
    }


def assert_all_chunks_but_the_last(mission_id: int) -> None:
    rows = ledger_rows_with_all_chunks_but_the_last(mission_id)
    expected = rows.pop("expected")
    assert rows.pop("cursor is past the committed chunks")
    assert rows.pop("settled_at") is None
    assert rows == expected


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
    """The worker's settlement, waiting to append `settled` in its last chunk: the earlier
    chunks committed; the last chunk's legs, balances, emails and `settled_at` are written,
    not committed."""
    return blocked_before_its_event(
        pg_operator,
        written=(Posting, Account, Notification, Mission),
        what="the settlement to reach its last statement",
        timeout=90,
    )


def assert_refunded_once(mission: Mission) -> None:
    """Settled, refunded in its chunks, every contributor exactly once and exactly."""
    mission.refresh_from_db()
    assert mission.settled_at is not None
    assert not Transaction.objects.filter(mission_id=mission.pk, kind="payout").exists()
    refunds = Transaction.objects.filter(mission_id=mission.pk, kind="refund")
    assert refunds.count() == chunks_of(CROWD + 1)
    wallet_legs = Posting.objects.filter(transaction__in=refunds, account__kind="wallet")
    assert wallet_legs.count() == CROWD + 1  # each backer's and the creator's, once
    assert Account.objects.get(kind="escrow", mission_id=mission.pk).balance == 0
    backers = Account.objects.filter(kind="wallet", user_id__range=backer_ids(mission.pk))
    assert backers.count() == CROWD
    assert backers.filter(balance=PLEDGE).count() == CROWD  # exactly what each put in
    assert Account.objects.get(kind="wallet", user_id=mission.creator_id).balance == 1_000
    assert Event.objects.filter(mission_id=mission.pk, kind="settled").count() == 1
    assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == CROWD + 1
