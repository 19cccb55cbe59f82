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
