"""The soak's clients: separate processes speaking HTTP only (no Django here), each
keeping its own account of what the server said it did, to be checked against the
ledger afterwards (Jepsen's bank test: the totals the clients saw must be the totals
the ledger holds).

An answer is expected (2xx, or a refusal the contract names: `insufficient_funds`,
`mission_closed`, `invalid_transition`) or it is a failure: any 5xx, any other code,
any connection error. Failures are counted with a sample of each."""

import multiprocessing
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

EXPECTED_REFUSALS = {"insufficient_funds", "mission_closed", "invalid_transition"}


@dataclass
class Tally:
    """What one client saw; summed over clients by the test."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    topped_up: int = 0  # cash the server said it took in (each keyed top-up once)
    pledged: int = 0  # cash the server said went into escrows (pledges and new missions)
    replays_differing: int = 0  # a repeated Idempotency-Key answered differently
    missions_created: list = field(default_factory=list)
    decided: Counter = field(default_factory=Counter)

    def merge(self, other: "Tally") -> None:
        self.requests += other.requests
        self.statuses.update(other.statuses)
        self.failures += other.failures
        self.topped_up += other.topped_up
        self.pledged += other.pledged
        self.replays_differing += other.replays_differing
        self.missions_created += other.missions_created
        self.decided.update(other.decided)


class Client:
    def __init__(self, base_url: str, token: str, seed: int):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"})
        self.random = random.Random(seed)
        self.tally = Tally()

    def call(self, method: str, path: str, body: dict | None = None, key: str | None = None):
        """(status, json) of an expected answer, or None after recording a failure."""
        headers = {"Idempotency-Key": key} if key else {}
        self.tally.requests += 1
        try:
            response = self.session.request(method, self.base_url + path, json=body, headers=headers, timeout=30)
        except requests.RequestException as exc:
            self._fail(method, path, f"{type(exc).__name__}: {exc}")
            return None
        self.tally.statuses[response.status_code] += 1
        data = response.json() if response.content else None
        if response.status_code < 300:
            return response.status_code, data
        code = data.get("code") if isinstance(data, dict) else None
        if response.status_code in (400, 409) and code in EXPECTED_REFUSALS:
            return response.status_code, data
        self._fail(method, path, f"{response.status_code} {response.text[:300]}")
        return None

    def _fail(self, method: str, path: str, what: str) -> None:
        if len(self.tally.failures) < 20:
            self.tally.failures.append(f"{method} {path}: {what}")
        else:
            self.tally.failures.append("...")

    # --- what viewers do --------------------------------------------------------------------

    def topup(self) -> None:
        amount = self.random.randrange(1_000, 30_000)
        if self.random.random() < 0.3:  # a client that retries with its key
            key = uuid.uuid4().hex
            first, second = self.call("POST", "/api/wallet/topups", {"amount": amount}, key), None
            if first is not None:
                second = self.call("POST", "/api/wallet/topups", {"amount": amount}, key)
                if second is not None and second[1] != first[1]:
                    self.tally.replays_differing += 1
        else:
            first = self.call("POST", "/api/wallet/topups", {"amount": amount})
        if first is not None and first[0] == 201:
            self.tally.topped_up += amount

    def pledge(self, mission_id: int) -> None:
        amount = self.random.randrange(100, 2_000)
        answer = self.call("POST", f"/api/missions/{mission_id}/pledges", {"amount": amount})
        if answer is not None and answer[0] == 201:
            self.tally.pledged += amount

    def create_mission(self, streamer: str) -> None:
        amount = self.random.randrange(100, 2_000)
        body = {"title": "Soak challenge", "description": "", "streamer": streamer, "amount": amount,
                "duration_seconds": 3600}  # fmt: skip
        answer = self.call("POST", "/api/missions", body)
        if answer is not None and answer[0] == 201:
            self.tally.pledged += amount
            self.tally.missions_created.append(answer[1]["id"])

    def live_missions(self, streamer: str) -> list[int]:
        answer = self.call("GET", f"/api/missions?streamer={streamer}&active=true")
        return [m["id"] for m in answer[1]["results"]] if answer else []

    # --- what streamers do ------------------------------------------------------------------

    def decide_some(self, streamer: str) -> None:
        answer = self.call("GET", f"/api/missions?streamer={streamer}&active=true")
        for mission in (answer[1]["results"] if answer else [])[:5]:
            roll = self.random.random()
            if mission["status"] == "pending" and roll < 0.3:
                action = "accept"
            elif roll < 0.7:
                action = "success"
            elif roll < 0.9:
                action = "fail"
            else:
                action = "reject"
            decided = self.call("POST", f"/api/missions/{mission['id']}/{action}")
            if decided is not None and decided[0] == 200:
                self.tally.decided[action] += 1


def viewer(base_url: str, token: str, seed: int, streamers: list[str], hot: list[int], seconds: float) -> Tally:
    """Top up when low, pledge (half on the hot missions), and ask streamers for missions."""
    client = Client(base_url, token, seed)
    client.topup()
    shared: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        roll = client.random.random()
        if roll < 0.15:
            client.topup()
        elif roll < 0.4:
            client.create_mission(client.random.choice(streamers))
        elif roll < 0.7 and hot:
            client.pledge(client.random.choice(hot))
        else:
            if not shared or client.random.random() < 0.2:
                shared = client.live_missions(client.random.choice(streamers))
            if shared:
                client.pledge(client.random.choice(shared))
    return client.tally


def streamer(base_url: str, token: str, seed: int, username: str, seconds: float) -> Tally:
    """Decide on their live missions, a few at a time, as they come in."""
    client = Client(base_url, token, seed)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.decide_some(username)
        time.sleep(client.random.uniform(0.05, 0.3))
    return client.tally


def run_clients(jobs: list[tuple], *, seconds: float) -> tuple[Tally, float]:
    """Run each (function, args) in its own process, all at once; their tallies summed and
    the seconds the load took."""
    started = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        pending = [pool.apply_async(function, args) for function, args in jobs]
        tallies = [job.get(timeout=seconds + 120) for job in pending]
    seen = Tally()
    for tally in tallies:
        seen.merge(tally)
    return seen, time.monotonic() - started


def figures_of(seen: Tally, *, load_seconds: float, clients: int, latencies: list[float]) -> dict:
    """The figures both soaks report: the load, its answers and the settle latency."""
    latencies = sorted(latencies)
    return {
        "seconds": round(load_seconds, 1),
        "clients": clients,
        "requests": seen.requests,
        "requests_per_second": round(seen.requests / load_seconds, 1),
        "statuses": dict(sorted(seen.statuses.items())),
        "decisions": dict(seen.decided),
        "settled": len(latencies),
        "settle_seconds_p50": round(statistics.median(latencies), 2) if latencies else None,
        "settle_seconds_p95": round(latencies[int(len(latencies) * 0.95)], 2) if latencies else None,
        "settle_seconds_max": round(latencies[-1], 2) if latencies else None,
        "failures": len(seen.failures),
    }
