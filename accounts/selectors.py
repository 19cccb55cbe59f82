from collections.abc import Iterable

from .models import User
from .usernames import username_canonical

# Every look-up by username compares canonical forms (accounts.usernames): a full-width or
# upper-case `streamer` finds `streamer`, identically on SQLite and PostgreSQL.


def user_get_by_username(*, username: str) -> User | None:
    return User.objects.filter(username_canonical=username_canonical(username), is_active=True).first()


def streamer_get_by_username(*, username: str) -> User | None:
    """An active streamer with that username (in any spelling of it), or None."""
    return User.objects.filter(
        username_canonical=username_canonical(username), is_active=True, is_streamer=True
    ).first()


def username_taken(*, username: str, exclude_user_id: int | None = None) -> bool:
    """Whether another account has that username's canonical form."""
    users = User.objects.filter(username_canonical=username_canonical(username))
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    return users.exists()


def email_taken(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


# Ids per look-up: a mission's full contributor list can hold 100,000, and SQLite takes at
# most 32,766 parameters in one statement.
_USERNAMES_BATCH = 500


def usernames_by_id(*, user_ids: Iterable[int]) -> dict[int, str]:
    """{user_id: username} for every id a page or list shows: one query on the accounts
    database per 500 ids."""
    ids = sorted(set(user_ids))
    names: dict[int, str] = {}
    for start in range(0, len(ids), _USERNAMES_BATCH):
        batch = ids[start : start + _USERNAMES_BATCH]
        names.update(User.objects.filter(pk__in=batch).values_list("pk", "username"))
    return names


def streamer_suggestions(*, prefix: str, limit: int = 8) -> list[str]:
    """Streamers' usernames starting with `prefix` (in any spelling), for the new-mission form."""
    prefix = username_canonical(prefix.strip())
    if not prefix:
        return []
    return list(
        User.objects.filter(is_streamer=True, is_active=True, username_canonical__startswith=prefix)
        .order_by("username")
        .values_list("username", flat=True)[:limit]
    )
