from django.contrib.auth.management.commands import changepassword

from ._accounts_database import AccountsDatabaseDefault


class Command(AccountsDatabaseDefault, changepassword.Command):
    """Django's changepassword, on the accounts database without `--database`."""
