from collections.abc import Iterable

from django.db.models import QuerySet
from django.db.models.functions import Now

from accounts.selectors import user_get_by_username, usernames_by_id
from ledger import selectors as ledger_selectors
from ledger.models import Notification, Transaction

from .errors import MissionNotFound
from .models import Mission


def mission_list(
    *,
    status: str | None = None,
    streamer: str | None = None,
    creator: str | None = None,
    active: bool | None = None,
) -> QuerySet[Mission]:
    """Missions, newest first, filtered by status, streamer/creator username and activity."""
    missions = Mission.objects.order_by("-pk")
    if status:
        missions = missions.filter(status=status)
    if active is not None:
        missions = missions.filter(is_active=active)
    for field, username in (("streamer_id", streamer), ("creator_id", creator)):
        if username:
            user = user_get_by_username(username=username)
            missions = missions.filter(**{field: user.pk}) if user else missions.none()
    return missions


def mission_get(*, mission_id: int) -> Mission:
    mission = Mission.objects.filter(pk=mission_id).first()
    if mission is None:
        raise MissionNotFound()
    return mission


def missions_attach_usernames(missions: Iterable[Mission]) -> list[Mission]:
    """Set `streamer_username` and `creator_username` with one query on the accounts database."""
    missions = list(missions)
    names = usernames_by_id(user_ids={m.streamer_id for m in missions} | {m.creator_id for m in missions})
    for mission in missions:
        mission.streamer_username = names.get(mission.streamer_id, "")
        mission.creator_username = names.get(mission.creator_id, "")
    return missions


def mission_contributors(*, mission_id: int, limit: int | None = None) -> list[dict]:
    """Contributors and what each put in, biggest first (ties: lowest user id): the first
    `limit` of them, an index range however many there are (None: all)."""
    mission_get(mission_id=mission_id)
    totals = list(ledger_selectors.contributions(mission_id=mission_id).values_list("user_id", "total")[:limit])
    names = usernames_by_id(user_ids={uid for uid, _total in totals})
    return [{"user_id": uid, "username": names.get(uid, ""), "amount": total} for uid, total in totals]


def mission_timeline(*, mission_id: int, last: int | None = None) -> list[dict]:
    """The mission's events in order, each with its actor's username: the `last` ones only
    when given (an index range from the newest, however many there are)."""
    mission_get(mission_id=mission_id)
    events = ledger_selectors.mission_events(mission_id=mission_id)
    events = list(events) if last is None else list(events.order_by("-pk")[:last])[::-1]
    names = usernames_by_id(user_ids={e.actor_id for e in events if e.actor_id})
    return [
        {
            "id": e.pk,
            "kind": e.kind,
            "label": e.get_kind_display(),
            "actor": names.get(e.actor_id) if e.actor_id else None,
            "amount": e.amount,
            "created_at": e.created_at,
        }
        for e in events
    ]


def mission_events_count(*, mission_id: int) -> int:
    return ledger_selectors.mission_events(mission_id=mission_id).count()


def missions_live(*, sort: str = "new", streamer: str | None = None) -> QuerySet[Mission]:
    """Open missions whose deadline has not passed: newest first, or biggest pot first."""
    missions = mission_list(active=True, streamer=streamer).filter(deadline__gt=Now())
    return missions.order_by("-pot", "-pk") if sort == "pot" else missions


def streamer_missions(*, streamer_id: int) -> tuple[list[Mission], QuerySet[Mission]]:
    """A streamer's live missions (all of them) and their ended ones (a queryset to page)."""
    missions = Mission.objects.filter(streamer_id=streamer_id)
    # Past its deadline a mission takes no pledge or decision, even before the sweep expires it.
    live = list(missions.filter(is_active=True, deadline__gt=Now()).order_by("deadline", "pk"))
    return live, missions.filter(is_active=False).order_by("-pk")


def missions_attach_payouts(*, streamer_id: int, missions: Iterable[Mission]) -> list[Mission]:
    """Set `paid`: what the streamer's wallet received from each mission (0 if nothing)."""
    missions = list(missions)
    payouts = ledger_selectors.payouts_by_mission(user_id=streamer_id, mission_ids=[m.pk for m in missions])
    for mission in missions:
        mission.paid = payouts.get(mission.pk, 0)
    return missions


def postings_attach_missions(postings: Iterable) -> list:
    """Set `mission_title` and `kind_label` on wallet-history rows, one query for the titles."""
    postings = list(postings)
    mission_ids = {p.mission_id for p in postings} - {None}
    titles = dict(Mission.objects.filter(pk__in=mission_ids).values_list("pk", "title"))
    for posting in postings:
        posting.mission_title = titles.get(posting.mission_id, "")
        posting.kind_label = Transaction.Kind(posting.kind).label
    return postings


def emails_failed_latest(*, limit: int = 10) -> list[Notification]:
    """The emails most recently given up on, each with its mission's `mission_title`."""
    failed = list(Notification.objects.filter(failed_at__isnull=False).order_by("-failed_at", "-pk")[:limit])
    titles = dict(Mission.objects.filter(pk__in={n.mission_id for n in failed}).values_list("pk", "title"))
    for notification in failed:
        notification.mission_title = titles.get(notification.mission_id, "")
    return failed
