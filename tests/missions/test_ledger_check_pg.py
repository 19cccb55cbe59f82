"""The worker's ledger check reads one snapshot of the ledger, read-only: PostgreSQL only
(SQLite runs it statement by statement; see missions/ledger_checks.py)."""

import pytest

from ledger.models import Account
from missions import ledger_checks
from missions.models import LedgerCheck
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.utils import requires_postgresql, run_together

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True, databases=["default", "accounts"])]


def _counts_around_a_top_up_elsewhere() -> dict[str, list[str]]:
    """A stand-in for ledger_verify: counts wallets, lets another connection commit a new
    one, counts again."""
    before = Account.objects.filter(kind=Account.Kind.WALLET).count()
    (error,) = run_together([lambda: fund(UserFactory(), 1_000)])
    assert error is None
    after = Account.objects.filter(kind=Account.Kind.WALLET).count()
    return {"one snapshot": [] if before == after else [f"{before} wallets, then {after}"]}


def test_the_check_sees_one_state_of_the_ledger(monkeypatch):
    assert _counts_around_a_top_up_elsewhere()["one snapshot"] == ["0 wallets, then 1"]  # outside: it moves
    monkeypatch.setattr(ledger_checks, "ledger_verify", _counts_around_a_top_up_elsewhere)

    check = ledger_checks.ledger_check_run()

    assert check.ok is True
    assert check.results == [{"name": "one snapshot", "count": 0, "sample": []}]
    assert Account.objects.filter(kind=Account.Kind.WALLET).count() == 2


def test_the_check_cannot_write(monkeypatch):
    def writes():
        LedgerCheck.objects.create(trigger=LedgerCheck.Trigger.SCHEDULE)
        return {}

    monkeypatch.setattr(ledger_checks, "ledger_verify", writes)

    with pytest.raises(Exception, match="read-only transaction"):
        ledger_checks.ledger_check_run()

    (check,) = LedgerCheck.objects.all()
    assert check.ok is False
    assert "read-only transaction" in check.error
