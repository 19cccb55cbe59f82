from django.db import models
from django.db.models import Q


class Account(models.Model):
    """One owner's cash: a user's wallet, a mission's escrow, the provider, or fees.

    `balance` and `version` cache the sum and count of the account's postings; they
    change only together with a new posting, in the same database transaction.
    """

    class Kind(models.TextChoices):
        WALLET = "wallet"
        ESCROW = "escrow"
        EXTERNAL = "external"
        FEES = "fees"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    user_id = models.BigIntegerField(null=True, blank=True)
    mission_id = models.BigIntegerField(null=True, blank=True)
    balance = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(kind="external"),
                name="ledger_account_balance_non_negative",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="wallet", user_id__isnull=False, mission_id__isnull=True)
                    | Q(kind="escrow", user_id__isnull=True, mission_id__isnull=False)
                    | Q(kind__in=["external", "fees"], user_id__isnull=True, mission_id__isnull=True)
                ),
                name="ledger_account_owner_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["user_id"], condition=Q(kind="wallet"), name="ledger_account_one_wallet_per_user"
            ),
            models.UniqueConstraint(
                fields=["mission_id"],
                condition=Q(kind="escrow"),
                name="ledger_account_one_escrow_per_mission",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(kind__in=["external", "fees"]),
                name="ledger_account_one_system_account",
            ),
        ]

    def __str__(self):
        owner = self.user_id if self.kind == self.Kind.WALLET else self.mission_id
        return f"{self.kind}:{owner}" if owner else self.kind
