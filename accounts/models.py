from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(DjangoUserManager):
    def get_by_natural_key(self, username):
        # Usernames are unique regardless of case, so sign-in ignores case too.
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A viewer, and a streamer when `is_streamer` is set. Cash lives in the ledger."""

    email = models.EmailField("email address")
    is_streamer = models.BooleanField(default=False)
    # The language of the user's emails: the one they signed up in.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self):
        return self.username
