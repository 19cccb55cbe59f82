"""The embedded broker against kombu's filesystem transport: a storm through a real worker.

    python -m bench.broker [--tasks 400] [--rounds 3] [--pool threads] [--kinds embedded,filesystem]

Each round: a fresh folder under var/bench-broker/, a Celery worker on bench/broker_storm.py's
app (`--concurrency=2`, acks late, prefetch 1, as the project's), then 4 publisher processes
each sending tasks/4 `storm.record` tasks that retry once from inside the worker (2 x tasks
deliveries). Measured from the publishers' start until every delivery is logged, the worker
dies, or --timeout. Prints one line per round and writes bench/results/broker-<pool>.json.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench-broker"
RESULTS = ROOT / "bench" / "results"
PUBLISHERS = 4
# kind -> (STORM_BROKER, STORM_POLLING): kombu's filesystem as settings.py had it (its 1 s
# default poll) and at the embedded broker's 0.1 s, for a fair comparison.
KINDS = {
    "embedded": ("embedded", ""),
    "filesystem": ("filesystem", ""),
    "filesystem-0.1s": ("filesystem", "0.1"),
}


def storm(kind: str, tasks: int, pool: str, timeout: float, round_number: int) -> dict:
    storm_dir = OUT / f"{kind}-{round_number}"
    shutil.rmtree(storm_dir, ignore_errors=True)
    storm_dir.mkdir(parents=True)
    broker, polling = KINDS[kind]
    env = {**os.environ, "STORM_DIR": str(storm_dir), "STORM_BROKER": broker, "STORM_POLLING": polling}
    log_path = storm_dir / "worker.log"
    with log_path.open("w") as log:
        argv = [sys.executable, "-m", "celery", "-A", "bench.broker_storm", "worker", f"--pool={pool}",
                "--concurrency=2", "--loglevel=WARNING", "--without-mingle", "--without-gossip",
                "--without-heartbeat"]  # fmt: skip
        worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 (our own argv)
        time.sleep(3)  # the worker's start-up is not what is measured
        per_publisher = tasks // PUBLISHERS
        expected = PUBLISHERS * per_publisher * 2
        started = time.monotonic()
        publishers = [
            subprocess.Popen(  # noqa: S603 (our own argv)
                [sys.executable, "-m", "bench.broker_storm", "publish", str(per_publisher), f"p{n}", "1"],
                cwd=ROOT,
                env=env,
            )
            for n in range(PUBLISHERS)
        ]
        deliveries_log = storm_dir / "deliveries.log"
        delivered: Counter = Counter()
        while time.monotonic() - started < timeout and worker.poll() is None:
            delivered = Counter(deliveries_log.read_text().splitlines()) if deliveries_log.exists() else Counter()
            if sum(delivered.values()) >= expected:
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        worker_died = worker.poll() is not None
        for publisher in publishers:
            publisher.wait()
        if not worker_died:
            worker.terminate()
            worker.wait(timeout=30)
    text = log_path.read_text()
    return {
        "kind": kind,
        "pool": pool,
        "expected": expected,
        "delivered": sum(delivered.values()),
        "duplicates": sum(count - 1 for count in delivered.values() if count > 1),
        "seconds": round(seconds, 2),
        "tasks_per_second": round(sum(delivered.values()) / seconds, 1),
        "worker_died": worker_died,
        "json_decode_error": "JSONDecodeError" in text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--kinds", default="embedded,filesystem-0.1s,filesystem")
    args = parser.parse_args()
    rows = []
    for round_number in range(args.rounds):
        for kind in args.kinds.split(","):
            row = storm(kind, args.tasks, args.pool, args.timeout, round_number)
            rows.append(row)
            print(json.dumps(row), flush=True)  # noqa: T201
    (RESULTS / f"broker-{args.pool}.json").write_text(json.dumps({"args": vars(args), "rounds": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
