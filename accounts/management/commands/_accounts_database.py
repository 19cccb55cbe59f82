from django.contrib.auth import get_user_model
from django.db import router


class AccountsDatabaseDefault:
    """Django's user commands default to the `default` database; users live in `accounts`."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        database = router.db_for_write(get_user_model())
        for action in parser._actions:
            if action.dest == "database":
                action.default = database
                action.help = f'The database to use. Default is "{database}", where users live.'
