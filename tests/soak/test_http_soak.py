"""A concurrency soak on PostgreSQL over HTTP (issue 8, build item 3): gunicorn with
deploy/gunicorn.conf.py (2 workers x 4 threads), a real Celery worker on Redis, and client
processes topping up (some retrying with their Idempotency-Key), creating missions,
pledging on shared and on two hot missions, and streamers deciding, for a bounded time.

Afterwards: no 5xx and no unexpected answer, every ended mission settled, the worker
alive, `ledger_verify` and the missions' checks clean, and the clients' own account of
what the server accepted equal to the ledger's (cash in from top-ups, cash into escrows).
Short in CI; `MISSIONHUB_SOAK=1` (`make soak`) runs it for minutes with more clients.
Its figures are written to <MISSIONHUB_VAR_DIR>/soak/http-soak.json.
"""

import json
import os
import time

import pytest
from django.conf import settings
from django.db.models import Sum
from rest_framework_simplejwt.tokens import RefreshToken

from bench import stack
from ledger.models import Account, Posting, Transaction
from ledger.selectors import system_balance
from ledger.services import wallet_topup
from ledger.verify import ledger_verify
from missions.models import Mission
from missions.services import mission_create
from tests.accounts.factories import UserFactory
from tests.soak import clients
from tests.utils import requires_postgresql
from tests.worker import process_env

pytestmark = [
    requires_postgresql,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "accounts"]),
]

LONG = bool(os.environ.get("MISSIONHUB_SOAK"))
SECONDS = 180 if LONG else 20
VIEWERS = 10 if LONG else 5
STREAMERS = 4 if LONG else 2
SETTLE_WITHIN = 120  # seconds after the load stops, for the last decisions


def token(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


def web_server(log_dir):
    env = stack.app_environment(log_dir, postgres=False)
    env.update(process_env())
    env.update(SECRET_KEY=settings.SECRET_KEY, WEB_CONCURRENCY="2", GUNICORN_THREADS="4", DEBUG="false")
    return stack.gunicorn(
        "gunicorn (soak)",
        "missionhub.wsgi",
        env=env,
        cwd=stack.BASE_DIR,
        log=log_dir / "gunicorn.log",
        health="/healthz",
    )


def wait_settled(timeout: float) -> list[Mission]:
    deadline = time.monotonic() + timeout
    while Mission.objects.exclude(status__in=Mission.OPEN_STATUSES).filter(settled_at__isnull=True).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return list(Mission.objects.exclude(status__in=Mission.OPEN_STATUSES).filter(settled_at__isnull=True))


def test_many_clients_over_http_lose_and_create_no_unit(celery_worker_process, tmp_path):
    hot_streamer = UserFactory(is_streamer=True, username="hot_streamer")
    streamers = [UserFactory(is_streamer=True, username=f"streamer{i}") for i in range(STREAMERS)]
    viewers = UserFactory.create_batch(VIEWERS)
    # Two hot missions that every viewer piles onto; their streamer ends them after the load.
    wallet_topup(user_id=viewers[0].pk, amount=10_000)
    hot = [
        mission_create(creator_id=viewers[0].pk, streamer=hot_streamer.username, title="Hot", description="",
                       amount=1_000, duration_seconds=3600).pk
        for _ in range(2)
    ]  # fmt: skip
    server, url = web_server(tmp_path)
    try:
        jobs = [
            (clients.viewer, (url, token(v), i, [s.username for s in streamers], hot, SECONDS))
            for i, v in enumerate(viewers)
        ] + [(clients.streamer, (url, token(s), 100 + i, s.username, SECONDS)) for i, s in enumerate(streamers)]
        seen, load_seconds = clients.run_clients(jobs, seconds=SECONDS)
        end = clients.Client(url, token(hot_streamer), 0)
        for mission_id, action in zip(hot, ("success", "fail"), strict=True):
            assert end.call("POST", f"/api/missions/{mission_id}/{action}")[0] == 200
        seen.merge(end.tally)
        unsettled = wait_settled(SETTLE_WITHIN)
    finally:
        server.stop()

    ended = Mission.objects.exclude(status__in=Mission.OPEN_STATUSES)
    latencies = [(m.settled_at - m.decided_at).total_seconds() for m in ended.filter(settled_at__isnull=False)]
    escrowed = Posting.objects.filter(transaction__kind=Transaction.Kind.PLEDGE, account__kind=Account.Kind.ESCROW)
    figures = clients.figures_of(seen, load_seconds=load_seconds, clients=len(jobs), latencies=latencies) | {
        "missions_created": len(seen.missions_created) + len(hot),
        "missions_ended": ended.count(),
        "hot_pots": list(Mission.objects.filter(pk__in=hot).order_by("pk").values_list("pot", flat=True)),
        "unsettled": len(unsettled),
    }
    (settings.VAR_DIR / "soak").mkdir(exist_ok=True)
    (settings.VAR_DIR / "soak" / "http-soak.json").write_text(json.dumps(figures, indent=2))
    print("http soak:", json.dumps(figures))  # noqa: T201 (the figures docs/RELIABILITY.md quotes)

    assert seen.failures == [], seen.failures
    assert seen.replays_differing == 0
    assert unsettled == [], f"ended but not settled {SETTLE_WITHIN}s after the load: {unsettled}"
    assert celery_worker_process.process.poll() is None, "the worker died"
    assert seen.statuses[201] > 50 and sum(seen.decided.values()) > 5, figures  # the load did happen
    # The clients' account of what the server accepted is the ledger's, to the unit.
    external = system_balance(kind=Account.Kind.EXTERNAL)
    assert -external == seen.topped_up + 10_000
    assert escrowed.aggregate(total=Sum("amount"))["total"] == seen.pledged + 2_000
    problems = {name: found for name, found in ledger_verify().items() if found}
    assert not problems, problems
    # An ended mission's escrow is empty; an open one holds exactly its pot.
    open_pots = Mission.objects.filter(status__in=Mission.OPEN_STATUSES).aggregate(total=Sum("pot"))["total"] or 0
    held = Account.objects.filter(kind=Account.Kind.ESCROW).aggregate(total=Sum("balance"))["total"]
    assert held == open_pots
