"""For the SQLite figure of the HTTP bench: fresh SQLite files under var/bench-sqlite,
migrated, 64 funded users and 20 missions through the services; prints the missions and
the users' JWTs as one JSON line. Run by bench/http.py in its own process."""

import json
import os
import sys

SQLITE_USERS, SQLITE_MISSIONS = 64, 20


def main() -> int:
    import django

    django.setup()
    from rest_framework_simplejwt.tokens import AccessToken

    from bench import databases
    from bench.scenarios import create_user, new_mission
    from ledger.services import wallet_topup

    databases.reset(databases.check_safe())
    streamer = create_user("streamer", is_streamer=True)
    users = [create_user(f"viewer{i}") for i in range(SQLITE_USERS)]
    for user in users:
        wallet_topup(user_id=user.pk, amount=1_000_000)
    missions = [new_mission(creator_id=users[i].pk, streamer=streamer).pk for i in range(SQLITE_MISSIONS)]
    tokens = [str(AccessToken.for_user(user)) for user in users]
    sys.stdout.write(json.dumps({"missions": missions, "tokens": tokens}) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missionhub.settings")
    sys.exit(main())
