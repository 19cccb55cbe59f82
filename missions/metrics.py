"""Business metrics for Prometheus, read from the database at scrape time.

The ledger and the outbox already count everything that happened, in whichever process
it happened (web or worker), so /metrics on any web instance reports the same truth:
dashboards read these with max(), not sum().
"""

import logging

from django.db.models import Count, Q, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from ledger.models import Event, Notification, Posting, Transaction

from .models import Mission, SweepFailure

logger = logging.getLogger(__name__)

DECISIONS = ("accepted", "rejected", "succeeded", "failed", "expired", "cancelled")


class MissionHubCollector(Collector):
    def describe(self):
        return []  # no queries at registration: collect() runs on each scrape only

    def collect(self):
        try:
            yield from self._collect()
        except Exception:  # a scrape must not take the endpoint down with it
            logger.exception("could not read MissionHub metrics from the database")

    def _collect(self):
        missions = Mission.objects.aggregate(
            created=Count("pk"),
            pledged=Sum("pot", default=0),
            open=Count("pk", filter=Q(status__in=Mission.OPEN_STATUSES)),
            unsettled=Count("pk", filter=~Q(status__in=Mission.OPEN_STATUSES) & Q(settled_at__isnull=True)),
        )
        yield CounterMetricFamily("missionhub_missions_created", "Missions created.", value=missions["created"])
        yield CounterMetricFamily(
            "missionhub_pledged_cash", "Cash pledged into missions' pots.", value=missions["pledged"]
        )
        yield GaugeMetricFamily("missionhub_open_missions", "Pending or accepted missions.", value=missions["open"])
        yield GaugeMetricFamily(
            "missionhub_unsettled_missions", "Ended missions not yet paid out or refunded.", value=missions["unsettled"]
        )

        counts = dict(
            Transaction.objects.filter(kind__in=["pledge", "topup", "payout", "refund"])
            .values_list("kind")
            .annotate(n=Count("pk"))
            .order_by()
        )
        yield CounterMetricFamily("missionhub_pledges", "Pledges, the creators' first ones included.",
                                  value=counts.get("pledge", 0))  # fmt: skip
        yield CounterMetricFamily("missionhub_topups", "Wallet top-ups.", value=counts.get("topup", 0))

        settlements = CounterMetricFamily("missionhub_settlements", "Missions settled.", labels=["kind"])
        settled_cash = CounterMetricFamily("missionhub_settled_cash", "Cash paid out or refunded.", labels=["kind"])
        cash = dict(
            Posting.objects.filter(transaction__kind__in=["payout", "refund"], amount__gt=0)
            .values_list("transaction__kind")
            .annotate(total=Sum("amount"))
            .order_by()
        )
        for kind in ("payout", "refund"):
            settlements.add_metric([kind], counts.get(kind, 0))
            settled_cash.add_metric([kind], cash.get(kind, 0))
        yield settlements
        yield settled_cash

        decisions = CounterMetricFamily("missionhub_decisions", "Missions' status changes.", labels=["outcome"])
        by_kind = dict(Event.objects.filter(kind__in=DECISIONS).values_list("kind").annotate(n=Count("pk")).order_by())
        for outcome in DECISIONS:
            decisions.add_metric([outcome], by_kind.get(outcome, 0))
        yield decisions

        emails = CounterMetricFamily(
            "missionhub_emails", "Emails sent, and failed attempts.", labels=["kind", "result"]
        )
        rows = (
            Notification.objects.values_list("kind")
            .annotate(
                sent=Count("pk", filter=Q(sent_at__isnull=False)),
                attempts=Sum("attempts", default=0),
                given_up=Count("pk", filter=Q(failed_at__isnull=False)),
            )
            .order_by()
        )
        found = {kind: (sent, attempts - sent, given_up) for kind, sent, attempts, given_up in rows}
        given_up_emails = GaugeMetricFamily(
            "missionhub_failed_emails",
            "Emails marked failed (refused for good, user gone, or out of tries): never retried.",
            labels=["kind"],
        )
        for kind in Notification.Kind.values:
            sent, failed, given_up = found.get(kind, (0, 0, 0))
            emails.add_metric([kind, "sent"], sent)
            emails.add_metric([kind, "failed"], max(failed, 0))
            given_up_emails.add_metric([kind], given_up)
        yield emails
        yield given_up_emails

        sweep = {
            step: (failures, failing)
            for step, failures, failing in SweepFailure.objects.values_list("step")
            .annotate(failures=Sum("attempts"), failing=Count("pk", filter=Q(resolved_at__isnull=True)))
            .order_by()
        }
        failures = CounterMetricFamily(
            "missionhub_sweep_failures", "Units of sweep work (close, settle, email) that raised.", labels=["step"]
        )
        failing = GaugeMetricFamily(
            "missionhub_sweep_failing", "Missions whose close, settle or email is failing and retried.", labels=["step"]
        )
        for step in SweepFailure.Step.values:
            failures.add_metric([step], sweep.get(step, (0, 0))[0])
            failing.add_metric([step], sweep.get(step, (0, 0))[1])
        yield failures
        yield failing


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(MissionHubCollector())
        _registered = True
