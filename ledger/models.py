"""The ledger: accounts, balanced transactions of postings, the mission event log,
idempotency records, the email outbox and the top-ups' charges.

`Transaction`, `Posting` and `Event` are append-only. The models and querysets refuse
updates and deletes on every backend; on PostgreSQL triggers refuse them even from raw
SQL, and at commit a deferred trigger checks that each transaction written sums to zero
(once per transaction, however many postings).
"""

import uuid

import pgtrigger
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(Exception):
    """A row of the ledger's history was about to be changed or removed."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are never deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated")

    def update_or_create(self, *args, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are never deleted")


def _append_only_triggers(table: str) -> list:
    return [
        pgtrigger.Protect(name="append_only_update", operation=pgtrigger.Update),
        pgtrigger.Protect(name="append_only_delete", operation=pgtrigger.Delete),
        pgtrigger.Trigger(
            name="append_only_truncate",
            level=pgtrigger.Statement,
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            func=f"RAISE EXCEPTION 'ledger: {table} is append-only, TRUNCATE refused'; RETURN NULL;",
        ),
    ]


class Account(models.Model):
    """One owner's cash: a user's wallet, a mission's escrow, the provider, or fees.

    `balance` and `version` cache the sum and count of the account's postings; they
    change only together with a new posting, in the same database transaction.

    The system accounts (`external`, `fees`) are the other side of every top-up and every
    fee: one row each, which every such transaction would queue on if it were locked and
    its cached balance rewritten. So they are neither (as pgledger and TigerBeetle keep
    theirs): their postings carry no `balance_after` or `version`, their row keeps 0 and
    0, and their balance is the sum of their postings (`ledger.selectors.system_balance`).
    """

    class Kind(models.TextChoices):
        WALLET = "wallet"
        ESCROW = "escrow"
        EXTERNAL = "external"
        FEES = "fees"

    SYSTEM_KINDS = (Kind.EXTERNAL, Kind.FEES)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    user_id = models.BigIntegerField(null=True, blank=True)
    mission_id = models.BigIntegerField(null=True, blank=True)
    balance = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(kind="external"),
                name="ledger_account_balance_non_negative",
            ),
            models.CheckConstraint(condition=Q(version__gte=0), name="ledger_account_version_non_negative"),
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


class Transaction(AppendOnlyModel):
    """One balanced money movement: its postings sum to zero."""

    class Kind(models.TextChoices):
        TOPUP = "topup", _("Top-up")
        PLEDGE = "pledge", _("Pledge")
        PAYOUT = "payout", _("Payout")
        REFUND = "refund", _("Refund")
        REVERSAL = "reversal", _("Correction")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    mission_id = models.BigIntegerField(null=True, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    # The payment provider's reference of a top-up (one ledger entry per charge), or a
    # refund chunk's name. NULL (not "") for transactions without one, so the unique
    # constraint ignores them.
    reference = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            # A mission is paid out once. Its refund may be several transactions (a big
            # one commits in chunks of contributors), each named `refund:<mission>:<after>`
            # by the user id its chunk starts after, in `reference`: unique, so no chunk
            # is posted twice.
            models.UniqueConstraint(
                fields=["mission_id"],
                condition=Q(kind="payout"),
                name="ledger_transaction_one_payout_per_mission",
            ),
            models.UniqueConstraint(
                fields=["reference"],
                condition=Q(reference__isnull=False),
                name="ledger_transaction_unique_reference",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["topup", "reversal"]) | Q(mission_id__isnull=False),
                name="ledger_transaction_mission_money_names_its_mission",
            ),
        ]
        indexes = [models.Index(fields=["mission_id", "kind", "actor_id"], name="ledger_tx_mission_kind_actor")]
        triggers = _append_only_triggers("ledger_transaction")

    def __str__(self):
        return f"{self.kind} #{self.pk}"


class Posting(AppendOnlyModel):
    """One leg of a transaction: a signed amount on one account.

    `version` numbers the account's postings 1, 2, 3... (unique per account), and
    `balance_after` is the account's balance once this leg applied, so each account's
    history is a gap-free chain that can be checked end to end. A system account's legs
    have neither (NULL): nothing serialises on its row (see Account).
    """

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField(null=True, blank=True)
    version = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_amount_non_zero"),
            models.CheckConstraint(condition=Q(version__gte=1), name="ledger_posting_version_positive"),
            models.UniqueConstraint(fields=["account", "version"], name="ledger_posting_one_version_per_account"),
        ]
        indexes = [models.Index(fields=["transaction", "id"], name="ledger_posting_tx_id")]
        triggers = [
            *_append_only_triggers("ledger_posting"),
            # Zero-sum at commit, in two steps so that a refund of n legs costs one check,
            # not n: each INSERT statement names the transactions it touched in
            # `UncheckedTransaction` (one row per transaction, from the statement's
            # transition table), whose deferred trigger re-sums each one at commit.
            pgtrigger.Trigger(
                name="postings_sum_to_zero",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                referencing=pgtrigger.Referencing(new="new_postings"),
                func="""
                    INSERT INTO ledger_uncheckedtransaction (transaction_id)
                    SELECT DISTINCT transaction_id FROM new_postings
                    ON CONFLICT (transaction_id) DO UPDATE SET transaction_id = EXCLUDED.transaction_id;
                    RETURN NULL;
                """,
            ),
        ]

    def __str__(self):
        return f"{self.amount:+} on {self.account_id} (tx {self.transaction_id})"


class UncheckedTransaction(models.Model):
    """A transaction that got postings in the current database transaction and is yet to
    be checked: empty at rest (PostgreSQL only; SQLite's guard is in sqlite_guards.py).

    A statement adding postings inserts (or touches) its transactions' rows here, and this
    row's deferred trigger re-sums the transaction's postings at commit, raising if they do
    not sum to zero, then removes the row. Touching an existing row fires the trigger
    again, so a row left behind cannot excuse a later posting from the check.
    """

    transaction_id = models.BigIntegerField(primary_key=True)

    class Meta:
        triggers = [
            pgtrigger.Trigger(
                name="legs_sum_to_zero",
                level=pgtrigger.Row,
                when=pgtrigger.After,
                operation=pgtrigger.Insert | pgtrigger.Update,
                timing=pgtrigger.Deferred,
                func="""
                    IF (SELECT COALESCE(SUM(amount), 0) FROM ledger_posting
                        WHERE transaction_id = NEW.transaction_id) <> 0 THEN
                        RAISE EXCEPTION 'ledger: the postings of transaction % do not sum to zero',
                            NEW.transaction_id;
                    END IF;
                    DELETE FROM ledger_uncheckedtransaction WHERE transaction_id = NEW.transaction_id;
                    RETURN NULL;
                """,
            ),
        ]

    def __str__(self):
        return f"transaction {self.transaction_id}, to be checked at commit"


class Event(AppendOnlyModel):
    """The mission's event log: one row per thing that happened to it."""

    class Kind(models.TextChoices):
        CREATED = "created", _("created the mission")
        PLEDGED = "pledged", _("pledged")
        ACCEPTED = "accepted", _("accepted the mission")
        REJECTED = "rejected", _("rejected the mission")
        SUCCEEDED = "succeeded", _("completed the mission")
        FAILED = "failed", _("marked the mission failed")
        EXPIRED = "expired", _("The deadline passed")
        CANCELLED = "cancelled", _("cancelled the mission (staff)")
        SETTLED = "settled", _("Settled")

    TERMINAL_KINDS = ("rejected", "succeeded", "failed", "expired", "cancelled")

    mission_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    amount = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mission_id"],
                condition=Q(kind="created"),
                name="ledger_event_one_created_per_mission",
            ),
            models.UniqueConstraint(
                fields=["mission_id"],
                condition=Q(kind__in=["rejected", "succeeded", "failed", "expired", "cancelled"]),
                name="ledger_event_one_terminal_per_mission",
            ),
            models.UniqueConstraint(
                fields=["mission_id"],
                condition=Q(kind="settled"),
                name="ledger_event_one_settled_per_mission",
            ),
        ]
        indexes = [models.Index(fields=["mission_id", "id"], name="ledger_event_mission_id")]
        triggers = _append_only_triggers("ledger_event")

    def __str__(self):
        return f"mission {self.mission_id}: {self.kind}"


class Contribution(models.Model):
    """What one user has pledged to one mission in all: the sum of their pledges into its
    escrow, and how many pledges that was.

    Written only by `ledger.services.pledge_post`, in the pledge's own database transaction
    under the mission's lock (one upsert), so the mission's pages and its settlement read
    one row per contributor instead of summing the escrow's postings. Kept after the
    mission settles (who backed it). `ledger_verify` recomputes every row from the postings.
    """

    mission_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    total = models.BigIntegerField()
    pledges = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mission_id", "user_id"], name="ledger_contribution_one_per_user"),
            models.CheckConstraint(condition=Q(total__gt=0), name="ledger_contribution_total_positive"),
            models.CheckConstraint(condition=Q(pledges__gte=1), name="ledger_contribution_pledges_positive"),
        ]
        # The top contributors first; the unique index above serves settlement's walk by user id.
        indexes = [models.Index(fields=["mission_id", "-total", "user_id"], name="ledger_contribution_top")]

    def __str__(self):
        return f"{self.total} from user {self.user_id} to mission {self.mission_id}"


class IdempotencyRecord(models.Model):
    """The first response to a money-moving POST sent with an `Idempotency-Key`.

    Written in the same database transaction as the money it moved; kept 24 hours.
    """

    user_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="ledger_idempotency_one_per_user_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="ledger_idempotency_created")]

    def __str__(self):
        return f"{self.user_id}:{self.key}"


class Notification(models.Model):
    """The email outbox: one row per (mission, user, kind), `sent_at` empty until sent.

    A sender claims a row (`claimed_until`) in one short transaction, sends outside
    any transaction, then marks it sent: no database lock is held during the send.
    Nobody takes a row before its `claimed_until`: a sender's claim, or the backoff after
    a failed try. An email that can never go out (a permanent refusal, a deleted user, too
    many tries) gets `failed_at` and its reason in `last_error`, and is not tried again.
    """

    class Kind(models.TextChoices):
        MISSION_CREATED = "mission_created"  # to the streamer, when a mission names them
        RESULT = "result"  # to each contributor, once the mission is settled
        PAYOUT = "payout"  # to the streamer, when a succeeded mission paid them

    mission_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # What the email reports: the refund or the payout in cash units.
    amount = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")  # the last failure's reason
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    # When the sweep last sent this email's task again: not again until this is old.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mission_id", "user_id", "kind"], name="ledger_notification_one_per_mission_user_kind"
            ),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True) | Q(failed_at__isnull=True), name="ledger_notification_sent_or_failed"
            ),
        ]
        indexes = [
            models.Index(fields=["mission_id"], name="ledger_notification_unsent", condition=Q(sent_at__isnull=True))
        ]

    def __str__(self):
        return f"{self.kind} to {self.user_id} for mission {self.mission_id}"


class TopupCharge(models.Model):
    """A top-up's charge at the payment provider, recorded before the provider is asked.

    The row is committed first, so a charge can never be made with no record of it here:
    if the process dies, or the ledger write fails, between the provider's answer and our
    commit, the sweep asks the provider about every charge still `pending` after a grace
    period and completes it (the top-up is posted once) or abandons it (the provider has
    no such charge). `provider_key` is the idempotency key the provider sees.

    pending -> completed | declined | abandoned; an abandoned charge that the provider
    reports after all is completed then.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        COMPLETED = "completed", _("Completed")
        DECLINED = "declined", _("Declined")
        ABANDONED = "abandoned", _("Abandoned")

    user_id = models.BigIntegerField()
    amount = models.BigIntegerField()
    # The client's Idempotency-Key, when it sent one: its retries find this charge again.
    key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    provider_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reference = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="charge"
    )
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "key"], condition=Q(key__isnull=False), name="ledger_topupcharge_one_per_user_key"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_topupcharge_amount_positive"),
            models.CheckConstraint(
                condition=Q(status="completed", transaction__isnull=False)
                | (~Q(status="completed") & Q(transaction__isnull=True)),
                name="ledger_topupcharge_completed_has_transaction",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="ledger_topupcharge_pending", condition=Q(status="pending"))
        ]

    def __str__(self):
        return f"charge {self.provider_key} of {self.amount} for user {self.user_id}: {self.status}"


class SandboxCharge(models.Model):
    """The sandbox payment provider's own record of the charges it made (real providers
    keep theirs on their side), so that it can answer `find` like a real one."""

    key = models.CharField(max_length=255, unique=True)
    user_id = models.BigIntegerField()
    amount = models.BigIntegerField()
    reference = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self):
        return self.reference
