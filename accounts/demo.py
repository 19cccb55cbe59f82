"""Demo users for `make run`: a streamer and two viewers, created only with DEBUG on."""

from .models import User

DEMO_PASSWORD = "missionhub-demo"  # noqa: S105 - shown in the README, DEBUG only
DEMO_USERS = [
    ("streamer", True),
    ("viewer1", False),
    ("viewer2", False),
]


def demo_users_ensure() -> list[tuple[User, bool]]:
    results = []
    for username, is_streamer in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "is_streamer": is_streamer},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        results.append((user, created))
    return results
