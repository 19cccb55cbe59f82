"""Writes for missions: create, pledge, decide, cancel, expire, settle, email.

Lock order (the same in every function): the mission row first, then ledger accounts by
ascending id (inside `ledger.services.transaction_post`). A money transaction holds its
locks only for local statements; emails and broker calls happen after commit.

The database's clock is the only clock: deadlines, decisions and settlement times are
`now()` of the database, compared and stored in SQL.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from anymail.exceptions import (
    AnymailAPIError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailSerializationError,
    AnymailUnsupportedFeature,
)
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.db import transaction
from django.db.models import BooleanField, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, Value
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.selectors import user_get_by_username
from ledger import selectors as ledger_selectors
from ledger.errors import UnbalancedTransaction
from ledger.idempotency import (
    IdempotentRequest,
    idempotency_claim,
    idempotency_complete,
    idempotency_records_purge,
)
from ledger.models import Account, Event, Notification, Transaction
from ledger.services import (
    amount_validate,
    contributor_notifications_create,
    contributors_chunk,
    escrow_create,
    event_append,
    fee_bps,
    pledge_post,
    refund_chunk_post,
    system_account,
    topup_charges_reconcile,
    transaction_post,
    wallet_get_or_create,
)
from ledger.signals import task_enqueue
from missionhub.validators import has_control_characters, one_line

from .errors import (
    EmailSendFailed,
    InvalidDuration,
    InvalidText,
    InvalidTransition,
    MissionClosed,
    MissionNotFound,
    NotAStreamer,
    NotMissionStreamer,
    OwnMission,
    StreamerCannotPledge,
    StreamerNotFound,
)
from .models import Mission, SweepFailure
from .selectors import missions_attach_usernames

logger = logging.getLogger(__name__)

S = Mission.Status

# action -> (statuses it may start from, status it leads to)
TRANSITIONS = {
    "accept": ((S.PENDING,), S.ACCEPTED),
    "reject": ((S.PENDING,), S.REJECTED),
    "success": ((S.PENDING, S.ACCEPTED), S.SUCCEEDED),
    "fail": ((S.PENDING, S.ACCEPTED), S.FAILED),
}
TERMINAL_EVENT = {
    S.REJECTED: Event.Kind.REJECTED,
    S.SUCCEEDED: Event.Kind.SUCCEEDED,
    S.FAILED: Event.Kind.FAILED,
    S.EXPIRED: Event.Kind.EXPIRED,
    S.CANCELLED: Event.Kind.CANCELLED,
}
# How long a sender owns a claimed email before another may try it is
# MISSIONHUB_EMAIL_CLAIM_SECONDS (5 minutes): a sender that dies after the provider took
# the message and before it is marked sent leaves it to be sent again after that long.
# After a passing failure an email waits MISSIONHUB_EMAIL_RETRY_SECONDS (30 s), then twice
# as long after each further one (at most an hour), until MISSIONHUB_EMAIL_MAX_ATTEMPTS
# tries have failed.
EMAIL_BACKOFF_MAX = timedelta(hours=1)


def _from_now(delta: timedelta) -> ExpressionWrapper:
    """The database's `now()` plus `delta` (negative: in the past)."""
    return ExpressionWrapper(Now() + Value(delta), output_field=DateTimeField())


def _backoff(*, tries: int, first: timedelta, most: timedelta) -> timedelta:
    """How long to wait after `tries` failures in a row: `first`, doubling, at most `most`."""
    return min(first * 2 ** (tries - 1), most)


def _locked(mission_id: int) -> Mission:
    """The mission row, locked, with `past_deadline` judged by the database's clock."""
    mission = (
        Mission.objects.select_for_update()
        .annotate(past_deadline=ExpressionWrapper(Q(deadline__lte=Now()), output_field=BooleanField()))
        .filter(pk=mission_id)
        .first()
    )
    if mission is None:
        raise MissionNotFound()
    return mission


# --- create and pledge -------------------------------------------------------------------


def mission_create(
    *,
    creator_id: int,
    streamer: str,
    title: str,
    description: str,
    amount: int,
    duration_seconds: int,
    idempotency: IdempotentRequest | None = None,
) -> Mission:
    """Create a mission for `streamer` with the creator's `amount` as its first pledge.

    One database transaction: the mission, its escrow account, the pledge, the `created`
    event and the streamer's email in the outbox. Raises InvalidText (control characters
    in the title or description), StreamerNotFound, NotAStreamer, OwnMission,
    InvalidDuration, AmountInvalid, AmountBelowMinimum, AmountAboveMaximum (the pledge
    limits), InsufficientFunds, IdempotencyConflict.
    """
    amount_validate(amount=amount, min_setting="MISSIONHUB_PLEDGE_MIN", max_setting="MISSIONHUB_PLEDGE_MAX")
    for field, text in (("title", title), ("description", description)):
        if has_control_characters(text):
            raise InvalidText(field=field)
    if not settings.MISSIONHUB_MIN_MISSION_SECONDS <= duration_seconds <= settings.MISSIONHUB_MAX_MISSION_SECONDS:
        raise InvalidDuration()
    streamer_user = user_get_by_username(username=streamer)
    if streamer_user is None:
        raise StreamerNotFound()
    if not streamer_user.is_streamer:
        raise NotAStreamer()
    if streamer_user.pk == creator_id:
        raise OwnMission()

    with transaction.atomic(using="default", durable=True):
        record = idempotency_claim(request=idempotency)
        mission = Mission.objects.create(
            title=title,
            description=description,
            streamer_id=streamer_user.pk,
            creator_id=creator_id,
            pot=amount,
            contributor_count=1,
            deadline=_from_now(timedelta(seconds=duration_seconds)),
        )
        escrow_create(mission_id=mission.pk)
        pledge_post(mission_id=mission.pk, user_id=creator_id, amount=amount)
        Notification.objects.create(
            mission_id=mission.pk,
            user_id=streamer_user.pk,
            kind=Notification.Kind.MISSION_CREATED,
            amount=amount,
        )
        event_append(mission_id=mission.pk, kind=Event.Kind.CREATED, actor_id=creator_id, amount=amount)
        mission.refresh_from_db()
        idempotency_complete(record=record, request=idempotency, result=mission)
    return mission


@dataclass(frozen=True)
class Pledge:
    id: int
    amount: int
    pot: int
    balance: int


def pledge_create(
    *, mission_id: int, user_id: int, amount: int, idempotency: IdempotentRequest | None = None
) -> Pledge:
    """Move `amount` from the user's wallet into the mission's escrow.

    Locks the mission row (so no decision slips in between), then the two accounts by
    ascending id (`ledger.services.pledge_post`). Raises AmountInvalid, AmountBelowMinimum, AmountAboveMaximum (before
    anything is locked), MissionNotFound, StreamerCannotPledge, MissionClosed,
    InsufficientFunds, IdempotencyConflict.
    """
    amount_validate(amount=amount, min_setting="MISSIONHUB_PLEDGE_MIN", max_setting="MISSIONHUB_PLEDGE_MAX")
    with transaction.atomic(using="default", durable=True):
        record = idempotency_claim(request=idempotency)
        mission = _locked(mission_id)
        if mission.streamer_id == user_id:
            raise StreamerCannotPledge()
        if mission.status not in Mission.OPEN_STATUSES or mission.past_deadline:
            raise MissionClosed()
        posted = pledge_post(mission_id=mission_id, user_id=user_id, amount=amount)
        Mission.objects.filter(pk=mission_id).update(
            pot=F("pot") + amount, contributor_count=F("contributor_count") + int(posted.first)
        )
        event_append(mission_id=mission_id, kind=Event.Kind.PLEDGED, actor_id=user_id, amount=amount)
        result = Pledge(id=posted.transaction_id, amount=amount, pot=mission.pot + amount, balance=posted.balance)
        idempotency_complete(record=record, request=idempotency, result=result)
    return result


# --- decisions -----------------------------------------------------------------------------


def _close(mission: Mission, *, status: str, actor_id: int | None) -> None:
    """Set a terminal status and append its event; the event's task settles the mission."""
    Mission.objects.filter(pk=mission.pk).update(status=status, decided_at=Now())
    event_append(mission_id=mission.pk, kind=TERMINAL_EVENT[status], actor_id=actor_id, amount=mission.pot)


def mission_decide(*, mission_id: int, user_id: int, action: str) -> Mission:
    """The streamer accepts, rejects, succeeds or fails the mission, before its deadline.

    Locks the mission row. Raises MissionNotFound, NotMissionStreamer, MissionClosed
    (terminal or past the deadline), InvalidTransition.
    """
    allowed_from, target = TRANSITIONS[action]
    with transaction.atomic(using="default", durable=True):
        mission = _locked(mission_id)
        if mission.streamer_id != user_id:
            raise NotMissionStreamer()
        if mission.status not in Mission.OPEN_STATUSES or mission.past_deadline:
            raise MissionClosed()
        if mission.status not in allowed_from:
            raise InvalidTransition(
                _("A %(status)s mission cannot become %(target)s.")
                % {"status": mission.get_status_display(), "target": S(target).label}
            )
        if target == S.ACCEPTED:
            Mission.objects.filter(pk=mission_id).update(status=target)
            event_append(mission_id=mission_id, kind=Event.Kind.ACCEPTED, actor_id=user_id)
        else:
            _close(mission, status=target, actor_id=user_id)
        mission.refresh_from_db()
    return mission


def mission_cancel(*, mission_id: int, staff_id: int) -> Mission:
    """Staff cancel an open mission; every contributor is refunded. Raises MissionClosed."""
    with transaction.atomic(using="default", durable=True):
        mission = _locked(mission_id)
        if mission.status not in Mission.OPEN_STATUSES:
            raise MissionClosed()
        _close(mission, status=S.CANCELLED, actor_id=staff_id)
        mission.refresh_from_db()
    return mission


# --- settlement ----------------------------------------------------------------------------


def mission_settle(*, mission_id: int) -> bool:
    """Pay the pot out (succeeded) or refund every contributor (any other ending), once.

    The contributors are taken `MISSIONHUB_SETTLE_CHUNK` at a time, by user id, each chunk
    its own database transaction under the mission's lock: a refund of 100,000 holds no
    wallet for longer than one chunk takes. A chunk refunds its contributors (one balanced
    transaction) and puts their result emails in the outbox, and moves the mission's
    `settle_cursor` past them in the same commit, so a chunk is never done twice and a
    settlement cut short (a crash, a lost task) goes on where it stopped when the task or
    the sweep runs it again. The last chunk also posts the payout (succeeded: escrow to the
    streamer's wallet, less the fee), sets `settled_at` and appends `settled`.
    Returns False when there was nothing to do (unknown, still open, or already settled),
    so a task delivered twice pays once.
    """
    wrote = False
    while (settled := _settle_chunk(mission_id=mission_id)) is not None:
        wrote = True
        if settled:
            break
    return wrote


def _settle_chunk(*, mission_id: int) -> bool | None:
    """One chunk of `mission_settle`: True when the mission is now settled, False when
    contributors remain, None when there was nothing to do."""
    limit = settings.MISSIONHUB_SETTLE_CHUNK
    with transaction.atomic(using="default", durable=True):
        mission = Mission.objects.select_for_update().filter(pk=mission_id).first()
        if mission is None or mission.is_active or mission.settled_at is not None:
            return None
        after = mission.settle_cursor
        escrow = ledger_selectors.escrow_for_mission(mission_id=mission_id)
        if mission.status == S.SUCCEEDED:
            # The escrow stays whole until the last chunk pays it out.
            _fee, paid = _payout_split(escrow.balance)
            chunk = contributors_chunk(mission_id=mission_id, after_user_id=after, limit=limit)
            contributor_notifications_create(mission_id=mission_id, after_user_id=after, limit=limit, amount=paid)
        else:
            chunk = refund_chunk_post(mission_id=mission_id, escrow=escrow, after_user_id=after, limit=limit)
            contributor_notifications_create(mission_id=mission_id, after_user_id=after, limit=limit)
        if chunk.contributors == limit:
            Mission.objects.filter(pk=mission_id).update(settle_cursor=chunk.through_user_id)
            return False
        if mission.status == S.SUCCEEDED:
            _payout_post(mission, escrow=escrow)
        else:
            if escrow.balance != 0:
                raise UnbalancedTransaction(
                    f"refund of mission {mission_id}: every contributor refunded, {escrow.balance} left in escrow"
                )
        Mission.objects.filter(pk=mission_id).update(settle_cursor=chunk.through_user_id or after, settled_at=Now())
        event_append(mission_id=mission_id, kind=Event.Kind.SETTLED, amount=mission.pot)
    return True


def _payout_split(pot: int) -> tuple[int, int]:
    """(the platform's fee, what the streamer is paid) of a pot."""
    fee = pot * fee_bps() // 10_000
    return fee, pot - fee


def _payout_post(mission: Mission, *, escrow: Account) -> None:
    """The escrow (the row as read under the mission's lock) to the streamer's wallet, less
    the fee, and the streamer's payout email."""
    pot = escrow.balance
    fee, paid = _payout_split(pot)
    streamer_wallet = wallet_get_or_create(user_id=mission.streamer_id)
    legs = {escrow.pk: -pot, streamer_wallet.pk: paid}
    if fee:
        legs[system_account(Account.Kind.FEES).pk] = fee
    if pot:
        transaction_post(kind=Transaction.Kind.PAYOUT, legs=legs, mission_id=mission.pk)
    Notification.objects.bulk_create(
        [Notification(mission_id=mission.pk, user_id=mission.streamer_id, kind=Notification.Kind.PAYOUT, amount=paid)],
        ignore_conflicts=True,
    )


# --- email ---------------------------------------------------------------------------------


def _claim(notification_id: int) -> bool:
    """Take the email for this sender (a short autocommit UPDATE): True if it is ours."""
    claimed = (
        Notification.objects.filter(pk=notification_id, sent_at__isnull=True, failed_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=Now()))
        .update(
            claimed_until=_from_now(timedelta(seconds=settings.MISSIONHUB_EMAIL_CLAIM_SECONDS)),
            attempts=F("attempts") + 1,
        )
    )
    return claimed == 1


# Why a mission ended, for the result email of a refund.
END_REASONS = {
    S.REJECTED: gettext_lazy("%(streamer)s rejected it"),
    S.FAILED: gettext_lazy("%(streamer)s did not complete it"),
    S.EXPIRED: gettext_lazy("its deadline passed without a decision"),
    S.CANCELLED: gettext_lazy("it was cancelled by MissionHub staff"),
}


def _message(notification: Notification, mission: Mission, user: User) -> EmailMultiAlternatives:
    """The email in the user's language, text and HTML.

    The subject is plain text (its template turns autoescaping off: `Tom & Jerry`, not
    `Tom &amp; Jerry`) on one line whatever the title holds: a title stored before
    control characters were refused cannot break the header.
    """
    template = f"emails/{notification.kind}"
    with translation.override(user.language):
        reason = END_REASONS.get(mission.status, "")
        context = {
            "notification": notification,
            "mission": mission,
            "user": user,
            "reason": str(reason) % {"streamer": mission.streamer_username} if reason else "",
            "mission_url": f"{settings.MISSIONHUB_SITE_URL}/missions/{mission.pk}",
        }
        subject = one_line(render_to_string(f"{template}_subject.txt", context))
        text, html = render_to_string(f"{template}.txt", context), render_to_string(f"{template}.html", context)
    message = EmailMultiAlternatives(subject, text, to=[user.email])
    message.attach_alternative(html, "text/html")
    return message


# Refusals that sending the same message again cannot change.
PERMANENT_EMAIL_ERRORS = (
    BadHeaderError,
    AnymailRecipientsRefused,
    AnymailInvalidAddress,
    AnymailUnsupportedFeature,
    AnymailSerializationError,
)
# 4xx answers worth another try: a timeout, a rate limit, and our own API key (a revoked
# or mistyped key is fixed by an operator, and every email would fail with it).
TRANSIENT_EMAIL_STATUSES = frozenset({401, 403, 408, 429})


def _is_permanent(exc: Exception) -> bool:
    """True when the provider (or Django) refused the message itself, for good."""
    if isinstance(exc, PERMANENT_EMAIL_ERRORS):
        return True
    status = exc.status_code if isinstance(exc, AnymailAPIError) else None
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_EMAIL_STATUSES


def _email_failed(notification_id: int, *, reason: str) -> None:
    """Give the email up: it is never tried again, and staff see why."""
    Notification.objects.filter(pk=notification_id, sent_at__isnull=True).update(
        failed_at=Now(), claimed_until=None, last_error=reason[:1000]
    )


def _email_try_failed(notification_id: int, exc: Exception) -> None:
    """Mark the email failed if it never can go out or has had its tries; else back off."""
    reason = f"{type(exc).__name__}: {exc}"
    attempts = Notification.objects.filter(pk=notification_id).values_list("attempts", flat=True).get()
    if _is_permanent(exc) or attempts >= settings.MISSIONHUB_EMAIL_MAX_ATTEMPTS:
        _email_failed(notification_id, reason=reason)
        return
    first = timedelta(seconds=settings.MISSIONHUB_EMAIL_RETRY_SECONDS)
    wait = _backoff(tries=attempts, first=first, most=EMAIL_BACKOFF_MAX)
    Notification.objects.filter(pk=notification_id).update(claimed_until=_from_now(wait), last_error=reason[:1000])


def mission_emails_send(*, mission_id: int, kinds: tuple[str, ...]) -> int:
    """Send the mission's unsent emails of these kinds; returns how many went out.

    Each email is claimed, sent outside any transaction, then marked sent: at most one
    sender handles it at a time, and a sent email is never sent again. A refusal that
    cannot change (a bad header, a refused recipient, a 4xx from the provider), a user
    who is deleted or inactive, or MISSIONHUB_EMAIL_MAX_ATTEMPTS failed tries mark the
    email failed; any other failure backs it off (`claimed_until`) for the sweep to
    retry. Raises EmailSendFailed (after trying the others) when any send failed.
    """
    pending = list(
        Notification.objects.filter(
            mission_id=mission_id, kind__in=kinds, sent_at__isnull=True, failed_at__isnull=True
        ).order_by("pk")
    )
    if not pending:
        return 0
    (mission,) = missions_attach_usernames([Mission.objects.get(pk=mission_id)])
    users = User.objects.in_bulk({n.user_id for n in pending})
    sent, failed = 0, 0
    for notification in pending:
        if not _claim(notification.pk):
            continue
        user = users.get(notification.user_id)
        if user is None or not user.is_active:
            _email_failed(notification.pk, reason="user deleted" if user is None else "user inactive")
            continue
        try:
            message = _message(notification, mission, user)
            message.send()
        except Exception as exc:
            logger.warning("email %s for mission %s failed", notification.kind, mission_id, exc_info=True)
            _email_try_failed(notification.pk, exc)
            failed += 1
            continue
        status = getattr(message, "anymail_status", None)
        Notification.objects.filter(pk=notification.pk).update(
            sent_at=Now(), last_error="", provider_message_id=(status.message_id or "") if status else ""
        )
        sent += 1
    if failed:
        raise EmailSendFailed(f"{failed} email(s) for mission {mission_id} failed")
    return sent


# --- the sweep -----------------------------------------------------------------------------
#
# Every unit of the sweep's work on one mission (closing it, settling it, sending its
# emails) is its own transaction. A unit that raises is logged and recorded in
# `SweepFailure` with a time to try again (MISSIONHUB_SWEEP_RETRY_SECONDS, 15 s, doubling
# to an hour), and the sweep goes on with the others; /metrics and the monitoring page
# show what is failing.

SWEEP_BACKOFF_MAX = timedelta(hours=1)
STEP = SweepFailure.Step


def _failing(step: str, *, waiting: bool, mission: str = "pk") -> Exists:
    """The mission (the outer row's `mission` field) has an unresolved failure of `step`
    (`waiting`: one still backing off)."""
    failures = SweepFailure.objects.filter(mission_id=OuterRef(mission), step=step, resolved_at__isnull=True)
    return Exists(failures.filter(retry_at__gt=Now()) if waiting else failures)


def _resolve(step: str, mission_id: int) -> None:
    SweepFailure.objects.filter(mission_id=mission_id, step=step, resolved_at__isnull=True).update(
        resolved_at=Now(), consecutive=0
    )


def sweep_unit_failed(*, step: str, mission_id: int, exc: Exception) -> None:
    """Log and record a failed unit of work; it is tried again after a doubling backoff."""
    logger.error("sweep: %s of mission %s failed; it will be retried", step, mission_id, exc_info=exc)
    reason = f"{type(exc).__name__}: {exc}"[:1000]
    try:
        with transaction.atomic(using="default"):
            failure, _ = SweepFailure.objects.select_for_update().get_or_create(mission_id=mission_id, step=step)
            consecutive = 1 if failure.resolved_at else failure.consecutive + 1
            first = timedelta(seconds=settings.MISSIONHUB_SWEEP_RETRY_SECONDS)
            wait = _backoff(tries=consecutive, first=first, most=SWEEP_BACKOFF_MAX)
            SweepFailure.objects.filter(pk=failure.pk).update(
                attempts=F("attempts") + 1,
                consecutive=consecutive,
                last_error=reason,
                failed_at=Now(),
                retry_at=_from_now(wait),
                resolved_at=None,
            )
    except Exception:  # the database itself may be what failed: the log line above stays
        logger.exception("sweep: could not record the failure of %s of mission %s", step, mission_id)


def mission_expire_next(*, skip: set[int]) -> int | None:
    """Expire the first due mission that nobody holds and that is not backing off.

    Its own transaction: `SKIP LOCKED` (PostgreSQL) passes over a mission a pledge or
    another sweep holds, so two sweeps never wait on each other or expire a mission twice.
    Returns the mission's id, or None when no mission is due. A mission that fails to
    close is recorded, added to `skip` and its id returned all the same.
    """
    mission_id = None
    try:
        with transaction.atomic(using="default", durable=True):
            mission = (
                Mission.objects.select_for_update(skip_locked=True)
                .filter(is_active=True, deadline__lte=Now())
                .filter(~_failing(STEP.EXPIRE, waiting=True))
                .exclude(pk__in=skip)
                .annotate(failing=_failing(STEP.EXPIRE, waiting=False))
                .order_by("deadline", "pk")
                .first()
            )
            if mission is None:
                return None
            mission_id = mission.pk
            _close(mission, status=S.EXPIRED, actor_id=None)
            if mission.failing:
                _resolve(STEP.EXPIRE, mission_id)
    except Exception as exc:
        if mission_id is None:
            raise  # finding the mission failed, not closing it: the sweep's step fails
        sweep_unit_failed(step=STEP.EXPIRE, mission_id=mission_id, exc=exc)
        skip.add(mission_id)
    return mission_id


# Due missions are expired this many to a transaction; should a batch fail, its missions
# are expired one by one, each its own unit, so one that cannot close blocks no other.
EXPIRE_BATCH = 100


def missions_expire_batch(*, size: int, skip: set[int]) -> int | None:
    """Expire up to `size` due missions that nobody holds and that are not backing off, in
    one transaction (`SKIP LOCKED`, as `mission_expire_next`). Returns how many (0: none
    due), or None when the batch failed and wrote nothing."""
    try:
        with transaction.atomic(using="default", durable=True):
            missions = list(
                Mission.objects.select_for_update(skip_locked=True)
                .filter(is_active=True, deadline__lte=Now())
                .filter(~_failing(STEP.EXPIRE, waiting=True))
                .exclude(pk__in=skip)
                .annotate(failing=_failing(STEP.EXPIRE, waiting=False))
                .order_by("deadline", "pk")[:size]
            )
            if not missions:
                return 0
            for mission in missions:
                _close(mission, status=S.EXPIRED, actor_id=None)
                if mission.failing:
                    _resolve(STEP.EXPIRE, mission.pk)
    except Exception:
        logger.warning("sweep: a batch of expiries failed; expiring its missions one by one", exc_info=True)
        return None
    return len(missions)


def missions_expire_due(*, limit: int) -> int:
    """Expire up to `limit` due missions, EXPIRE_BATCH to a transaction; returns how many."""
    expired, failed = 0, set()
    while expired + len(failed) < limit:
        size = min(EXPIRE_BATCH, limit - expired - len(failed))
        batch = missions_expire_batch(size=size, skip=failed)
        if batch == 0:
            break
        if batch is not None:
            expired += batch
            continue
        for _attempt in range(size):  # the batch failed: each mission its own unit
            mission_id = mission_expire_next(skip=failed)
            if mission_id is None:
                break
            expired += mission_id not in failed
    return expired


def mission_settle_unit(*, mission_id: int) -> bool:
    """The settle task's work: `mission_settle`, with a failure recorded for the sweep."""
    try:
        settled = mission_settle(mission_id=mission_id)
    except Exception as exc:
        sweep_unit_failed(step=STEP.SETTLE, mission_id=mission_id, exc=exc)
        return False
    if settled:
        _resolve(STEP.SETTLE, mission_id)
    return settled


def mission_emails_unit(*, mission_id: int, kinds: tuple[str, ...]) -> int:
    """The email tasks' work. A failed send backs off in the outbox itself; anything else
    that breaks (a template, the database) is recorded as the mission's email failure."""
    try:
        sent = mission_emails_send(mission_id=mission_id, kinds=kinds)
    except EmailSendFailed:
        raise  # each email recorded its own failure and backoff in the outbox
    except Exception as exc:
        sweep_unit_failed(step=STEP.EMAIL, mission_id=mission_id, exc=exc)
        return 0
    _resolve(STEP.EMAIL, mission_id)
    return sent


def _resend_settlements(grace: ExpressionWrapper) -> int:
    """Send again the settlement of ended missions whose message was sent long ago and
    has not run (a lost message, a broker that was down): at most once per grace period,
    so work still waiting in the queue is not queued twice."""
    due = list(
        Mission.objects.filter(is_active=False, settled_at__isnull=True)
        .filter(Q(settle_enqueued_at__isnull=True, decided_at__lt=grace) | Q(settle_enqueued_at__lt=grace))
        .filter(~_failing(STEP.SETTLE, waiting=True))
        .order_by("decided_at")
        .values_list("pk", flat=True)[:500]
    )
    if due:
        Mission.objects.filter(pk__in=due).update(settle_enqueued_at=Now())
    for mission_id in due:
        task_enqueue("missions.settle_mission", mission_id=mission_id)
    return len(due)


def _resend_emails(grace: ExpressionWrapper) -> int:
    """Send again the tasks of unsent emails, by mission and kind, on the same terms.
    Failed emails are left alone; one backing off waits for its `claimed_until`."""
    unsent = Notification.objects.filter(sent_at__isnull=True, failed_at__isnull=True)
    due = set(
        unsent.filter(Q(enqueued_at__isnull=True, created_at__lt=grace) | Q(enqueued_at__lt=grace))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=Now()))
        .filter(~_failing(STEP.EMAIL, waiting=True, mission="mission_id"))
        .values_list("mission_id", "kind")
        .distinct()
        .order_by()[:500]
    )
    streamer = Notification.Kind.MISSION_CREATED
    tasks = {
        ("missions.notify_streamer" if kind == streamer else "missions.notify_contributors", mid) for mid, kind in due
    }
    if due:
        unsent.filter(mission_id__in={mid for mid, _ in due}, kind__in={k for _, k in due}).update(enqueued_at=Now())
    for name, mission_id in sorted(tasks):
        task_enqueue(name, mission_id=mission_id)
    return len(tasks)


@dataclass(frozen=True)
class SweepReport:
    expired: int
    settlements_enqueued: int
    emails_enqueued: int
    idempotency_purged: int
    topups_reconciled: int = 0
    failed_steps: tuple[str, ...] = ()


def missions_sweep(*, batch_size: int, max_batches: int = 10) -> SweepReport:
    """Beat's periodic job: expire due missions (at most `batch_size` x `max_batches`),
    send again what a lost message left undone (unsettled ended missions, unsent emails),
    forget old idempotency records, and reconcile top-up charges left pending. Each step
    runs whatever happened to the one before: a step that raises is logged and named in
    the report."""
    grace = _from_now(-timedelta(seconds=settings.MISSIONHUB_RESEND_GRACE_SECONDS))
    steps = {
        "expired": lambda: missions_expire_due(limit=batch_size * max_batches),
        "settlements_enqueued": lambda: _resend_settlements(grace),
        "emails_enqueued": lambda: _resend_emails(grace),
        "idempotency_purged": idempotency_records_purge,
        "topups_reconciled": lambda: topup_charges_reconcile(
            older_than=timedelta(seconds=settings.MISSIONHUB_TOPUP_RECONCILE_SECONDS)
        ),
    }
    results, failed = {}, []
    for name, step in steps.items():
        try:
            results[name] = step()
        except Exception:
            logger.exception("sweep: the step %s failed; the other steps ran", name)
            results[name] = 0
            failed.append(name)
    return SweepReport(**results, failed_steps=tuple(failed))
