from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from . import schema  # noqa: F401  registers the OpenAPI extension
        from .models import User
        from .user_cache import user_changed

        # Any change to a user invalidates the copy JWT requests read (accounts.user_cache).
        post_save.connect(user_changed, sender=User, dispatch_uid="accounts.user_cache.saved")
        post_delete.connect(user_changed, sender=User, dispatch_uid="accounts.user_cache.deleted")
