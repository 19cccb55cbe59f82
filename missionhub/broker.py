"""The embedded Celery broker (`embedded://localhost`): one file per message, for one machine.

kombu's filesystem transport creates a message's file and then fills it, so a reader can
take an empty or half-written file and raise a JSONDecodeError that stops the worker
(kombu issue #1551). Here a reader only ever sees complete files, and a file that still
does not decode is set aside instead of raised. Under the `data_folder` transport option,
one folder per queue:

    <queue>/tmp/        a publisher writes a message here and fsyncs it ...
    <queue>/ready/      ... then renames it here, a name that sorts by time (rename is
                        atomic: the file appears whole or not at all)
    <queue>/claimed/<owner>/
                        a consumer takes a message by renaming it here (one rename wins,
                        the others get FileNotFoundError and try the next file); the file
                        is deleted when the message is acknowledged and renamed back to
                        ready/ when it is rejected with requeue or restored at shutdown
    <queue>/claimed/<owner>.lock
                        held with flock by its consumer while it lives; the kernel drops
                        the lock when the process dies, so the next consumer renames a dead
                        owner's messages back to ready/ (Celery acknowledges late here: a
                        worker killed mid-task leaves its message claimed, not lost)
    <queue>/bad/        files that do not decode, with an error logged

Direct and topic exchanges only (bindings live in each process, as in kombu's memory
transport): no fanout, so workers run without remote control, mingle and gossip.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections import deque
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

SCHEME = "embedded"
# A queue name becomes a folder name: nothing that could leave the data folder.
QUEUE_NAME_RE = re.compile(r"\A[A-Za-z0-9_-][A-Za-z0-9._-]*\Z")
MESSAGE_SUFFIX = ".msg"

# Channels of this process, so that a forked child lets go of their owner locks.
_channels: weakref.WeakSet[Channel] = weakref.WeakSet()
# Transports of this process, told when a Celery worker begins its shutdown.
_transports: weakref.WeakSet[Transport] = weakref.WeakSet()


def register() -> None:
    """Make `embedded://` resolve to this module's Transport (kombu looks names up there),
    and let a worker's shutdown end the wait between polls."""
    from celery.signals import worker_shutting_down

    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
    worker_shutting_down.connect(_on_worker_shutting_down, weak=False, dispatch_uid=f"{__name__}.shutdown")


def _on_worker_shutting_down(**kwargs) -> None:
    # Runs inside the worker's SIGTERM/SIGINT handler: only a flag, no lock.
    for transport in list(_transports):
        transport.stopping = True


class _QueueDirs:
    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"
        self.ready = root / "ready"
        self.claimed = root / "claimed"
        self.bad = root / "bad"

    def create(self) -> None:
        for folder in (self.tmp, self.ready, self.claimed, self.bad):
            folder.mkdir(parents=True, exist_ok=True)


class _Owner:
    """A consumer's claim folder in one queue, and the lock that says it is alive."""

    def __init__(self, dirs: _QueueDirs):
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.lock_path = dirs.claimed / f"{self.name}.lock"
        # The lock first, then the folder: a claim folder without a held lock is a dead one.
        self.lock_fd: int | None = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.folder = dirs.claimed / self.name
        self.folder.mkdir()

    def release(self) -> None:
        """Remove the (emptied) folder and the lock; a folder still holding files stays for the next consumer."""
        if self.lock_fd is None:
            return
        try:
            self.folder.rmdir()
            self.lock_path.unlink()
        except OSError:
            pass
        os.close(self.lock_fd)
        self.lock_fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor (the parent's lock stays held)."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def _after_fork_in_child() -> None:
    for channel in list(_channels):
        channel._forget_owners_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class QoS(virtual.QoS):
    """Acknowledging deletes the claimed file; rejecting with requeue renames it back.

    Either frees a prefetch slot, so it wakes the consumer's poll (see Transport.drain_events).
    """

    def ack(self, delivery_tag):
        self.channel._drop_claimed(delivery_tag)
        super().ack(delivery_tag)
        self._wake_consumer()

    def reject(self, delivery_tag, requeue=False):
        if requeue:
            self.channel._restore_at_beginning(self._delivered[delivery_tag])
        else:
            self.channel._drop_claimed(delivery_tag)
        self._quick_ack(delivery_tag)
        self._wake_consumer()

    def _wake_consumer(self):
        transport = self.channel.connection
        if transport is not None:
            transport.wakeup.set()


class Channel(virtual.Channel):
    QoS = QoS
    supports_fanout = False
    # How often a polling consumer looks for dead owners' claimed messages (also at its start).
    restore_interval = 10.0
    # fsync each message before it becomes visible (off only where durability does not matter).
    fsync = True
    from_transport_options = (*virtual.Channel.from_transport_options, "restore_interval", "fsync")

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        folder = self.connection.client.transport_options.get("data_folder")
        if not folder:
            raise ChannelError("the embedded broker needs the transport option data_folder (a folder path)")
        self.data_folder = Path(folder)
        self.data_folder.mkdir(parents=True, exist_ok=True)
        self._dirs: dict[str, _QueueDirs] = {}
        self._owners: dict[str, _Owner] = {}
        self._listings: dict[str, deque[str]] = {}
        self._restored_at: dict[str, float] = {}
        # delivery tag -> the claimed file of a message not yet acknowledged (acks come
        # from the worker's pool threads, claims from its consumer thread).
        self._claimed: dict[str, tuple[str, Path]] = {}  # ... and its queue
        self._claimed_lock = threading.Lock()
        self._no_ack_queues: set[str] = set()
        self._get_no_ack = False
        _channels.add(self)

    # --- folders ------------------------------------------------------------------------

    def _queue_dirs(self, queue: str) -> _QueueDirs:
        dirs = self._dirs.get(queue)
        if dirs is None:
            if not isinstance(queue, str) or not QUEUE_NAME_RE.match(queue):
                raise ChannelError(f"invalid queue name for the embedded broker: {queue!r}")
            dirs = _QueueDirs(self.data_folder / queue)
            dirs.create()
            self._dirs[queue] = dirs
        return dirs

    def _owner(self, queue: str) -> _Owner:
        owner = self._owners.get(queue)
        if owner is None:
            owner = self._owners[queue] = _Owner(self._queue_dirs(queue))
        return owner

    def _forget_owners_after_fork(self) -> None:
        for owner in self._owners.values():
            owner.forget_after_fork()
        self._owners = {}
        self._claimed = {}
        self._claimed_lock = threading.Lock()

    # --- the AbstractChannel interface --------------------------------------------------

    def _new_queue(self, queue, **kwargs):
        self._queue_dirs(queue)

    def _has_queue(self, queue, **kwargs):
        return (self.data_folder / queue / "ready").is_dir()

    def _put(self, queue, message, **kwargs):
        dirs = self._queue_dirs(queue)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{MESSAGE_SUFFIX}"
        staged = dirs.tmp / name
        data = dumps(message).encode()
        with open(staged, "xb") as file:
            file.write(data)
            file.flush()
            if self.fsync:
                os.fsync(file.fileno())
        os.rename(staged, dirs.ready / name)

    def _get(self, queue, timeout=None):
        dirs = self._queue_dirs(queue)
        owner = self._owner(queue)
        self._maybe_restore_dead_owners(queue, dirs)
        listing = self._listings.get(queue)
        while True:
            if not listing:
                # One listing serves many gets; files others took meanwhile are skipped below.
                listing = self._listings[queue] = deque(
                    sorted(name for name in os.listdir(dirs.ready) if name.endswith(MESSAGE_SUFFIX))
                )
                if not listing:
                    raise Empty()
            name = listing.popleft()
            claimed = owner.folder / name
            try:
                os.rename(dirs.ready / name, claimed)
            except FileNotFoundError:
                continue  # another consumer won it
            payload = self._read_claimed(claimed, dirs)
            if payload is None:
                continue
            if self._get_no_ack or queue in self._no_ack_queues:
                claimed.unlink()
            else:
                with self._claimed_lock:
                    self._claimed[payload["properties"]["delivery_tag"]] = (queue, claimed)
            return payload

    def _read_claimed(self, claimed: Path, dirs: _QueueDirs) -> dict | None:
        """The message in a claimed file, or None after moving a file that does not decode to bad/."""
        try:
            payload = loads(claimed.read_bytes())
            if not isinstance(payload, dict) or not isinstance(payload["properties"]["delivery_tag"], str):
                raise ValueError("not a kombu message")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            bad = dirs.bad / claimed.name
            os.rename(claimed, bad)
            logger.error("embedded broker: %s does not decode (%s); moved to %s", claimed.name, exc, bad)
            return None
        return payload

    def _size(self, queue):
        dirs = self._queue_dirs(queue)
        return sum(1 for name in os.listdir(dirs.ready) if name.endswith(MESSAGE_SUFFIX))

    def _purge(self, queue):
        dirs = self._queue_dirs(queue)
        self._listings.pop(queue, None)
        count = 0
        for name in os.listdir(dirs.ready):
            try:
                (dirs.ready / name).unlink()
            except FileNotFoundError:
                continue
            count += name.endswith(MESSAGE_SUFFIX)
        return count

    def _delete(self, queue, *args, **kwargs):
        self._purge(queue)

    # --- acknowledgements and restores --------------------------------------------------

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        self._get_no_ack = no_ack
        try:
            return super().basic_get(queue, no_ack=no_ack, **kwargs)
        finally:
            self._get_no_ack = False

    def _drop_claimed(self, delivery_tag: str) -> None:
        with self._claimed_lock:
            _, claimed = self._claimed.pop(delivery_tag, (None, None))
        if claimed is not None:
            claimed.unlink(missing_ok=True)

    def _restore(self, message):
        """Put an unacknowledged message back: its claimed file returns to ready/ under its
        old name (so it is next); a message this channel did not claim is published again."""
        with self._claimed_lock:
            queue, claimed = self._claimed.pop(message.delivery_tag, (None, None))
        if claimed is None:
            return super()._restore(message)
        try:
            os.rename(claimed, self._dirs[queue].ready / claimed.name)
        except FileNotFoundError:
            logger.warning("embedded broker: the claimed file of message %s is gone", message.delivery_tag)
            return None
        self._listings.setdefault(queue, deque()).appendleft(claimed.name)
        return None

    def _maybe_restore_dead_owners(self, queue: str, dirs: _QueueDirs) -> None:
        now = time.monotonic()
        if now - self._restored_at.get(queue, -self.restore_interval) < self.restore_interval:
            return
        self._restored_at[queue] = now
        restore_dead_owners(dirs.root, keep=self._owners.get(queue))

    def close(self):
        super().close()  # restores the unacknowledged messages
        for owner in self._owners.values():
            owner.release()
        self._owners = {}
        _channels.discard(self)


def restore_dead_owners(queue_folder: Path, keep: _Owner | None = None) -> int:
    """Rename the messages of every claim folder whose lock nobody holds back to ready/; the count."""
    dirs = _QueueDirs(queue_folder)
    restored = 0
    try:
        entries = os.listdir(dirs.claimed)
    except FileNotFoundError:
        return 0
    for entry in entries:
        folder = dirs.claimed / entry
        if entry.endswith(".lock") or (keep is not None and entry == keep.name) or not folder.is_dir():
            continue
        lock_path = dirs.claimed / f"{entry}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None  # a folder without a lock: nobody can own it
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its consumer is alive
            count = _move_back(folder, dirs.ready)
            if count:
                logger.warning("embedded broker: %d message(s) of a stopped consumer put back in %s", count, dirs.ready)
            restored += count
            try:
                folder.rmdir()
                lock_path.unlink(missing_ok=True)
            except OSError:
                pass
        finally:
            if fd is not None:
                os.close(fd)
    return restored


def _move_back(folder: Path, ready: Path) -> int:
    count = 0
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    for name in names:
        try:
            os.rename(folder / name, ready / name)
        except FileNotFoundError:
            continue
        count += 1
    return count


class Transport(virtual.Transport):
    Channel = Channel
    # Seconds between polls of an empty queue.
    polling_interval = 0.1
    driver_type = SCHEME
    driver_name = SCHEME
    # A folder that cannot be written is a broker that is down (the worker reconnects).
    connection_errors = (*virtual.Transport.connection_errors, OSError)
    channel_errors = (*virtual.Transport.channel_errors, ChannelError)
    implements = virtual.Transport.implements.extend(exchange_type=frozenset(["direct", "topic"]))

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        # Set by an acknowledgement: a worker whose prefetch slots were all taken may fetch again.
        self.wakeup = threading.Event()
        self.stopping = False
        _transports.add(self)

    def driver_version(self):
        return "1"

    def drain_events(self, connection, timeout=None):
        """Deliver one message; between polls, wait on `wakeup` rather than sleep.

        kombu's virtual transports sleep a polling interval whenever no channel may consume,
        so a worker at its prefetch limit (acks late, one message per process) idled up to
        that long after each acknowledgement: at 0.1 s, two slots made 20 tasks/s at most.
        Once the worker is shutting down, a wait ends as a timeout after one poll, so that
        Celery's loop (which looks at its shutdown flag between drains of up to 2 s) stops
        within a poll rather than seconds later.
        """
        started = time.monotonic()
        while True:
            self.wakeup.clear()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                waited = time.monotonic() - started
                if self.stopping or (timeout is not None and waited >= timeout):
                    raise TimeoutError() from None
                pause = self.polling_interval if timeout is None else min(self.polling_interval, timeout - waited)
                self.wakeup.wait(pause)
