from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class Mission(models.Model):
    """A challenge for a streamer with a pot of viewers' cash held in its escrow account.

    Nobody edits a mission after creation: its status moves along the state machine,
    and `pot` and `contributor_count` follow the pledges, all under the row's lock.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.PENDING, Status.ACCEPTED)

    title = models.CharField(max_length=120)
    description = models.TextField(max_length=2000, blank=True, default="")
    # Users live in the accounts database: plain ids, resolved in one bulk query per page.
    streamer_id = models.BigIntegerField()
    creator_id = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    is_active = models.GeneratedField(
        expression=Q(status__in=["pending", "accepted"]),
        output_field=models.BooleanField(),
        db_persist=True,
    )
    pot = models.BigIntegerField(default=0)
    contributor_count = models.IntegerField(default=0)
    deadline = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())
    decided_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    # Settlement walks the contributors by user id in chunks, each chunk its own database
    # transaction: the last user id it has refunded (or emailed, for a payout), so a chunk
    # is never done twice and a settlement cut short goes on where it stopped.
    settle_cursor = models.BigIntegerField(null=True, blank=True)
    # When the sweep last sent this ended mission's settlement again (the decision's own
    # message went on commit, at `decided_at`): it is sent again only once this is old.
    settle_enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Each admin action that moves money has its own permission (missions/admin.py).
        permissions = [("cancel_mission", "Can cancel a mission and refund its contributors")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "accepted",
                        "rejected",
                        "succeeded",
                        "failed",
                        "expired",
                        "cancelled",
                    ]
                ),
                name="missions_mission_status_known",
            ),
            models.CheckConstraint(condition=Q(pot__gte=0), name="missions_mission_pot_non_negative"),
            models.CheckConstraint(
                condition=Q(contributor_count__gte=0), name="missions_mission_contributors_non_negative"
            ),
            models.CheckConstraint(
                condition=~Q(streamer_id=models.F("creator_id")), name="missions_mission_not_for_oneself"
            ),
            models.CheckConstraint(
                condition=Q(settled_at__isnull=True) | ~Q(status__in=["pending", "accepted"]),
                name="missions_mission_settled_only_when_terminal",
            ),
        ]
        indexes = [
            # The live missions: the sweep's due ones (by deadline) and the home page's
            # newest first, and their counts. Nothing a pledge writes (pot, contributors) is
            # indexed, so a pledge's update of the row stays a HOT update: the home page's
            # biggest-pot order is a top-N sort of the live missions instead.
            models.Index(fields=["deadline"], name="missions_live_by_deadline", condition=Q(is_active=True)),
            models.Index(fields=["-id"], name="missions_live_newest", condition=Q(is_active=True)),
            models.Index(
                fields=["decided_at"],
                name="missions_unsettled",
                condition=Q(settled_at__isnull=True) & ~Q(status__in=["pending", "accepted"]),
            ),
            models.Index(fields=["streamer_id", "-id"], name="missions_by_streamer"),
            models.Index(fields=["creator_id", "-id"], name="missions_by_creator"),
            models.Index(fields=["status", "-id"], name="missions_by_status"),
            # The monitoring page (missions/monitoring.py), read from the index alone:
            # outcomes per day; settlement latency per hour (settled_at in a window) and the
            # unsettled ones (settled_at IS NULL, oldest decided_at first). Not partial on
            # NOT status IN (...): SQLite matches no such predicate against bound parameters.
            models.Index(
                fields=["decided_at", "status"], name="missions_decided", condition=Q(decided_at__isnull=False)
            ),
            models.Index(fields=["settled_at", "decided_at"], name="missions_settled"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"


class SweepFailure(models.Model):
    """A unit of the sweep's work on one mission (close, settle, email) that raised.

    The unit is tried again after `retry_at`, which doubles after each failure, and never
    holds up the others. A row is kept after the unit succeeds (`resolved_at`), so the
    sum of `attempts` only grows: /metrics reports it as a counter.
    """

    class Step(models.TextChoices):
        EXPIRE = "expire", _("Close (expire)")
        SETTLE = "settle", _("Settle")
        EMAIL = "email", _("Email")

    mission = models.ForeignKey(Mission, on_delete=models.CASCADE, related_name="sweep_failures")
    step = models.CharField(max_length=16, choices=Step.choices)
    attempts = models.PositiveIntegerField(default=0)  # every failure, ever
    consecutive = models.PositiveIntegerField(default=0)  # since the last success: sets the backoff
    last_error = models.TextField(blank=True, default="")
    first_failed_at = models.DateTimeField(db_default=Now())
    failed_at = models.DateTimeField(db_default=Now())
    retry_at = models.DateTimeField(db_default=Now())
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mission", "step"], name="missions_sweepfailure_one_per_step")]
        indexes = [
            models.Index(
                fields=["step", "retry_at"], name="missions_sweep_failing", condition=Q(resolved_at__isnull=True)
            )
        ]

    def __str__(self):
        return f"{self.step} of mission #{self.mission_id}"


class LedgerCheck(models.Model):
    """One run of `ledger_verify` by a worker: every few minutes from beat, or when a staff
    member asks for one on the monitoring page. The page shows the latest stored result;
    its GET never runs the check (it reads every posting).

    `results` lists every check in `ledger_verify`'s order:
    `[{"name": ..., "count": <problems found>, "sample": [<the first few>]}]`.
    """

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Scheduled")
        STAFF = "staff", _("Asked for by staff")

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by_id = models.BigIntegerField(null=True, blank=True)  # the staff member (accounts database)
    requested_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True, blank=True)  # unknown until finished
    problem_count = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")  # the check itself raised: what

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(trigger__in=["schedule", "staff"]), name="missions_ledgercheck_trigger_known"
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(ok__isnull=False), name="missions_ledgercheck_finished_has_ok"
            ),
        ]
        indexes = [models.Index(fields=["requested_at"], name="missions_ledgercheck_requested")]

    def __str__(self):
        return f"ledger check #{self.pk} ({self.trigger})"
