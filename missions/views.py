"""Server-rendered pages. Each view validates a plain form, makes one service or selector
call, and turns the service's errors (the API's codes) into messages."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import streamer_get_by_username, streamer_suggestions
from ledger import selectors as ledger_selectors
from ledger.services import wallet_topup
from ledger.verify import ledger_verify
from missionhub.errors import MissionHubError

from . import selectors, services
from .errors import MissionNotFound
from .forms import QUICK_PLEDGES, QUICK_TOPUPS, DecisionForm, MissionForm, PledgeForm, TopupForm

DECISION_MESSAGES = {
    "accept": gettext_lazy("Mission accepted. Good luck!"),
    "reject": gettext_lazy("Mission rejected. Every contributor will be refunded."),
    "success": gettext_lazy("Mission marked as succeeded. The pot is on its way to your wallet."),
    "fail": gettext_lazy("Mission marked as failed. Every contributor will be refunded."),
}


def _error(request, exc: MissionHubError) -> None:
    """The service's error as a message; its code rides along as a tag (pages use it)."""
    messages.error(request, exc.message, extra_tags=exc.code)


def _not_found(request) -> HttpResponse:
    """Our 404 page (the site's layout) for a mission or streamer that does not exist.

    Rendered here rather than raising Http404, so that it shows with DEBUG on too, where
    Django would show its own debug page.
    """
    return render(request, "404.html", status=404)


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _live(request, *, page: str, partial: str, context: dict):
    """The whole page, or (for htmx polling) only its live part; caches keep them apart."""
    response = render(request, partial if _is_htmx(request) else page, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


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
    return {
        "mission": mission,
        "contributors": selectors.mission_contributors(mission_id=mission_id),
        "timeline": selectors.mission_timeline(mission_id=mission_id),
        "is_streamer": user.is_authenticated and user.pk == mission.streamer_id,
    }


@require_GET
def mission_detail(request, mission_id: int):
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


@login_required
@require_POST
def mission_pledge(request, mission_id: int):
    form = PledgeForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("amount", []):
            messages.error(request, error, extra_tags="invalid_amount")
    else:
        try:
            pledge = services.pledge_create(
                mission_id=mission_id, user_id=request.user.pk, amount=form.cleaned_data["amount"]
            )
        except MissionHubError as exc:
            _error(request, exc)
        else:
            messages.success(
                request,
                _("You pledged %(amount)s cash. The pot is now %(pot)s.")
                % {"amount": intcomma(pledge.amount), "pot": intcomma(pledge.pot)},
            )
    return redirect("mission-detail", mission_id=mission_id)


@login_required
@require_http_methods(["GET", "POST"])
def mission_new(request):
    form = MissionForm(request.POST or None, initial={"streamer": request.GET.get("streamer", "")})
    if request.method == "POST" and form.is_valid():
        try:
            mission = services.mission_create(creator_id=request.user.pk, **form.cleaned_data)
        except MissionHubError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            if exc.code == "insufficient_funds":
                form.insufficient_funds = True
        else:
            messages.success(request, _("Your mission is live. Share it with the chat!"))
            return redirect("mission-detail", mission_id=mission.pk)
    context = {"form": form, "balance": ledger_selectors.wallet_balance(user_id=request.user.pk)}
    return render(request, "missions/mission_new.html", context, status=400 if form.errors else 200)


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


@login_required
@require_http_methods(["GET", "POST"])
def wallet(request):
    form = TopupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            topup = wallet_topup(user_id=request.user.pk, amount=form.cleaned_data["amount"])
        except MissionHubError as exc:
            form.add_error("amount", exc.message)
        else:
            messages.success(request, _("Added %(amount)s cash to your wallet.") % {"amount": intcomma(topup.amount)})
            return redirect("wallet")
    page = Paginator(ledger_selectors.wallet_history(user_id=request.user.pk), 20).get_page(request.GET.get("page"))
    selectors.postings_attach_missions(page)
    context = {
        "form": form,
        "quick_topups": QUICK_TOPUPS,
        "balance": ledger_selectors.wallet_balance(user_id=request.user.pk),
        "page": page,
    }
    return render(request, "missions/wallet.html", context, status=400 if form.errors else 200)


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


@require_GET
def overlay(request, username: str):
    """A transparent browser source for OBS: the streamer's live missions, nothing private."""
    streamer = streamer_get_by_username(username=username)
    if streamer is None:
        return _not_found(request)
    live, _past = selectors.streamer_missions(streamer_id=streamer.pk)
    context = {"streamer": streamer, "live": live}
    return _live(request, page="missions/overlay.html", partial="missions/_overlay_live.html", context=context)


@staff_member_required
@require_GET
def monitoring(request):
    context = {"summary": selectors.monitoring_summary()}
    if request.GET.get("verify") == "1":
        context["verify"] = ledger_verify()
    return render(request, "missions/monitoring.html", context)
