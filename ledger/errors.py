from django.utils.translation import gettext_lazy as _
from rest_framework import status

from missionhub.errors import MissionHubError


class InsufficientFunds(MissionHubError):
    code = "insufficient_funds"
    field = "amount"
    message = _("Not enough cash in your wallet.")


class IdempotencyKeyReused(MissionHubError):
    code = "idempotency_key_reused"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    message = _("This Idempotency-Key was used with a different request.")


class IdempotencyKeyInvalid(MissionHubError):
    code = "idempotency_key_invalid"
    message = _("An Idempotency-Key is 1 to 255 printable ASCII characters.")


class PaymentDeclined(MissionHubError):
    code = "payment_declined"
    http_status = status.HTTP_402_PAYMENT_REQUIRED
    message = _("The payment provider declined the top-up.")


class UnbalancedTransaction(Exception):
    """A programming error: the legs handed to the ledger do not sum to zero."""
