from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_PASSWORD, demo_users_ensure


class Command(BaseCommand):
    help = "Create the demo streamer and viewers (DEBUG only). Safe to run again."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is only loaded with DEBUG on.")
        for user, created in demo_users_ensure():
            verb = "created" if created else "exists"
            role = "streamer" if user.is_streamer else "viewer"
            self.stdout.write(f"{role:8} {user.username:8} {verb}")
        self.stdout.write(f"Demo password for all of them: {DEMO_PASSWORD}")
