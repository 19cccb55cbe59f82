"""`Idempotency-Key` for POSTs that move money.

The view looks for a stored response first. Otherwise the service claims the key as the
first statement of its database transaction and stores the response as the last one, so
the record commits with the postings or not at all. A concurrent twin blocks on the
unique key, then fails with `IdempotencyConflict`, and its view replays the winner's
response.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from .errors import IdempotencyKeyInvalid, IdempotencyKeyReused
from .models import IdempotencyRecord

RETENTION = timedelta(hours=24)


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


def key_validate(key: str) -> str:
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid()
    return key


def idempotency_replay(*, request: IdempotentRequest) -> IdempotencyRecord | None:
    """The stored response for this key, if the same request made one.

    Raises IdempotencyKeyReused when the key came with a different request.
    """
    IdempotencyRecord.objects.filter(
        user_id=request.user_id, key=request.key, created_at__lt=Now() - RETENTION
    ).delete()
    record = IdempotencyRecord.objects.filter(user_id=request.user_id, key=request.key).first()
    if record is None:
        return None
    if record.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused()
    return record


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


def idempotency_records_purge() -> int:
    """Forget responses older than the retention period."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=Now() - RETENTION).delete()
    return deleted
