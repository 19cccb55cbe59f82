import pgtrigger
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from ledger.models import Account, Contribution, Posting
from ledger.services import event_append, transaction_post
from ledger.verify import ledger_verify
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund
from tests.missions.factories import make_mission
from tests.utils import both_databases, sqlite_guards_lifted

pytestmark = both_databases


def _problems():
    return {name: found for name, found in ledger_verify().items() if found}


class TestLedgerVerify:
    def test_passes_on_a_sound_ledger_and_says_so(self, capsys):
        make_mission(amount=2_000)

        call_command("ledger_verify")

        assert "ledger is sound" in capsys.readouterr().out

    @pytest.mark.ledger_unsound
    def test_names_an_account_whose_cached_balance_drifted(self):
        user = UserFactory()
        fund(user, 3_000)
        wallet = Account.objects.get(kind="wallet", user_id=user.pk)
        Account.objects.filter(pk=wallet.pk).update(balance=3_001)

        problems = _problems()

        assert (
            f"account {wallet.pk} (wallet): cached balance 3001 / version 1, postings sum 3000 over 1"
            in (problems["cached balances match postings"])
        )
        assert problems["all balances sum to zero"] == ["all balances sum to 1, not 0"]
        with pytest.raises(CommandError, match="problem"):
            call_command("ledger_verify")

    @pytest.mark.ledger_unsound
    def test_names_a_posting_rewritten_behind_the_ledgers_back(self):
        user = UserFactory()
        fund(user, 3_000)
        posting = Posting.objects.filter(account__kind="wallet").get()

        with pgtrigger.ignore(), sqlite_guards_lifted(connection), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the zero-sum check ran at "commit"
            cursor.execute("UPDATE ledger_posting SET amount = 2999 WHERE id = %s", [posting.pk])

        problems = _problems()
        assert problems["transactions balance"] == [
            f"transaction {posting.transaction_id} (topup): 2 legs summing to -1"
        ]
        assert any(f"posting {posting.pk}" in p for p in problems["posting chains are unbroken"])

    @pytest.mark.ledger_unsound
    def test_names_a_settled_mission_whose_escrow_still_holds_cash(self):
        mission = make_mission(amount=1_000)
        Account.objects.filter(kind="escrow", mission_id=mission.pk).update(balance=1)  # drift

        with transaction.atomic():
            event_append(mission_id=mission.pk, kind="settled")

        assert (
            f"mission {mission.pk}: settled but its escrow holds 1"
            in _problems()["settled missions' escrows are empty"]
        )

    @pytest.mark.ledger_unsound
    def test_names_a_contribution_that_is_not_its_pledges(self):
        mission = make_mission(amount=2_000)
        Contribution.objects.filter(mission_id=mission.pk).update(total=1_999)
        Contribution.objects.create(mission_id=mission.pk, user_id=999_999, total=5, pledges=1)

        found = _problems()["contributions match the pledges"]

        assert found == [
            f"mission {mission.pk}, user {mission.creator_id}: pledged 2000 in 1, contribution 1999 in 1",
            f"mission {mission.pk}, user 999999: pledged 0 in 0, contribution 5 in 1",
        ]

    @pytest.mark.ledger_unsound
    def test_names_a_contributor_refunded_twice_or_wrongly(self):
        mission = make_mission(amount=2_000)
        escrow = Account.objects.get(kind="escrow", mission_id=mission.pk)
        wallet = Account.objects.get(kind="wallet", user_id=mission.creator_id)
        with transaction.atomic():
            for after in (0, 1):
                transaction_post(
                    kind="refund", legs={escrow.pk: -1_000, wallet.pk: 1_000}, mission_id=mission.pk,
                    reference=f"refund:{mission.pk}:{after}",
                )  # fmt: skip

        found = _problems()["each contributor is refunded once, exactly"]

        assert found == [
            f"mission {mission.pk}, user {mission.creator_id}: refunded 2000 in 2 posting(s), contributed 2000"
        ]
