"""`Idempotency-Key` for POSTs that move money.

The view looks for a stored response first. Otherwise the service claims the key as the
first statement of its database transaction and stores the response as the last one, so
the record commits with the postings or not at all. A concurrent twin blocks on the
unique key, then fails with `IdempotencyConflict`, and its view replays the winner's
response. `idempotency_run` does all of it for a view.

Page forms that move cash use the same records: each form carries a one-time key
(`page_request`), stored under a prefix so that it never meets an API key.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from .errors import IdempotencyKeyInvalid, IdempotencyKeyReused
from .models import IdempotencyRecord

RETENTION = timedelta(hours=24)
# A page form's one-time key is stored as this prefix + the key. The fingerprint names
# the path too, so even an API key spelled with the prefix could only be refused
# (`idempotency_key_reused`), never answered with a page's result.
PAGE_KEY_PREFIX = "page:"


class IdempotencyConflict(Exception):
    """Another request with the same key committed first."""


@dataclass(frozen=True)
class IdempotentRequest:
    user_id: int
    key: str
    fingerprint: str
    # Turns the service's result into the (status, body) the client gets.
    render: Callable[[Any], tuple[int, dict]]


def fingerprint_of(*, method: str, path: str, data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def page_request(
    *, user_id: int, form_key: str, path: str, data: Any, render: Callable[[Any], tuple[int, dict]]
) -> IdempotentRequest:
    """The idempotency request of a page form posted with its one-time key."""
    return IdempotentRequest(
        user_id=user_id,
        key=key_validate(PAGE_KEY_PREFIX + form_key),
        fingerprint=fingerprint_of(method="POST", path=path, data=data),
        render=render,
    )


def key_validate(key: str) -> str:
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid()
    return key


def idempotency_replay(*, request: IdempotentRequest) -> IdempotencyRecord | None:
    """The stored response for this key, if the same request made one within RETENTION.

    One SELECT: expired records are purged by the sweep (`idempotency_records_purge`,
    missions_sweep's `idempotency_purged`), not on every keyed request. A record found past
    its retention, not purged yet, is forgotten here (deleted, so that the key can be
    claimed again). Raises IdempotencyKeyReused when the key came with a different request.
    """
    record = IdempotencyRecord.objects.filter(user_id=request.user_id, key=request.key).first()
    if record is None:
        return None
    if record.created_at < timezone.now() - RETENTION and _expired_record_forget(record):
        return None
    if record.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused()
    return record


def _expired_record_forget(record: IdempotencyRecord) -> bool:
    """Delete `record` if the database's clock, which stamped it, also finds it expired."""
    deleted, _ = IdempotencyRecord.objects.filter(pk=record.pk, created_at__lt=Now() - RETENTION).delete()
    return deleted > 0


def idempotency_claim(*, request: IdempotentRequest | None) -> IdempotencyRecord | None:
    """Claim the key inside the caller's transaction (first, before any money moves)."""
    if request is None:
        return None
    try:
        with transaction.atomic(using="default"):
            return IdempotencyRecord.objects.create(
                user_id=request.user_id,
                key=request.key,
                fingerprint=request.fingerprint,
                status_code=0,
                body={},
            )
    except IntegrityError as exc:
        raise IdempotencyConflict() from exc


def idempotency_complete(*, record: IdempotencyRecord | None, request: IdempotentRequest | None, result) -> None:
    """Store the response inside the caller's transaction (last, after the money moved)."""
    if record is None or request is None:
        return
    record.status_code, record.body = request.render(result)
    record.save(update_fields=["status_code", "body"])


def idempotency_run(
    *, request: IdempotentRequest, action: Callable[[IdempotentRequest], Any]
) -> tuple[int, dict, bool]:
    """Run `action(request)` once per key; returns (status, body, replayed).

    A stored response for the same request is returned and nothing runs. A twin that
    commits first makes the action fail with IdempotencyConflict: its response is then
    returned instead. Raises IdempotencyKeyReused (same key, other request) and whatever
    the action raises (nothing stored: the key may be used again).
    """
    for _ in range(3):
        record = idempotency_replay(request=request)
        if record is not None:
            return record.status_code, record.body, True
        try:
            status_code, body = request.render(action(request))
        except IdempotencyConflict:
            continue  # a twin request committed first: replay its response
        return status_code, body, False
    raise IdempotencyConflict(f"could not settle idempotency key {request.key!r}")


def idempotency_records_purge() -> int:
    """Forget responses older than the retention period."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=Now() - RETENTION).delete()
    return deleted
