"""Demo users for `make run`: a streamer, two viewers and a superuser, created only with DEBUG on."""

from .models import User
from .usernames import username_canonical

DEMO_PASSWORD = "missionhub-demo"  # noqa: S105 - shown in the README, DEBUG only
# (username, is_streamer, is_superuser): the superuser signs in to /admin/.
DEMO_USERS = [
    ("streamer", True, False),
    ("viewer1", False, False),
    ("viewer2", False, False),
    ("admin", False, True),
]


def demo_users_ensure() -> list[tuple[User, bool]]:
    results = []
    for username, is_streamer, is_superuser in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username_canonical=username_canonical(username),
            defaults={
                "username": username,
                "email": f"{username}@example.com",
                "is_streamer": is_streamer,
                "is_staff": is_superuser,
                "is_superuser": is_superuser,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        results.append((user, created))
    return results
