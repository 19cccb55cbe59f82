from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models, transaction
from django.db.models.functions import Lower

from .usernames import username_canonical, username_normalize


class UserQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """Django's update, and the cached copies of the users it changed are invalidated
        (accounts.user_cache): an update sends no post_save. The rows are locked and read
        first, so exactly the invalidated users are updated."""
        from .user_cache import user_cache_invalidate

        with transaction.atomic(using=self.db):
            user_ids = list(self.select_for_update().values_list("pk", flat=True))
            rows = self.model._base_manager.using(self.db).filter(pk__in=user_ids).update(**kwargs)
            for user_id in user_ids:
                user_cache_invalidate(user_id=user_id, using=self.db)
        return rows


class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):
    def get_by_natural_key(self, username):
        # Every sign-in (API, pages, admin, createsuperuser) finds the user here, by the
        # canonical form: a look-alike spelling is the same user.
        return self.get(username_canonical=username_canonical(str(username)))


class User(AbstractUser):
    """A viewer, and a streamer when `is_streamer` is set. Cash lives in the ledger."""

    email = models.EmailField("email address")
    # username in its canonical form (accounts.usernames), kept by save(); unique.
    username_canonical = models.CharField(max_length=300, editable=False)
    is_streamer = models.BooleanField(default=False)
    # The language of the user's emails: the one they signed up in.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["username_canonical"], name="accounts_user_username_canonical_unique"),
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self):
        return self.username

    def save(self, *args, **kwargs):
        """The username is stored NFKC and its canonical form beside it, however it was set."""
        self.username = username_normalize(self.username)
        self.username_canonical = username_canonical(self.username)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_canonical"}
        super().save(*args, **kwargs)
