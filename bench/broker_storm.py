"""A tiny Celery app (no Django) for storms on a broker: tests/test_broker.py and bench/broker.py.

Environment: STORM_DIR (the broker's files and deliveries.log go under it), STORM_BROKER
(`embedded`, this project's broker, or `filesystem`, kombu's, for comparison) and
STORM_POLLING (seconds between polls of an empty queue, optional).

    python -m celery -A bench.broker_storm worker ...        the consumer
    python -m bench.broker_storm publish COUNT PREFIX RETRIES a producer

Each `storm.record` task appends "<token> <attempt>" to deliveries.log, then asks for a retry
(published from inside the worker, as the email tasks' retries were) until it has run
RETRIES + 1 times: every line must appear exactly once.
"""

import os
import sys
from pathlib import Path

from celery import Celery

from missionhub import broker

broker.register()

STORM_DIR = Path(os.environ.get("STORM_DIR", "var/storm")).resolve()
BROKER_DIR = STORM_DIR / "broker"
DELIVERIES = STORM_DIR / "deliveries.log"
KIND = os.environ.get("STORM_BROKER", "embedded")
# Seconds between polls of an empty queue; unset: the transport's own (0.1 s here, 1 s in kombu's).
POLLING = os.environ.get("STORM_POLLING")


def broker_settings(kind: str) -> dict:
    if kind == "embedded":
        return {"broker_url": "embedded://localhost", "broker_transport_options": {"data_folder": str(BROKER_DIR)}}
    if kind == "filesystem":  # what settings.py configured before the embedded broker
        folders = {name: BROKER_DIR / name for name in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "broker_url": "filesystem://localhost",
            "broker_transport_options": {
                "data_folder_in": str(folders["queue"]),
                "data_folder_out": str(folders["queue"]),
                "processed_folder": str(folders["processed"]),
                "control_folder": str(folders["control"]),
                "store_processed": False,
            },
        }
    raise ValueError(f"STORM_BROKER={kind!r}: embedded or filesystem")


# Celery lets CELERY_BROKER_URL win over broker_url (a suite run on Redis sets it): the storm
# is on the broker it names.
for _variable in ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
    os.environ.pop(_variable, None)
app = Celery("storm")
_broker = broker_settings(KIND)
if POLLING:
    _broker["broker_transport_options"]["polling_interval"] = float(POLLING)
app.conf.update(
    **_broker,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_enable_remote_control=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="storm.record", bind=True)
def record(self, token: str, retries: int) -> None:
    with DELIVERIES.open("a") as log:  # O_APPEND: one short line per write, never interleaved
        log.write(f"{token} {self.request.retries}\n")
    if self.request.retries < retries:
        raise self.retry(countdown=0, max_retries=retries)


def publish(count: int, prefix: str, retries: int) -> None:
    with app.producer_or_acquire() as producer:
        for number in range(count):
            record.apply_async(args=[f"{prefix}-{number}", retries], producer=producer)


if __name__ == "__main__":
    command, count, prefix, retries = sys.argv[1:5]
    if command != "publish":
        raise SystemExit(f"usage: python -m bench.broker_storm publish COUNT PREFIX RETRIES (not {command!r})")
    publish(int(count), prefix, int(retries))
