"""Payment providers: where top-up cash comes from.

A provider charges the user outside any database transaction and returns a reference;
the ledger then records one top-up per reference (a unique constraint), moving cash
from the `external` account into the user's wallet. Every charge carries an idempotency
key, and a provider can be asked afterwards what it did with a key (`find`): that is how
the sweep reconciles a charge whose answer never reached the ledger (TopupCharge).

The sandbox approves every charge and keeps its own record of them; a real provider
implements the same two calls over its API.
"""

import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Charge:
    reference: str
    amount: int


class PaymentProvider(Protocol):
    def charge(self, *, user_id: int, amount: int, idempotency_key: str) -> Charge:
        """Take `amount` from the user's payment method, once per key: the same key gives
        the same charge. Raises PaymentDeclined."""

    def find(self, *, idempotency_key: str) -> Charge | None:
        """The charge made with this key, or None when the provider made none."""


class SandboxProvider:
    """Approves every charge, idempotently per key, and remembers it (SandboxCharge)."""

    def charge(self, *, user_id: int, amount: int, idempotency_key: str) -> Charge:
        from .models import SandboxCharge

        try:
            with transaction.atomic(using="default"):
                record, _ = SandboxCharge.objects.get_or_create(
                    key=idempotency_key,
                    defaults={"user_id": user_id, "amount": amount, "reference": f"sandbox_{uuid.uuid4().hex}"},
                )
        except IntegrityError:  # a twin request with the same key charged first
            record = SandboxCharge.objects.get(key=idempotency_key)
        if (record.user_id, record.amount) != (user_id, amount):
            raise ValueError(f"idempotency key {idempotency_key!r} was used for another charge")
        return Charge(reference=record.reference, amount=record.amount)

    def find(self, *, idempotency_key: str) -> Charge | None:
        from .models import SandboxCharge

        record = SandboxCharge.objects.filter(key=idempotency_key).first()
        return None if record is None else Charge(reference=record.reference, amount=record.amount)


def payment_provider() -> PaymentProvider:
    return import_string(settings.MISSIONHUB_PAYMENT_PROVIDER)()
