"""Payment providers: where top-up cash comes from.

A provider charges the user outside any database transaction and returns a reference;
the ledger then records one top-up per reference (a unique constraint), moving cash
from the `external` account into the user's wallet. The sandbox approves every charge;
a real provider implements the same `charge`.
"""

import hashlib
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Charge:
    reference: str
    amount: int


class PaymentProvider(Protocol):
    def charge(self, *, user_id: int, amount: int, idempotency_key: str | None) -> Charge:
        """Take `amount` from the user's payment method. Raises PaymentDeclined."""


class SandboxProvider:
    """Approves every charge. With an idempotency key the same key gives the same
    reference, as a real provider's idempotent API would."""

    def charge(self, *, user_id: int, amount: int, idempotency_key: str | None) -> Charge:
        if idempotency_key is None:
            return Charge(reference=f"sandbox_{uuid.uuid4().hex}", amount=amount)
        digest = hashlib.sha256(f"{user_id}:{idempotency_key}".encode()).hexdigest()[:32]
        return Charge(reference=f"sandbox_{digest}", amount=amount)


def payment_provider() -> PaymentProvider:
    return import_string(settings.MISSIONHUB_PAYMENT_PROVIDER)()
