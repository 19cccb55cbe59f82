from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from . import selectors
from .errors import EmailTaken, PasswordIncorrect, UsernameConfusable, UsernameTaken
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


def user_password_change(*, user: User, old_password: str, new_password: str) -> None:
    """The signed-in user's own change: the old password first. Raises PasswordIncorrect,
    django's ValidationError (the new password). Revokes as user_password_set does."""
    if not user.check_password(old_password):
        raise PasswordIncorrect()
    user_password_set(user=user, password=new_password)


def user_password_set(*, user: User, password: str) -> None:
    """Set a new password (a change, or a reset through the emailed link) and revoke what the
    old one let in. Raises django's ValidationError (the password).

    Every token carries a digest of the password hash it was issued under (simplejwt's
    CHECK_REVOKE_TOKEN), so the new hash alone refuses every access and refresh token issued
    before (accounts.authentication). The refresh tokens simplejwt recorded are blacklisted
    too, so the admin shows them revoked. Other browser sessions end because Django checks
    the session's copy of the password hash on every request.
    """
    validate_password(password, user=user)
    user.set_password(password)
    with transaction.atomic(using="accounts"):
        user.save(update_fields=["password"], using="accounts")
        user_refresh_tokens_revoke(user_id=user.pk)


def user_refresh_tokens_revoke(*, user_id: int) -> None:
    """Blacklist every unexpired refresh token recorded for the user."""
    live = (
        OutstandingToken.objects.using("accounts")
        .filter(user_id=user_id, expires_at__gt=Now(), blacklistedtoken__isnull=True)
        .values_list("pk", flat=True)
    )
    BlacklistedToken.objects.using("accounts").bulk_create(
        [BlacklistedToken(token_id=pk) for pk in live], ignore_conflicts=True
    )
