from collections.abc import Iterable

from .models import User


def user_get_by_username(*, username: str) -> User | None:
    return User.objects.filter(username__iexact=username, is_active=True).first()


def streamer_get_by_username(*, username: str) -> User | None:
    """An active streamer with that username (any case), or None."""
    return User.objects.filter(username__iexact=username, is_active=True, is_streamer=True).first()


def username_taken(*, username: str) -> bool:
    return User.objects.filter(username__iexact=username).exists()


def email_taken(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def usernames_by_id(*, user_ids: Iterable[int]) -> dict[int, str]:
    """One query on the accounts database for every user id a page or list shows."""
    ids = set(user_ids)
    if not ids:
        return {}
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "username"))


def streamer_suggestions(*, prefix: str, limit: int = 8) -> list[str]:
    """Streamers' usernames starting with `prefix` (any case), for the new-mission form."""
    prefix = prefix.strip()
    if not prefix:
        return []
    return list(
        User.objects.filter(is_streamer=True, is_active=True, username__istartswith=prefix)
        .order_by("username")
        .values_list("username", flat=True)[:limit]
    )
