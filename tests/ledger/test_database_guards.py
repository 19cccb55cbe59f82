"""The database itself refuses to rewrite history or to commit an unbalanced transaction,
whatever code writes to it: on PostgreSQL pgtrigger's triggers, on SQLite our own
(ledger/sqlite_guards.py). These run on both backends."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from ledger.models import Account, Event, Posting, Transaction
from ledger.services import event_append, transaction_post, wallet_get_or_create
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.utils import ALL_DATABASES, both_databases

pytestmark = both_databases

# What each backend says when it refuses.
REFUSED = r"append-only|pgtrigger|FOREIGN KEY|do not sum to zero"


@pytest.fixture
def funded(db):
    user = UserFactory()
    fund(user, 5_000)
    with transaction.atomic():
        event_append(mission_id=1, kind=Event.Kind.PLEDGED, actor_id=user.pk, amount=5)
    return user


def _history():
    return (
        list(Transaction.objects.order_by("pk").values_list("pk", "kind", "reference")),
        list(Posting.objects.order_by("pk").values_list("pk", "transaction_id", "account_id", "amount")),
        list(Event.objects.order_by("pk").values_list("pk", "kind", "amount")),
    )


class TestHistoryCannotBeRewritten:
    def test_refuses_bulk_create_that_updates_a_posting_on_conflict(self, funded):
        posting = Posting.objects.order_by("pk").first()
        before = _history()

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            Posting.objects.bulk_create(
                [
                    Posting(
                        pk=posting.pk,
                        transaction_id=posting.transaction_id,
                        account_id=posting.account_id,
                        amount=posting.amount + 1_000,
                        balance_after=posting.balance_after + 1_000,
                        version=posting.version,
                    )
                ],
                update_conflicts=True,
                unique_fields=["id"],
                update_fields=["amount", "balance_after"],
            )

        assert _history() == before

    @pytest.mark.parametrize("model", [Transaction, Posting, Event])
    def test_refuses_an_update_through_the_base_manager(self, funded, model):
        before = _history()

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            model._base_manager.all().update(**({"kind": "refund"} if model is Transaction else {"amount": 1}))

        assert _history() == before

    @pytest.mark.parametrize("model", [Transaction, Posting, Event])
    def test_refuses_a_delete_through_the_base_manager(self, funded, model):
        before = _history()

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            # _raw_delete: one DELETE statement, no Python-side cascade or signals.
            model._base_manager.all()._raw_delete(using="default")

        assert _history() == before

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE ledger_posting SET amount = amount + 1",
            "UPDATE ledger_posting SET account_id = account_id",
            "DELETE FROM ledger_posting",
            "UPDATE ledger_transaction SET kind = 'refund'",
            "DELETE FROM ledger_transaction",
            "UPDATE ledger_event SET amount = 0",
            "DELETE FROM ledger_event",
        ],
    )
    def test_refuses_raw_sql_that_updates_or_deletes(self, funded, sql):
        before = _history()

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)

        assert _history() == before

    @pytest.mark.skipif(connection.vendor != "sqlite", reason="INSERT OR REPLACE is SQLite's own syntax")
    @pytest.mark.parametrize(
        "sql",
        [
            # REPLACE deletes the row it collides with, and SQLite fires no DELETE trigger
            # for that (unless recursive_triggers is on), so the guard is on the INSERT.
            "INSERT OR REPLACE INTO ledger_posting (id, transaction_id, account_id, amount, balance_after, version)"
            " SELECT id, transaction_id, account_id, amount, balance_after, version FROM ledger_posting",
            "INSERT OR REPLACE INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)"
            " SELECT transaction_id, account_id, amount, balance_after, version FROM ledger_posting",
            "INSERT OR REPLACE INTO ledger_transaction (id, kind, mission_id, actor_id, reference, created_at)"
            " SELECT id, kind, mission_id, actor_id, reference, created_at FROM ledger_transaction",
            "INSERT OR REPLACE INTO ledger_transaction (kind, mission_id, actor_id, reference, created_at)"
            " SELECT kind, mission_id, actor_id, reference, created_at FROM ledger_transaction",
            "INSERT OR REPLACE INTO ledger_event (id, mission_id, kind, actor_id, amount, created_at)"
            " SELECT id, mission_id, kind, actor_id, 0, created_at FROM ledger_event",
        ],
    )
    def test_refuses_insert_or_replace_over_an_existing_row(self, funded, sql):
        before = _history()

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)

        assert _history() == before


def _unbalanced_by_raw_sql(cursor, *, account_id: int, legs: list[int]) -> None:
    cursor.execute(
        "INSERT INTO ledger_transaction (kind, created_at) VALUES ('reversal', CURRENT_TIMESTAMP)",
    )
    cursor.execute("SELECT MAX(id) FROM ledger_transaction")
    (tx_id,) = cursor.fetchone()
    for version, amount in enumerate(legs, start=10_000):
        cursor.execute(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount, balance_after, version)"
            " VALUES (%s, %s, %s, 0, %s)",
            [tx_id, account_id, amount, version],
        )


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
class TestAnUnbalancedTransactionCannotCommit:
    """Real commits (transaction=True): the zero-sum check runs when the transaction commits."""

    @pytest.mark.parametrize(
        "legs",
        [
            pytest.param(
                [],
                marks=pytest.mark.skipif(
                    connection.vendor != "sqlite",
                    reason="PostgreSQL checks each transaction that got postings; one with none is ledger_verify's",
                ),
            ),
            [10],
            [10, -9],
            [10, -10, 5],
        ],
    )
    def test_refuses_to_commit_raw_sql_whose_legs_do_not_sum_to_zero(self, legs):
        user = UserFactory()
        fund(user, 5_000)
        wallet = Account.objects.get(kind="wallet", user_id=user.pk)
        before = _history()

        # The commit at the end of atomic() raises.
        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
            _unbalanced_by_raw_sql(cursor, account_id=wallet.pk, legs=legs)

        assert _history() == before

    def test_refuses_an_unbalanced_transaction_written_by_the_orm(self):
        user = UserFactory()
        fund(user, 5_000)
        wallet = Account.objects.get(kind="wallet", user_id=user.pk)
        before = _history()

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            tx = Transaction.objects.create(kind=Transaction.Kind.REVERSAL)
            Posting.objects.bulk_create(
                [Posting(transaction=tx, account=wallet, amount=7, balance_after=5_007, version=2)]
            )

        assert _history() == before

    def test_a_balanced_transaction_added_in_pieces_commits(self):
        user = UserFactory()
        fund(user, 5_000)
        other = UserFactory()
        fund(other, 1_000)

        with transaction.atomic():
            transaction_post(
                kind=Transaction.Kind.REVERSAL,
                legs={wallet_get_or_create(user_id=user.pk).pk: -300, wallet_get_or_create(user_id=other.pk).pk: 300},
            )

        assert Transaction.objects.filter(kind=Transaction.Kind.REVERSAL).count() == 1

    def test_the_guards_survive_the_test_suites_flush(self):
        user = UserFactory()
        fund(user, 5_000)

        call_command("flush", interactive=False, database="default", verbosity=0)
        fund(UserFactory(), 2_000)

        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_posting SET amount = amount + 1")
        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
            _unbalanced_by_raw_sql(cursor, account_id=Account.objects.get(kind="external").pk, legs=[5])
