from django.db import transaction
from django.db.models import F

from accounts.models import User
from ledger.models import Account, Contribution, Event, Posting, TopupCharge, Transaction
from missions.models import Mission
from missions.services import mission_create
from tests.accounts.factories import UserFactory
from tests.ledger.factories import fund


def make_mission(*, streamer=None, creator=None, amount: int = 1_000, duration_seconds: int = 3600, **fields):
    """A mission created through the service: the creator is funded first."""
    streamer = streamer or UserFactory(is_streamer=True)
    if creator is None:
        creator = UserFactory()
        fund(creator, max(amount, 1_000))
    return mission_create(
        creator_id=creator.pk,
        streamer=streamer.username,
        title=fields.pop("title", "Clear the boss without healing"),
        description=fields.pop("description", "Thirty minutes, no potions."),
        amount=amount,
        duration_seconds=duration_seconds,
        **fields,
    )


def make_crowded_mission(*, contributors: int, amount: int = 100, streamer=None, with_users: bool = True):
    """An open mission with `contributors` backers who each topped up and pledged `amount`.

    Built with bulk inserts in one transaction, not through the services (which would take
    minutes at 40,000), but row for row what the services write: a balanced top-up and a
    balanced pledge per backer, each account's postings a gap-free chain of versions and
    balances, the `pledged` events, and the mission's pot and count. `ledger_verify` is
    clean afterwards. `with_users=False` skips the accounts rows (their emails then fail
    as "user deleted"), which the settlement itself never reads.
    """
    mission = make_mission(streamer=streamer)
    pot_before = mission.pot
    if with_users:
        users = User.objects.bulk_create(
            User(
                username=f"backer{mission.pk}x{i}",
                username_canonical=f"backer{mission.pk}x{i}",
                email=f"backer{mission.pk}x{i}@example.com",
                password="!",
            )
            for i in range(contributors)
        )
        user_ids = [user.pk for user in users]
    else:
        user_ids = [10_000_000 * mission.pk + i for i in range(contributors)]
    with transaction.atomic(using="default"):
        external = Account.objects.get(kind=Account.Kind.EXTERNAL)
        escrow = Account.objects.select_for_update().get(kind=Account.Kind.ESCROW, mission_id=mission.pk)
        wallets = Account.objects.bulk_create(
            Account(kind=Account.Kind.WALLET, user_id=uid, balance=0, version=2) for uid in user_ids
        )
        topups = Transaction.objects.bulk_create(
            Transaction(kind=Transaction.Kind.TOPUP, actor_id=uid, reference=f"crowd_{mission.pk}_{uid}")
            for uid in user_ids
        )
        TopupCharge.objects.bulk_create(
            TopupCharge(
                user_id=topup.actor_id,
                amount=amount,
                status=TopupCharge.Status.COMPLETED,
                reference=topup.reference,
                transaction=topup,
            )
            for topup in topups
        )
        pledges = Transaction.objects.bulk_create(
            Transaction(kind=Transaction.Kind.PLEDGE, mission_id=mission.pk, actor_id=uid) for uid in user_ids
        )
        postings = []
        for i, (wallet, topup, pledge) in enumerate(zip(wallets, topups, pledges, strict=True)):
            postings += [
                Posting(transaction=topup, account=external, amount=-amount),  # a system account: no chain
                Posting(transaction=topup, account=wallet, amount=amount, balance_after=amount, version=1),
                Posting(transaction=pledge, account=wallet, amount=-amount, balance_after=0, version=2),
                Posting(
                    transaction=pledge,
                    account=escrow,
                    amount=amount,
                    balance_after=escrow.balance + amount * (i + 1),
                    version=escrow.version + i + 1,
                ),
            ]
        Posting.objects.bulk_create(postings, batch_size=2_000)
        Event.objects.bulk_create(
            Event(mission_id=mission.pk, kind=Event.Kind.PLEDGED, actor_id=uid, amount=amount) for uid in user_ids
        )
        Contribution.objects.bulk_create(
            (Contribution(mission_id=mission.pk, user_id=uid, total=amount, pledges=1) for uid in user_ids),
            batch_size=2_000,
        )
        total = amount * contributors
        Account.objects.filter(pk=escrow.pk).update(balance=F("balance") + total, version=F("version") + contributors)
        Mission.objects.filter(pk=mission.pk).update(
            pot=F("pot") + total, contributor_count=F("contributor_count") + contributors
        )
    mission.refresh_from_db()
    assert mission.pot == pot_before + total
    return mission
