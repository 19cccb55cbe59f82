"""Two databases: users and what Django ties to them on "accounts", the rest on "default".

No foreign key crosses the two. Missions and ledger rows hold a user's id as a plain
integer and resolve users with one bulk query on "accounts".
"""

ACCOUNTS_DB = "accounts"
DEFAULT_DB = "default"

# App labels whose tables live in the accounts database.
ACCOUNTS_APP_LABELS = frozenset({"accounts", "auth", "contenttypes", "sessions", "admin", "token_blacklist"})


def database_for_app(app_label: str) -> str:
    return ACCOUNTS_DB if app_label in ACCOUNTS_APP_LABELS else DEFAULT_DB


class AppLabelRouter:
    def db_for_read(self, model, **hints):
        return database_for_app(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return database_for_app(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        return database_for_app(obj1._meta.app_label) == database_for_app(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == database_for_app(app_label)
