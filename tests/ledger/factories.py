"""Money for tests, moved the way the product moves it: through the services."""

from ledger.services import wallet_topup


def fund(user, amount: int = 100_000) -> None:
    """Top up `user`'s wallet through the sandbox provider."""
    wallet_topup(user_id=user.pk, amount=amount)
