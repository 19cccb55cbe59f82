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


# Amounts a service refuses, whoever called it: the same codes as the API's fields
# (`invalid`, `min_value`, `max_value`), and DRF's own wording, so its translations apply.
class AmountInvalid(MissionHubError):
    code = "invalid"
    field = "amount"
    message = _("An amount is a whole number of cash units.")


class AmountBelowMinimum(MissionHubError):
    code = "min_value"
    field = "amount"

    def __init__(self, *, minimum: int):
        super().__init__(_("Ensure this value is greater than or equal to {min_value}.").format(min_value=minimum))


class AmountAboveMaximum(MissionHubError):
    code = "max_value"
    field = "amount"

    def __init__(self, *, maximum: int):
        super().__init__(_("Ensure this value is less than or equal to {max_value}.").format(max_value=maximum))
