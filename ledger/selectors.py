from .models import Account


def wallet_balance(*, user_id: int) -> int:
    """The user's cash; a user who never received any has no wallet row yet and 0."""
    balance = (
        Account.objects.filter(kind=Account.Kind.WALLET, user_id=user_id)
        .values_list("balance", flat=True)
        .first()
    )
    return balance or 0
