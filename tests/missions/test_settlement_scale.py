"""Settlement at any size: exactly once, the same statements at 25 or 40,000 contributors,
and no statement whose parameter list grows with the crowd (SQLite refuses more than
32,766 variables in one statement: a 33,000-contributor refund used to fail there and be
re-queued forever with the cash stuck in escrow)."""

import sqlite3
from contextlib import contextmanager

import pytest
from django.db import connections

from ledger.models import Account, Notification, Posting, Transaction
from ledger.selectors import wallet_balance
from missions import services
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.missions.factories import make_crowded_mission

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "accounts"])


@contextmanager
def statements(alias: str = "default"):
    """Every statement run on `alias` inside the block, as (sql, number of parameters)."""
    seen: list[tuple[str, int]] = []

    def record(execute, sql, params, many, context):
        seen.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(record):
        yield seen


def _decided(contributors: int, action: str, **kw) -> tuple[Mission, object]:
    streamer = UserFactory(is_streamer=True)
    mission = make_crowded_mission(contributors=contributors, streamer=streamer, **kw)
    services.mission_decide(mission_id=mission.pk, user_id=streamer.pk, action=action)
    return mission, streamer


def _settle_counting(mission_id: int) -> list[tuple[str, int]]:
    with statements() as seen:
        assert services.mission_settle(mission_id=mission_id) is True
    return seen


# What a settlement runs on `default`, whatever the number of contributors: the same
# statements for every chunk of MISSIONHUB_SETTLE_CHUNK contributors, and a fixed number
# around them. PostgreSQL locks each chunk's wallets with one SELECT ... FOR UPDATE; SQLite
# has no such lock (its BEGIN IMMEDIATE, counted here, holds the only write lock).
CHUNK = 1_000
REFUND_STATEMENTS = {"postgresql": (9, 8), "sqlite": (10, 9)}  # (the last chunk's, each other chunk's)
PAYOUT_STATEMENTS = {"postgresql": (19, 5), "sqlite": (20, 6)}


def _expected(statements: dict, contributors: int) -> int:
    last, each = statements[connections["default"].vendor]
    return last + each * ((contributors + 1) // CHUNK)  # the creator is a contributor too


class TestSettlementRunsTheSameStatementsAtAnySize:
    @pytest.mark.parametrize("contributors", [25, 5_000])
    def test_a_refund(self, contributors, settings):
        settings.MISSIONHUB_SETTLE_CHUNK = CHUNK
        mission, _ = _decided(contributors, "fail")

        seen = _settle_counting(mission.pk)

        assert len(seen) == _expected(REFUND_STATEMENTS, contributors), [sql for sql, _ in seen]
        assert max(n for _, n in seen) <= 20
        legs = Posting.objects.filter(transaction__mission_id=mission.pk, transaction__kind="refund")
        assert legs.filter(account__kind="wallet").count() == contributors + 1  # the creator too
        assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == contributors + 1

    @pytest.mark.parametrize("contributors", [25, 5_000])
    def test_a_payout(self, contributors, settings):
        settings.MISSIONHUB_SETTLE_CHUNK = CHUNK
        settings.MISSIONHUB_FEE_BPS = 500
        mission, streamer = _decided(contributors, "success")

        seen = _settle_counting(mission.pk)

        assert len(seen) == _expected(PAYOUT_STATEMENTS, contributors), [sql for sql, _ in seen]
        assert max(n for _, n in seen) <= 20
        pot = 1_000 + 100 * contributors
        assert wallet_balance(user_id=streamer.pk) == pot - pot * 500 // 10_000
        assert Notification.objects.filter(mission_id=mission.pk, kind="result").count() == contributors + 1
        assert Notification.objects.filter(mission_id=mission.pk, kind="payout", user_id=streamer.pk).count() == 1


@pytest.fixture
def sqlite_default_variable_limit():
    """SQLite's own default of 32,766 variables per statement. Debian's build raises it to
    250,000, which hid the defect here; other builds (and Python's own on some systems)
    keep the default."""
    connection = connections["default"]
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    before = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    yield
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


class TestALargeRefund:
    def test_refunds_forty_thousand_contributors_exactly_once(self, sqlite_default_variable_limit, settings):
        mission, _ = _decided(40_000, "fail", with_users=False)
        escrow = Account.objects.get(kind="escrow", mission_id=mission.pk)

        assert services.mission_settle(mission_id=mission.pk) is True
        assert services.mission_settle(mission_id=mission.pk) is False

        mission.refresh_from_db()
        assert mission.settled_at is not None
        escrow.refresh_from_db()
        assert escrow.balance == 0
        refunded = Account.objects.filter(kind="wallet", user_id__gte=10_000_000 * mission.pk, balance=100)
        assert refunded.count() == 40_000
        chunks = -(-40_001 // settings.MISSIONHUB_SETTLE_CHUNK)
        assert Transaction.objects.filter(mission_id=mission.pk, kind="refund").count() == chunks
