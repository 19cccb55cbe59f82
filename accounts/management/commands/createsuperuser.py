from django.contrib.auth.management.commands import createsuperuser

from ._accounts_database import AccountsDatabaseDefault


class Command(AccountsDatabaseDefault, createsuperuser.Command):
    """Django's createsuperuser, on the accounts database without `--database`."""
