"""The user a JWT names, kept in Django's cache (Redis in production) instead of read from
the accounts database on every request; any change to the user invalidates it at once.

A cached copy is valid only under the user's current *generation*, a random token in the
cache beside it. Every change makes a new generation: post_save and post_delete on User,
and `UserQuerySet.update` (accounts.models) for the writes that send no signal. The new
generation is set when the change is made and again when its transaction commits, so a
request that read the old row before the commit stored it under a generation that is
already gone. A hit is one cache round trip (both keys in one `get_many`); a miss adds the
database read and a `set`. A generation that expired or was evicted comes back as a new
random one, which invalidates whatever was cached before, never revives it.

What bypasses the ORM (raw SQL on accounts_user, a migration's historical model) does not
invalidate: a copy lives at most MISSIONHUB_USER_CACHE_SECONDS. The password hash is not
cached (the copy is loaded with `password` deferred, read from the database if a view asks
for it, as `check_password` does); the digest simplejwt compares tokens with is.
"""

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from .models import User

DATABASE = "accounts"
_FIELDS = tuple(field.attname for field in User._meta.concrete_fields if field.attname != "password")
# A copy written by a build with other fields is never read back as this one's.
_LAYOUT = hashlib.sha256(",".join(_FIELDS).encode()).hexdigest()[:8]


def _keys(user_id) -> tuple[str, str]:
    return f"user:{_LAYOUT}:{user_id}", f"user-generation:{user_id}"


def _seconds() -> int:
    return settings.MISSIONHUB_USER_CACHE_SECONDS


def _from_database(user_id) -> User | None:
    try:
        return User.objects.using(DATABASE).get(**{api_settings.USER_ID_FIELD: user_id})
    except User.DoesNotExist:
        return None


def user_for_token(*, user_id) -> tuple[User, str] | None:
    """The user whose USER_ID_FIELD is `user_id`, and the digest of its password hash
    (simplejwt's revoke claim); None when there is no such user. Active or not: the caller
    applies the rules."""
    seconds = _seconds()
    if not seconds:
        user = _from_database(user_id)
        return None if user is None else (user, get_md5_hash_password(user.password))
    entry_key, generation_key = _keys(user_id)
    found = cache.get_many([entry_key, generation_key])
    generation, entry = found.get(generation_key), found.get(entry_key)
    if generation is not None and entry is not None and entry[0] == generation:
        _, digest, values = entry
        return User.from_db(DATABASE, _FIELDS, values), digest
    if generation is None:
        generation = secrets.token_hex(8)
        if not cache.add(generation_key, generation, seconds):
            generation = cache.get(generation_key)  # a change or another request set one first
    # The generation is read before the row: a change committed after this read sets a new one.
    user = _from_database(user_id)
    if user is None:
        return None
    digest = get_md5_hash_password(user.password)
    if generation is not None:
        cache.set(entry_key, (generation, digest, tuple(getattr(user, name) for name in _FIELDS)), seconds)
    return user, digest


def user_cache_invalidate(*, user_id, using: str = DATABASE) -> None:
    """Every cached copy of the user is stale from now on, and again once the current
    transaction on `using` commits (or at once outside one)."""
    _new_generation(user_id)
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(lambda: _new_generation(user_id), using=using)


def _new_generation(user_id) -> None:
    # Set even when this process caches nothing: another process may (its settings are its own).
    cache.set(_keys(user_id)[1], secrets.token_hex(8), _seconds() or 300)


def user_changed(sender, instance, using, **kwargs) -> None:
    """post_save and post_delete receiver for User (connected in AccountsConfig.ready)."""
    user_cache_invalidate(user_id=getattr(instance, api_settings.USER_ID_FIELD), using=using)
