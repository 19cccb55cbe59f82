from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction

from . import selectors
from .errors import EmailTaken, UsernameConfusable, UsernameTaken
from .models import User
from .usernames import username_is_confusable, username_normalize


def user_create(*, username: str, email: str, password: str, is_streamer: bool = False, language: str = "en") -> User:
    """Register a user. Raises UsernameConfusable, UsernameTaken, EmailTaken, django's
    ValidationError (password).

    The username is stored NFKC; it is taken when another account has its canonical form
    (accounts.usernames). The unique constraints (canonical username, lower-cased email)
    are the guard; the look-ups before the insert only give the common case a precise message.
    """
    username = username_normalize(username)
    if username_is_confusable(username):
        raise UsernameConfusable()
    email = User.objects.normalize_email(email).strip()
    user = User(username=username, email=email, is_streamer=is_streamer, language=language)
    validate_password(password, user=user)
    if selectors.username_taken(username=username):
        raise UsernameTaken()
    if selectors.email_taken(email=email):
        raise EmailTaken()
    user.set_password(password)
    try:
        with transaction.atomic(using="accounts"):
            user.save(using="accounts")
    except IntegrityError as exc:
        # Lost a race with a concurrent registration of the same name or address.
        if selectors.username_taken(username=username):
            raise UsernameTaken() from exc
        raise EmailTaken() from exc
    return user


def user_language_set(*, user: User, language: str) -> None:
    """The language of the user's emails."""
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"], using="accounts")
