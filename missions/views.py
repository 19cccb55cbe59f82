"""Server-rendered pages. Each view validates a plain form, makes one service or selector
call, and turns the service's errors (the API's codes) into messages."""

from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import streamer_get_by_username, streamer_suggestions
from ledger import selectors as ledger_selectors
from ledger.errors import IdempotencyKeyReused
from ledger.idempotency import idempotency_run, page_request
from ledger.services import wallet_topup
from missionhub.errors import MissionHubError
from missionhub.throttling import page_money_wait

from . import ledger_checks, selectors, services
from . import monitoring as monitoring_selectors
from .errors import MissionNotFound
from .forms import QUICK_PLEDGES, QUICK_TOPUPS, DecisionForm, MissionForm, MoneyForm, PledgeForm, TopupForm

DECISION_MESSAGES = {
    "accept": gettext_lazy("Mission accepted. Good luck!"),
    "reject": gettext_lazy("Mission rejected. Every contributor will be refunded."),
    "success": gettext_lazy("Mission marked as succeeded. The pot is on its way to your wallet."),
    "fail": gettext_lazy("Mission marked as failed. Every contributor will be refunded."),
}


FORM_REUSED = gettext_lazy(
    "This form was already sent with other values, so nothing moved. Check the amount and send it again."
)


def _error(request, exc: MissionHubError) -> None:
    """The service's error as a message; its code rides along as a tag (pages use it)."""
    messages.error(request, exc.message, extra_tags=exc.code)


def _not_found(request) -> HttpResponse:
    """Our 404 page (the site's layout) for a mission or streamer that does not exist.

    Rendered here rather than raising Http404, so that it shows with DEBUG on too, where
    Django would show its own debug page.
    """
    response = render(request, "404.html", status=404)
    # An unknown overlay is an ordinary page: only a real overlay may be framed.
    response["X-Frame-Options"] = "DENY"
    return response


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _live(request, *, page: str, partial: str, context: dict):
    """The whole page, or (for htmx polling) only its live part; caches keep them apart."""
    response = render(request, partial if _is_htmx(request) else page, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- forms that move cash -----------------------------------------------------------------


def _money_limited(request) -> int | None:
    """Over the user's money limit (shared with the API): say so, and how long to wait."""
    wait = page_money_wait(request)
    if wait is not None:
        messages.error(
            request,
            _("Too many payments in a short time. Nothing moved: wait %(seconds)s seconds and try again.")
            % {"seconds": wait},
            extra_tags="throttled",
        )
    return wait


def _throttled(response, wait: int):
    response.status_code = 429
    response["Retry-After"] = str(wait)
    return response


def _key_refused(request, form: MoneyForm) -> None:
    """A missing or malformed one-time key: nothing may move; say so once."""
    for error in form.errors.get("form_key", [])[:1]:
        messages.error(request, error, extra_tags="form_expired")


def _once(request, form: MoneyForm, *, action, outcome) -> tuple[dict, bool]:
    """Run the form's cash movement once per one-time key: (its outcome, replayed).

    `outcome(result)` is what the page says about it, the first time and to every
    resubmission; it is stored in the same database transaction as the postings.
    Raises IdempotencyKeyReused and the service's errors (then nothing is stored).
    """
    idempotency = page_request(
        user_id=request.user.pk,
        form_key=form.cleaned_data["form_key"],
        path=request.path,
        data=form.fingerprint_data(),
        render=lambda result: (302, outcome(result)),
    )
    _status, body, replayed = idempotency_run(request=idempotency, action=action)
    return body, replayed


# --- viewers ------------------------------------------------------------------------------


@require_GET
def home(request):
    sort = "pot" if request.GET.get("sort") == "pot" else "new"
    streamer = request.GET.get("streamer", "").strip()[:150] or None
    page = Paginator(selectors.missions_live(sort=sort, streamer=streamer), 24).get_page(request.GET.get("page"))
    context = {
        "missions": selectors.missions_attach_usernames(page.object_list),
        "page": page,
        "sort": sort,
        "streamer": streamer or "",
    }
    return render(request, "missions/home.html", context)


def _mission_context(request, mission_id: int) -> dict | None:
    """The mission page's context, or None when there is no such mission."""
    try:
        mission = selectors.mission_get(mission_id=mission_id)
    except MissionNotFound:
        return None
    mission = selectors.missions_attach_usernames([mission])[0]
    user = request.user
    # A mission with 100,000 backers renders as fast as one with ten: the top backers and
    # the latest events, and how many more there are.
    contributors = selectors.mission_contributors(mission_id=mission_id, limit=settings.MISSIONHUB_PAGE_BACKERS)
    timeline = selectors.mission_timeline(mission_id=mission_id, last=settings.MISSIONHUB_PAGE_EVENTS)
    earlier = 0
    if len(timeline) == settings.MISSIONHUB_PAGE_EVENTS:
        earlier = selectors.mission_events_count(mission_id=mission_id) - len(timeline)
    return {
        "mission": mission,
        "contributors": contributors,
        "more_backers": max(mission.contributor_count - len(contributors), 0),
        "timeline": timeline,
        "earlier_events": earlier,
        "is_streamer": user.is_authenticated and user.pk == mission.streamer_id,
    }


def _mission_page(request, mission_id: int):
    context = _mission_context(request, mission_id)
    if context is None:
        return _not_found(request)
    if not _is_htmx(request):
        user = request.user
        context.update(
            pledge_form=PledgeForm(),
            quick_pledges=QUICK_PLEDGES,
            balance=ledger_selectors.wallet_balance(user_id=user.pk) if user.is_authenticated else None,
        )
    return _live(request, page="missions/mission_detail.html", partial="missions/_mission_live.html", context=context)


@require_GET
def mission_detail(request, mission_id: int):
    return _mission_page(request, mission_id)


@login_required
@require_POST
def mission_pledge(request, mission_id: int):
    if (wait := _money_limited(request)) is not None:
        return _throttled(_mission_page(request, mission_id), wait)
    form = PledgeForm(request.POST)
    if not form.is_valid():
        _key_refused(request, form)
        for error in form.errors.get("amount", []):
            messages.error(request, error, extra_tags="invalid_amount")
        return redirect("mission-detail", mission_id=mission_id)
    try:
        pledge, replayed = _once(
            request,
            form,
            action=lambda idempotency: services.pledge_create(
                mission_id=mission_id,
                user_id=request.user.pk,
                amount=form.cleaned_data["amount"],
                idempotency=idempotency,
            ),
            outcome=lambda pledge: {"amount": pledge.amount, "pot": pledge.pot},
        )
    except IdempotencyKeyReused:
        messages.error(request, FORM_REUSED, extra_tags="form_reused")
    except MissionHubError as exc:
        _error(request, exc)
    else:
        amounts = {"amount": intcomma(pledge["amount"]), "pot": intcomma(pledge["pot"])}
        if replayed:
            messages.info(
                request,
                _("You already sent this pledge: %(amount)s cash, pledged once. Nothing more moved.") % amounts,
                extra_tags="already_done",
            )
        else:
            messages.success(request, _("You pledged %(amount)s cash. The pot is now %(pot)s.") % amounts)
    return redirect("mission-detail", mission_id=mission_id)


def _mission_new_page(request, form: MissionForm, *, status: int | None = None):
    context = {"form": form, "balance": ledger_selectors.wallet_balance(user_id=request.user.pk)}
    return render(request, "missions/mission_new.html", context, status=status or (400 if form.errors else 200))


@login_required
@require_http_methods(["GET", "POST"])
def mission_new(request):
    form = MissionForm(request.POST or None, initial={"streamer": request.GET.get("streamer", "")})
    if request.method != "POST":
        return _mission_new_page(request, form)
    if (wait := _money_limited(request)) is not None:
        return _throttled(_mission_new_page(request, form), wait)
    if not form.is_valid():
        _key_refused(request, form)
        return _mission_new_page(request, form)
    try:
        mission, replayed = _once(
            request,
            form,
            action=lambda idempotency: services.mission_create(
                creator_id=request.user.pk, idempotency=idempotency, **form.fingerprint_data()
            ),
            outcome=lambda mission: {"mission_id": mission.pk},
        )
    except IdempotencyKeyReused:
        messages.error(request, FORM_REUSED, extra_tags="form_reused")
        return _mission_new_page(request, form, status=400)
    except MissionHubError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        form.insufficient_funds = exc.code == "insufficient_funds"
        return _mission_new_page(request, form)
    if replayed:
        messages.info(
            request,
            _("You already started this mission: it was created once. Nothing more moved."),
            extra_tags="already_done",
        )
    else:
        messages.success(request, _("Your mission is live. Share it with the chat!"))
    return redirect("mission-detail", mission_id=mission["mission_id"])


@require_GET
def streamer_suggest(request):
    """`<option>`s of streamers' usernames for the new-mission form's datalist (htmx)."""
    names = streamer_suggestions(prefix=request.GET.get("streamer", "")[:150])
    return render(request, "missions/_streamer_options.html", {"names": names})


@require_GET
def streamer_channel(request, username: str):
    streamer = streamer_get_by_username(username=username)
    if streamer is None:
        return _not_found(request)
    live, past = selectors.streamer_missions(streamer_id=streamer.pk)
    page = Paginator(past, 20).get_page(request.GET.get("page"))
    selectors.missions_attach_payouts(streamer_id=streamer.pk, missions=page)
    context = {
        "streamer": streamer,
        "live": live,
        "page": page,
        "earned": ledger_selectors.earned_total(user_id=streamer.pk),
    }
    return render(request, "missions/streamer_channel.html", context)


def _wallet_page(request, form: TopupForm, *, status: int | None = None):
    page = Paginator(ledger_selectors.wallet_history(user_id=request.user.pk), 20).get_page(request.GET.get("page"))
    selectors.postings_attach_missions(page)
    context = {
        "form": form,
        "quick_topups": QUICK_TOPUPS,
        "balance": ledger_selectors.wallet_balance(user_id=request.user.pk),
        "page": page,
    }
    return render(request, "missions/wallet.html", context, status=status or (400 if form.errors else 200))


@login_required
@require_http_methods(["GET", "POST"])
def wallet(request):
    if request.method != "POST":
        return _wallet_page(request, TopupForm())
    if (wait := _money_limited(request)) is not None:
        return _throttled(_wallet_page(request, TopupForm()), wait)
    form = TopupForm(request.POST)
    if not form.is_valid():
        _key_refused(request, form)
        return _wallet_page(request, form)
    try:
        topup, replayed = _once(
            request,
            form,
            action=lambda idempotency: wallet_topup(
                user_id=request.user.pk, amount=form.cleaned_data["amount"], idempotency=idempotency
            ),
            outcome=lambda topup: {"amount": topup.amount},
        )
    except IdempotencyKeyReused:
        messages.error(request, FORM_REUSED, extra_tags="form_reused")
        return _wallet_page(request, form, status=400)
    except MissionHubError as exc:
        form.add_error("amount", exc.message)
        return _wallet_page(request, form)
    amount = {"amount": intcomma(topup["amount"])}
    if replayed:
        messages.info(
            request,
            _("You already sent this top-up: %(amount)s cash, added once. Nothing more was charged.") % amount,
            extra_tags="already_done",
        )
    else:
        messages.success(request, _("Added %(amount)s cash to your wallet.") % amount)
    return redirect("wallet")


# --- streamers ----------------------------------------------------------------------------


def _dashboard_context(user) -> dict:
    live, past = selectors.streamer_missions(streamer_id=user.pk)
    recent = selectors.missions_attach_payouts(streamer_id=user.pk, missions=past[:20])
    return {
        "live": selectors.missions_attach_usernames(live),
        "recent": recent,
        "earned": ledger_selectors.earned_total(user_id=user.pk),
    }


@login_required
@require_GET
def dashboard(request):
    if not request.user.is_streamer:
        messages.info(request, _("The dashboard is for streamers. Sign up as a streamer to receive missions."))
        return redirect("home")
    context = _dashboard_context(request.user)
    return _live(request, page="missions/dashboard.html", partial="missions/_dashboard_live.html", context=context)


@login_required
@require_POST
def mission_decide(request, mission_id: int):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return HttpResponse(status=400)
    action = form.cleaned_data["action"]
    try:
        services.mission_decide(mission_id=mission_id, user_id=request.user.pk, action=action)
    except MissionHubError as exc:
        _error(request, exc)
    else:
        messages.success(request, DECISION_MESSAGES[action])
    next_url = request.POST.get("next", "")
    if next_url not in (reverse("dashboard"), reverse("mission-detail", args=[mission_id])):
        next_url = reverse("dashboard")
    return redirect(next_url)


# --- overlay and staff --------------------------------------------------------------------


@xframe_options_exempt
@csp_replace({"frame-ancestors": ["*"]})
@require_GET
def overlay(request, username: str):
    """A transparent browser source for OBS: the streamer's live missions, nothing private.

    The one page any site may frame: streaming tools embed it in an iframe.
    """
    streamer = streamer_get_by_username(username=username)
    if streamer is None:
        return _not_found(request)
    live, _past = selectors.streamer_missions(streamer_id=streamer.pk)
    context = {"streamer": streamer, "live": live}
    return _live(request, page="missions/overlay.html", partial="missions/_overlay_live.html", context=context)


@staff_member_required
@require_GET
def monitoring(request):
    """Charts and counts from stored data, and the latest ledger check (a task runs it)."""
    context = monitoring_selectors.monitoring_page(now=timezone.now())
    return render(request, "missions/monitoring.html", context)


@staff_member_required
@require_POST
def monitoring_ledger_check(request):
    """Ask a worker to check the ledger now; the page shows the result once it ran."""
    check, created = ledger_checks.ledger_check_request(staff_id=request.user.pk)
    if created:
        messages.success(request, _("Ledger check asked for. A worker runs it; reload this page for its result."))
    else:
        messages.info(request, _("A ledger check is already waiting for a worker (#%(id)s).") % {"id": check.pk})
    return redirect("staff-monitoring")
