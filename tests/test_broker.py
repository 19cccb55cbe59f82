"""The embedded broker (missionhub/broker.py): what stopped the worker under kombu's
filesystem transport, and what an acks-late worker needs of a broker."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from queue import Empty

import kombu
import kombu.transport.filesystem
import pytest
from kombu.exceptions import ChannelError

from missionhub import broker
from tests.worker import ROOT

QUEUE = "probe"


def connect(folder: Path) -> kombu.Connection:
    return kombu.Connection("embedded://localhost", transport_options={"data_folder": str(folder)})


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def claimed_messages(data: Path) -> list[str]:
    return sorted(path.name for path in (data / QUEUE / "claimed").glob("*/*.msg"))


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def paused_writes():
    """Pause the next message write after the file exists, before it is whole; `release()`."""

    class Pause:
        writing = threading.Event()
        go = threading.Event()

        def release(self):
            self.go.set()

    pause = Pause()
    yield pause
    pause.release()


class TestPublishing:
    def test_a_message_being_written_is_invisible_until_it_is_complete(self, data, paused_writes, monkeypatch):
        real_fsync = os.fsync

        def slow_fsync(fd):
            paused_writes.writing.set()
            assert paused_writes.go.wait(10)
            real_fsync(fd)

        monkeypatch.setattr(broker.os, "fsync", slow_fsync)
        with connect(data) as producer, connect(data) as consumer:
            writer = threading.Thread(target=lambda: producer.SimpleQueue(QUEUE).put({"whole": True}))
            queue = consumer.SimpleQueue(QUEUE)
            writer.start()
            assert paused_writes.writing.wait(10)

            with pytest.raises(Empty):
                queue.get(timeout=0.3)
            assert queue.qsize() == 0
            assert len(files(data / QUEUE / "tmp")) == 1

            paused_writes.release()
            writer.join(10)
            message = queue.get(timeout=5)

        assert message.payload == {"whole": True}
        message.ack()

    def test_kombus_filesystem_transport_hands_a_half_written_file_to_its_reader(self, tmp_path, paused_writes):
        """Why the default changed (kombu #1551): the same pause, kombu's transport, the worker's error."""
        folder = tmp_path / "fs"
        for name in ("queue", "processed", "control"):
            (folder / name).mkdir(parents=True)
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
        }
        real_lock = kombu.transport.filesystem.lock

        def slow_lock(file, flags):
            if file.name.endswith(".msg") and "w" in file.mode:  # the message file exists, still empty
                paused_writes.writing.set()
                assert paused_writes.go.wait(10)
            real_lock(file, flags)

        with (
            kombu.Connection("filesystem://localhost", transport_options=options) as producer,
            kombu.Connection("filesystem://localhost", transport_options=options) as consumer,
        ):
            queue = consumer.SimpleQueue(QUEUE)
            kombu.transport.filesystem.lock = slow_lock
            try:
                writer = threading.Thread(target=lambda: producer.SimpleQueue(QUEUE).put({"whole": True}))
                writer.start()
                assert paused_writes.writing.wait(10)

                with pytest.raises(json.JSONDecodeError, match="Expecting value: line 1 column 1"):
                    queue.get(timeout=1)
            finally:
                paused_writes.release()
                kombu.transport.filesystem.lock = real_lock
                writer.join(10)

    def test_refuses_a_queue_name_that_is_not_a_plain_folder_name(self, data):
        with connect(data) as conn, pytest.raises(ChannelError, match="invalid queue name"):
            conn.default_channel._put("../elsewhere", {"properties": {}})


class TestConsuming:
    def test_a_file_that_does_not_decode_goes_to_bad_and_the_next_message_arrives(self, data, caplog):
        with connect(data) as conn:
            queue = conn.SimpleQueue(QUEUE)
            # What kombu's filesystem transport could expose: the first half of a message.
            (data / QUEUE / "ready" / "00000000000000000001-half.msg").write_text('{"body": "eyJhIjog')
            queue.put({"after": "the bad one"})

            with caplog.at_level(logging.ERROR, logger="missionhub.broker"):
                message = queue.get(timeout=5)
            message.ack()

        assert message.payload == {"after": "the bad one"}
        assert files(data / QUEUE / "bad") == ["00000000000000000001-half.msg"]
        assert "00000000000000000001-half.msg does not decode" in caplog.text
        assert files(data / QUEUE / "ready") == []

    def test_an_acknowledged_message_leaves_no_file(self, data):
        with connect(data) as conn:
            queue = conn.SimpleQueue(QUEUE)
            queue.put({"n": 1})
            message = queue.get(timeout=5)
            assert len(claimed_messages(data)) == 1

            message.ack()

            assert claimed_messages(data) == []
            assert files(data / QUEUE / "ready") == []

    def test_a_message_rejected_with_requeue_is_delivered_again_before_later_ones(self, data):
        with connect(data) as conn:
            queue = conn.SimpleQueue(QUEUE)
            queue.put({"n": 1})
            queue.put({"n": 2})

            queue.get(timeout=5).requeue()
            first, second = queue.get(timeout=5), queue.get(timeout=5)
            first.ack()
            second.ack()

        assert [first.payload, second.payload] == [{"n": 1}, {"n": 2}]

    def test_a_message_rejected_without_requeue_is_gone(self, data):
        with connect(data) as conn:
            queue = conn.SimpleQueue(QUEUE)
            queue.put({"n": 1})

            queue.get(timeout=5).reject()

            assert claimed_messages(data) == []
            assert queue.qsize() == 0

    def test_closing_puts_unacknowledged_messages_back(self, data):
        with connect(data) as conn:
            queue = conn.SimpleQueue(QUEUE)
            queue.put({"n": 1})
            queue.get(timeout=5)

        with connect(data) as conn:
            assert conn.SimpleQueue(QUEUE).get(timeout=5).payload == {"n": 1}

    def test_a_message_taken_without_ack_is_deleted_when_read(self, data):
        with connect(data) as conn:
            conn.SimpleQueue(QUEUE).put({"n": 1})

            message = conn.default_channel.basic_get(QUEUE, no_ack=True)

            assert message.payload == {"n": 1}
            assert claimed_messages(data) == []

    def test_size_and_purge_count_ready_messages(self, data):
        with connect(data) as conn:
            queue = conn.SimpleQueue(QUEUE)
            for number in range(3):
                queue.put({"n": number})

            assert queue.qsize() == 3
            assert queue.clear() == 3
            assert queue.qsize() == 0


# A consumer that takes one message and never acknowledges it, then (optionally) forks a
# child that outlives it, as a prefork worker's pool processes can outlive a killed parent.
CLAIMER = textwrap.dedent(
    """
    import os, sys, time
    import kombu
    from missionhub import broker
    broker.register()
    conn = kombu.Connection("embedded://localhost", transport_options={"data_folder": sys.argv[1]})
    message = conn.SimpleQueue("probe").get(timeout=10)
    if sys.argv[2] == "fork" and os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    print("claimed", message.payload["n"], flush=True)
    time.sleep(60)
    """
)


def start_claimer(data: Path, mode: str = "stay") -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, str(data), mode], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout.readline().strip() == "claimed 1"
    return process


class TestConsumersThatDie:
    def test_a_live_consumers_message_stays_with_it(self, data):
        with connect(data) as conn:
            conn.SimpleQueue(QUEUE).put({"n": 1})
        claimer = start_claimer(data)
        try:
            with connect(data) as conn, pytest.raises(Empty):
                conn.SimpleQueue(QUEUE).get(timeout=0.5)
            assert broker.restore_dead_owners(data / QUEUE) == 0
        finally:
            os.killpg(claimer.pid, signal.SIGKILL)
            claimer.wait()

    def test_a_killed_consumers_message_is_delivered_to_the_next_one(self, data):
        with connect(data) as conn:
            conn.SimpleQueue(QUEUE).put({"n": 1})
        claimer = start_claimer(data)
        assert len(claimed_messages(data)) == 1

        claimer.kill()
        claimer.wait()
        with connect(data) as conn:
            message = conn.SimpleQueue(QUEUE).get(timeout=5)
            message.ack()

        assert message.payload == {"n": 1}
        assert claimed_messages(data) == []
        assert files(data / QUEUE / "claimed") == []  # the dead owner's folder and lock too

    def test_a_killed_consumers_forked_child_does_not_keep_its_messages(self, data):
        with connect(data) as conn:
            conn.SimpleQueue(QUEUE).put({"n": 1})
        claimer = start_claimer(data, mode="fork")
        try:
            claimer.kill()  # the parent only: its child sleeps on, holding a copy of the lock's descriptor
            claimer.wait()
            with connect(data) as conn:
                message = conn.SimpleQueue(QUEUE).get(timeout=5)
                message.ack()
        finally:
            os.killpg(claimer.pid, signal.SIGKILL)

        assert message.payload == {"n": 1}


class StormWorker:
    """bench/broker_storm.py's app in a real Celery worker, as `make run` starts the project's."""

    def __init__(self, storm_dir: Path, pool: str = "threads"):
        self.log = storm_dir / "worker.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.broker_storm", "worker", f"--pool={pool}",
             "--concurrency=2", "--loglevel=INFO", "--without-mingle", "--without-gossip", "--without-heartbeat"],
            cwd=ROOT, env={**os.environ, "STORM_DIR": str(storm_dir), "STORM_BROKER": "embedded"},
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        finally:
            self._log_file.close()


def publishers(storm_dir: Path, count: int, per_publisher: int, retries: int) -> list[subprocess.Popen]:
    env = {**os.environ, "STORM_DIR": str(storm_dir), "STORM_BROKER": "embedded"}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bench.broker_storm", "publish", str(per_publisher), f"p{number}", str(retries)],
            cwd=ROOT,
            env=env,
        )
        for number in range(count)
    ]


def deliveries(storm_dir: Path) -> Counter:
    log = storm_dir / "deliveries.log"
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


@pytest.mark.worker
def test_a_storm_of_publishers_and_retries_delivers_every_message_exactly_once(tmp_path):
    storm_dir = tmp_path / "storm"
    ready = storm_dir / "broker" / "celery" / "ready"
    ready.mkdir(parents=True)
    (ready / "00000000000000000001-half.msg").write_text('{"body": "eyJhIjog')  # and a half-written file
    worker = StormWorker(storm_dir)
    try:
        producers = publishers(storm_dir, count=4, per_publisher=100, retries=1)
        expected = {f"p{p}-{n} {attempt}" for p in range(4) for n in range(100) for attempt in (0, 1)}
        deadline = time.monotonic() + 90
        while sum(deliveries(storm_dir).values()) < len(expected) and time.monotonic() < deadline:
            assert worker.process.poll() is None, worker.log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1)  # time for a duplicate to show up
        assert [p.wait(timeout=30) for p in producers] == [0, 0, 0, 0]

        delivered = deliveries(storm_dir)
        assert set(delivered) == expected
        assert set(delivered.values()) == {1}
        assert worker.process.poll() is None
    finally:
        exit_code = worker.stop()

    log = worker.log.read_text()
    assert exit_code == 0, log[-3000:]
    assert "00000000000000000001-half.msg does not decode" in log
    assert files(storm_dir / "broker" / "celery" / "bad") == ["00000000000000000001-half.msg"]
    assert files(ready) == []
    assert list((storm_dir / "broker" / "celery" / "claimed").iterdir()) == []


def test_a_worker_shutting_down_ends_the_wait_between_polls_within_one_poll(data):
    """Celery's loop reads its shutdown flag between drains of up to 2 s (an idle worker took 2.2 s to stop)."""
    from celery.signals import worker_shutting_down

    def sigterm_handler_runs():
        worker_shutting_down.send(sender="test", sig="SIGTERM", how="Warm", exitcode=0)

    with connect(data) as conn:
        conn.SimpleQueue(QUEUE)  # a consumer, so drain_events waits on it
        threading.Timer(0.2, sigterm_handler_runs).start()
        started = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                conn.drain_events(timeout=5)
        finally:
            for transport in list(broker._transports):  # this process is no worker: others go on
                transport.stopping = False

    assert time.monotonic() - started < 1
