"""Demo data for `make run`: the demo users with cash and one live mission. DEBUG only."""

from accounts.demo import demo_users_ensure
from ledger.models import Transaction
from ledger.services import wallet_topup

from .models import Mission
from .services import mission_create, pledge_create

DEMO_CASH = 100_000


def demo_data_ensure() -> list[str]:
    """Create what is missing and say what was done; running it again changes nothing."""
    done = []
    users = {user.username: user for user, _ in demo_users_ensure()}
    for name in ("viewer1", "viewer2"):
        viewer = users[name]
        if not Transaction.objects.filter(kind=Transaction.Kind.TOPUP, actor_id=viewer.pk).exists():
            wallet_topup(user_id=viewer.pk, amount=DEMO_CASH)
            done.append(f"topped up {name} with {DEMO_CASH} cash")
    if not Mission.objects.filter(streamer_id=users["streamer"].pk).exists():
        mission = mission_create(
            creator_id=users["viewer1"].pk,
            streamer="streamer",
            title="Beat the final boss without taking a hit",
            description="One run, no healing items, no armour upgrades. Clip it or it didn't happen.",
            amount=5_000,
            duration_seconds=24 * 3600,
        )
        pledge_create(mission_id=mission.pk, user_id=users["viewer2"].pk, amount=2_500)
        done.append(f"created mission #{mission.pk} for streamer")
    return done
