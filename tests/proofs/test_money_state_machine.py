"""The money promises, checked after every step of random sequences of everything users,
streamers, staff, the sweep and the worker do (a hypothesis `RuleBasedStateMachine`).

Beside the real services runs a model of who should hold what, written as plainly as
possible: wallets, escrows, the fee account, each mission's status and contributors.
After every step the database must agree with the model to the unit, and the ledger's
own promises must hold:

- cash is conserved: all balances sum to zero, every cached balance equals its postings,
  no account but `external` is below zero (`ledger_verify`, the missions' side included);
- every terminal mission is settled exactly once: a success pays the pot less the fee,
  any other end refunds each contributor exactly their total;
- a refused request changes nothing; a repeated `Idempotency-Key` moves cash once;
- each email goes out once.

Every refusal is predicted by the model before the call, so a service that refused the
wrong thing, or accepted what it should refuse, fails the run as surely as a lost unit.

Profiles: `ci` (the default) is derandomized, so every run checks the same sequences;
`MISSIONHUB_SOAK=1` (`make soak`) runs the long random profile. Concurrent settlements and
pledges are in tests/missions/test_concurrency_pg.py: this machine runs in one
connection, so that each example can roll back and start from an empty ledger.
"""

import itertools
import os
from dataclasses import dataclass, field

import pytest
from django.core import mail
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Now
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.errors import AmountAboveMaximum, AmountBelowMinimum, InsufficientFunds
from ledger.idempotency import IdempotentRequest, fingerprint_of, idempotency_run
from ledger.models import Account, Notification
from ledger.selectors import system_balance
from ledger.services import fee_bps, wallet_topup
from ledger.verify import ledger_verify
from missions import services
from missions.errors import InvalidTransition, MissionClosed, NotMissionStreamer, OwnMission, StreamerCannotPledge
from missions.models import Mission
from tests.accounts.factories import UserFactory
from tests.utils import both_databases

pytestmark = both_databases

settings.register_profile(
    "ci",
    max_examples=100,
    stateful_step_count=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=2_000,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("soak" if os.environ.get("MISSIONHUB_SOAK") else "ci")

OPEN = {Mission.Status.PENDING, Mission.Status.ACCEPTED}
TRANSITIONS = {
    "accept": (OPEN - {Mission.Status.ACCEPTED}, Mission.Status.ACCEPTED),
    "reject": ({Mission.Status.PENDING}, Mission.Status.REJECTED),
    "success": (OPEN, Mission.Status.SUCCEEDED),
    "fail": (OPEN, Mission.Status.FAILED),
}
RESULT_KINDS = (Notification.Kind.MISSION_CREATED, Notification.Kind.RESULT, Notification.Kind.PAYOUT)

# Amounts around every limit: refused ones (0, negative, just below the minimum, above the
# maximum), ordinary ones, and ones no wallet here can afford.
ordinary_pledges = st.integers(min_value=100, max_value=8_000)
pledge_amounts = st.one_of(
    ordinary_pledges,
    ordinary_pledges,
    ordinary_pledges,
    st.sampled_from([-500, 0, 1, 99, 100, 1_000_000, 1_000_001]),
    st.integers(min_value=200_000, max_value=1_000_000),
)
topup_amounts = st.one_of(
    st.integers(min_value=1_000, max_value=60_000),
    st.sampled_from([-1_000, 0, 999, 1_000, 1_000_000, 1_000_001]),
)


@dataclass
class ModelMission:
    id: int
    streamer: int
    status: str = Mission.Status.PENDING
    past_deadline: bool = False
    settled: bool = False
    pledges: dict[int, int] = field(default_factory=dict)

    @property
    def pot(self) -> int:
        return sum(self.pledges.values())


def _expected_refusal(amount: int, low: int, high: int) -> type[Exception] | None:
    if amount < low or amount <= 0:
        return AmountBelowMinimum
    if amount > high:
        return AmountAboveMaximum
    return None


class MoneyMachine(RuleBasedStateMachine):
    viewers = Bundle("viewers")
    streamers = Bundle("streamers")
    missions = Bundle("missions")

    def __init__(self):
        super().__init__()
        # Each example starts from the test's empty database and leaves nothing behind.
        # The services' own atomic blocks are durable; like Django's TestCase, this outer
        # block is marked as the test's so that they nest in it as savepoints.
        self._atomic = transaction.atomic(using="default")
        self._atomic._from_testcase = True
        self._atomic.__enter__()
        mail.outbox = []
        self.wallets: dict[int, int] = {}
        self.model: dict[int, ModelMission] = {}
        self.fees = 0
        self.keys = itertools.count()
        self.bps = fee_bps()

    def teardown(self):
        # Every check of the ledger and the missions' side (chains, cached balances against
        # postings, one settlement per terminal mission...), once per history: per step it
        # would cost more than the steps.
        problems = {name: found for name, found in ledger_verify().items() if found}
        transaction.set_rollback(True, using="default")
        self._atomic.__exit__(None, None, None)
        assert not problems, problems

    # --- people ---------------------------------------------------------------------------

    @initialize(target=streamers)
    def first_streamer(self):
        return self._user(is_streamer=True, cash=0)

    @initialize(target=viewers, cash=st.sampled_from([50_000, 100_000]))
    def first_viewer(self, cash):
        return self._user(is_streamer=False, cash=cash)

    # A handful of people per history, so that most steps move money.
    @precondition(lambda self: len(self.wallets) < 7)
    @rule(target=viewers, cash=st.sampled_from([0, 1_000, 30_000, 50_000]))
    def viewer(self, cash):
        return self._user(is_streamer=False, cash=cash)

    @precondition(lambda self: len(self.wallets) < 7)
    @rule(target=streamers)
    def streamer(self):
        return self._user(is_streamer=True, cash=0)

    def _user(self, *, is_streamer: bool, cash: int):
        user = UserFactory(is_streamer=is_streamer)
        self.wallets[user.pk] = 0
        if cash:
            wallet_topup(user_id=user.pk, amount=cash)
            self.wallets[user.pk] = cash
        return user

    # --- cash in --------------------------------------------------------------------------

    # People top up when they run low, so that most steps spend.
    @precondition(lambda self: min(self.wallets.values()) < 10_000)
    @rule(user=st.one_of(viewers, streamers), amount=topup_amounts)
    def topup(self, user, amount):
        refusal = _expected_refusal(amount, 1_000, 1_000_000)
        self._expect(refusal, lambda: wallet_topup(user_id=user.pk, amount=amount))
        if refusal is None:
            self.wallets[user.pk] += amount

    @precondition(lambda self: min(self.wallets.values()) < 10_000)
    @rule(user=viewers, amount=st.integers(min_value=1_000, max_value=20_000), repeats=st.integers(2, 3))
    def topup_with_a_repeated_key(self, user, amount, repeats):
        """The client retries one keyed request: the cash moves once, every answer the same."""
        request = IdempotentRequest(
            user_id=user.pk,
            key=f"topup-{next(self.keys)}",
            fingerprint=fingerprint_of(method="POST", path="/api/wallet/topups", data={"amount": amount}),
            render=lambda result: (201, {"id": result.id, "amount": result.amount, "balance": result.balance}),
        )
        answers = [
            idempotency_run(
                request=request, action=lambda r: wallet_topup(user_id=user.pk, amount=amount, idempotency=r)
            )
            for _ in range(repeats)
        ]
        self.wallets[user.pk] += amount
        assert [replayed for _, _, replayed in answers] == [False] + [True] * (repeats - 1)
        assert len({(status, body["id"], body["balance"]) for status, body, _ in answers}) == 1
        assert answers[0][1]["balance"] == self.wallets[user.pk]

    # --- missions and pledges -------------------------------------------------------------

    @rule(
        target=missions,
        creator=st.one_of(viewers, viewers, viewers, streamers),
        streamer=streamers,
        amount=pledge_amounts,
    )
    def create_mission(self, creator, streamer, amount):
        refusal = _expected_refusal(amount, 100, 1_000_000)
        if refusal is None and creator.pk == streamer.pk:
            refusal = OwnMission
        if refusal is None and self.wallets[creator.pk] < amount:
            refusal = InsufficientFunds
        mission = self._expect(
            refusal,
            lambda: services.mission_create(
                creator_id=creator.pk,
                streamer=streamer.username,
                title="A challenge",
                description="",
                amount=amount,
                duration_seconds=3600,
            ),
        )
        if mission is None:
            return multiple()  # refused: no mission joins the bundle
        self.wallets[creator.pk] -= amount
        self.model[mission.pk] = ModelMission(id=mission.pk, streamer=streamer.pk, pledges={creator.pk: amount})
        return mission.pk

    @rule(mission_id=missions, user=st.one_of(viewers, viewers, streamers), amount=pledge_amounts, keyed=st.booleans())
    def pledge(self, mission_id, user, amount, keyed):
        m = self.model[mission_id]
        refusal = _expected_refusal(amount, 100, 1_000_000)
        if refusal is None and user.pk == m.streamer:
            refusal = StreamerCannotPledge
        if refusal is None and (m.status not in OPEN or m.past_deadline):
            refusal = MissionClosed
        if refusal is None and self.wallets[user.pk] < amount:
            refusal = InsufficientFunds

        def action(request=None):
            return services.pledge_create(mission_id=mission_id, user_id=user.pk, amount=amount, idempotency=request)

        if keyed and refusal is None:
            request = IdempotentRequest(
                user_id=user.pk,
                key=f"pledge-{next(self.keys)}",
                fingerprint=fingerprint_of(
                    method="POST", path=f"/api/missions/{mission_id}/pledges", data={"amount": amount}
                ),
                render=lambda result: (201, {"id": result.id, "pot": result.pot, "balance": result.balance}),
            )
            first, second = (idempotency_run(request=request, action=action) for _ in range(2))
            assert (first[2], second[2]) == (False, True) and first[1] == second[1]
        else:
            self._expect(refusal, action)
        if refusal is None:
            self.wallets[user.pk] -= amount
            m.pledges[user.pk] = m.pledges.get(user.pk, 0) + amount

    # A whole story in one step, so that every history has missions that many people
    # back, that the streamer accepts or not and then ends (a fee-bearing payout, a refund
    # to several contributors, a reject tried after an accept, a pledge and a decision
    # tried after the deadline), and that the worker settles:
    # step by random step these are rare.
    @rule(
        target=missions,
        creator=viewers,
        streamer=streamers,
        amount=ordinary_pledges,
        backers=st.lists(st.tuples(viewers, ordinary_pledges, st.booleans()), max_size=5),
        accept=st.booleans(),
        ending=st.sampled_from(["success", "success", "fail", "reject", "deadline"]),
        afterwards=st.sampled_from(sorted(TRANSITIONS)),
        deliveries=st.integers(1, 2),
    )
    def mission_story(self, creator, streamer, amount, backers, accept, ending, afterwards, deliveries):
        for user, cash in [(creator, amount), *((user, cash) for user, cash, _ in backers)]:
            if self.wallets[user.pk] < cash:
                wallet_topup(user_id=user.pk, amount=60_000)
                self.wallets[user.pk] += 60_000
        mission_id = self.create_mission(creator, streamer, amount)
        for user, cash, keyed in backers:
            self.pledge(mission_id, user, cash, keyed)
        if accept:
            self.decide(mission_id, "accept", True, creator)
        if ending == "deadline":
            self.deadline_passes(mission_id)
            self.pledge(mission_id, creator, 500, False)  # refused: too late
            self.decide(mission_id, "success", True, creator)  # refused: too late
            self.sweep_expires()
        else:
            self.decide(mission_id, ending, True, creator)  # refused after an accept if it is a reject
        if self.model[mission_id].status in OPEN:
            self.decide(mission_id, "fail", True, creator)
        self.decide(mission_id, afterwards, True, creator)  # refused: the mission has ended
        self.settle(mission_id, deliveries)
        self.send_emails(mission_id, deliveries)
        return mission_id

    # --- decisions, staff, time -----------------------------------------------------------

    @rule(
        mission_id=missions,
        action=st.sampled_from(sorted(TRANSITIONS)),
        by_streamer=st.sampled_from([True, True, True, False]),
        other=viewers,
    )
    def decide(self, mission_id, action, by_streamer, other):
        m = self.model[mission_id]
        user_id = m.streamer if by_streamer else other.pk
        allowed_from, target = TRANSITIONS[action]
        refusal = None
        if user_id != m.streamer:
            refusal = NotMissionStreamer
        elif m.status not in OPEN or m.past_deadline:
            refusal = MissionClosed
        elif m.status not in allowed_from:
            refusal = InvalidTransition
        self._expect(refusal, lambda: services.mission_decide(mission_id=mission_id, user_id=user_id, action=action))
        if refusal is None:
            m.status = target

    @rule(mission_id=missions, staff=viewers)
    def staff_cancel(self, mission_id, staff):
        m = self.model[mission_id]
        refusal = None if m.status in OPEN else MissionClosed
        self._expect(refusal, lambda: services.mission_cancel(mission_id=mission_id, staff_id=staff.pk))
        if refusal is None:
            m.status = Mission.Status.CANCELLED

    @rule(mission_id=missions)
    def deadline_passes(self, mission_id):
        Mission.objects.filter(pk=mission_id).update(deadline=Now())
        self.model[mission_id].past_deadline = True

    @precondition(lambda self: any(m.status in OPEN and m.past_deadline for m in self.model.values()))
    @rule()
    def sweep_expires(self):
        due = [m for m in self.model.values() if m.status in OPEN and m.past_deadline]
        assert services.missions_expire_due(limit=100) == len(due)
        for m in due:
            m.status = Mission.Status.EXPIRED

    # --- the worker ------------------------------------------------------------------------

    @rule(mission_id=missions, times=st.integers(1, 3))
    def settle(self, mission_id, times):
        """The settle task, delivered once or more (the broker may redeliver)."""
        m = self.model[mission_id]
        due = m.status not in OPEN and not m.settled
        results = [services.mission_settle(mission_id=mission_id) for _ in range(times)]
        assert results == [due] + [False] * (times - 1)
        if not due:
            return
        m.settled = True
        if m.status == Mission.Status.SUCCEEDED:
            fee = m.pot * self.bps // 10_000
            self.wallets[m.streamer] += m.pot - fee
            self.fees += fee
        else:
            for user_id, total in m.pledges.items():
                self.wallets[user_id] += total

    @rule(mission_id=missions, times=st.integers(1, 2))
    def send_emails(self, mission_id, times):
        for _ in range(times):
            services.mission_emails_send(mission_id=mission_id, kinds=RESULT_KINDS)

    # --- the promises ----------------------------------------------------------------------

    @invariant()
    def every_wallet_holds_what_the_model_says(self):
        held = dict(Account.objects.filter(kind=Account.Kind.WALLET).values_list("user_id", "balance"))
        assert {uid: held.get(uid, 0) for uid in self.wallets} == self.wallets
        assert system_balance(kind=Account.Kind.FEES) == self.fees

    @invariant()
    def every_mission_and_escrow_agrees(self):
        missions = Mission.objects.in_bulk(self.model)
        escrows = dict(
            Account.objects.filter(kind=Account.Kind.ESCROW, mission_id__in=self.model).values_list(
                "mission_id", "balance"
            )
        )
        for m in self.model.values():
            row = missions[m.id]
            assert (row.status, row.pot, row.contributor_count) == (m.status, m.pot, len(m.pledges))
            assert (row.settled_at is not None) == m.settled
            assert escrows[m.id] == (0 if m.settled else m.pot)

    @invariant()
    def cash_is_conserved(self):
        # The system accounts cache no balance: theirs is the sum of their postings.
        cached = Account.objects.exclude(kind__in=Account.SYSTEM_KINDS).aggregate(total=Sum("balance"))["total"]
        system = sum(system_balance(kind=kind) for kind in Account.SYSTEM_KINDS)
        assert (cached or 0) + system == 0
        assert not Account.objects.filter(balance__lt=0).exists()
        assert system_balance(kind=Account.Kind.FEES) >= 0

    @invariant()
    def each_email_goes_out_once_and_only_to_contributors(self):
        sent = Notification.objects.filter(sent_at__isnull=False)
        assert len(mail.outbox) == sent.count()
        for m in self.model.values():
            results = set(
                Notification.objects.filter(mission_id=m.id, kind=Notification.Kind.RESULT).values_list(
                    "user_id", flat=True
                )
            )
            assert results == (set(m.pledges) if m.settled else set())

    # ---------------------------------------------------------------------------------------

    def _expect(self, refusal: type[Exception] | None, call):
        """Run `call`; it must raise exactly `refusal`, or succeed when that is None."""
        if refusal is None:
            return call()
        with pytest.raises(refusal):
            call()
        return None


def test_the_money_promises_hold_over_random_histories(settings):
    settings.MISSIONHUB_FEE_BPS = 250  # a fee makes payouts and the fees account part of it
    run_state_machine_as_test(MoneyMachine, settings=PROFILE)
