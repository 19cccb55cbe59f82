from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_PASSWORD, DEMO_USERS
from missions.demo import demo_data_ensure


class Command(BaseCommand):
    help = (
        "Create the demo streamer, viewers (with cash and a live mission) and the admin superuser "
        "(DEBUG only). Safe to run again."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is only loaded with DEBUG on.")
        for line in demo_data_ensure() or ["demo data already loaded"]:
            self.stdout.write(line)
        names = ", ".join(name for name, *_ in DEMO_USERS)
        self.stdout.write(f"Demo users {names}; password for all of them: {DEMO_PASSWORD}")
