"""`make run`: web, worker and beat under one supervisor (`python -m missionhub.run`).

- Each child runs in its own session, so the terminal's Ctrl-C reaches this process only;
  on SIGINT or SIGTERM it sends SIGTERM to every child's process group (runserver's
  autoreloader child included), waits up to --stop-timeout seconds, SIGKILLs what is left
  and exits 0.
- Each line a child writes (stdout and stderr) is printed once, prefixed with its name.
- A child that exits is started again after 1, 2, 4 ... seconds (at most 30); one that
  exits 5 times within 60 seconds stops everything, with a message saying so, and the
  exit code is 1.
- The worker runs Celery's threads pool: one process, which a SIGTERM stops in 0.2-0.3 s
  when idle (a warm shutdown: running tasks finish, unacknowledged messages go back to
  the broker). Prefork took 2.3 s, and when its pool processes get the signal too (a
  process group signalled, as honcho's was by the terminal's Ctrl-C) one killed while
  holding the pool's queue lock can leave the parent hung at exit in billiard's
  `_help_stuff_finish`, until something SIGKILLs it (seen twice on this machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]


def project_processes(*, port: int) -> list[Process]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "missionhub"]
    worker = [*celery, "worker", "--loglevel=INFO", "--pool=threads", "--concurrency=2", "--without-mingle",
              "--without-gossip", "--without-heartbeat"]  # fmt: skip
    return [
        Process("web", [python, "manage.py", "runserver", f"127.0.0.1:{port}"]),
        Process("worker", worker),
        Process("beat", [*celery, "beat", "--loglevel=INFO"]),
    ]


@dataclass
class _Child:
    process: Process
    popen: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    exits: deque[float] = field(default_factory=deque)  # monotonic times of recent exits
    start_at: float | None = None  # a restart is due at this time


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


class Supervisor:
    def __init__(
        self,
        processes: Sequence[Process],
        *,
        out: TextIO = sys.stdout,
        cwd: Path = ROOT,
        stop_timeout: float = 10.0,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        max_exits: int = 5,
        window: float = 60.0,
    ):
        self.children = [_Child(process) for process in processes]
        self.out = out
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.max_exits = max_exits
        self.window = window
        self._width = max(len(child.process.name) for child in self.children)
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._signals: list[int] = []

    # --- output -------------------------------------------------------------------------

    def say(self, name: str, text: str) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | "
        with self._write_lock:
            self.out.write("".join(f"{prefix}{line}\n" for line in text.split("\n")))
            self.out.flush()

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.say(name, raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        stream.close()

    # --- children -----------------------------------------------------------------------

    def _start(self, child: _Child) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child.popen = subprocess.Popen(  # noqa: S603 (our own argv)
            child.process.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        child.start_at = None
        child.reader = threading.Thread(target=self._pump, args=(child.process.name, child.popen.stdout), daemon=True)
        child.reader.start()
        self.say("run", f"started {child.process.name} (pid {child.popen.pid}): {shlex.join(child.process.argv)}")

    def _on_exit(self, child: _Child, now: float) -> str | None:
        """Schedule the restart of a child that exited; the reason to give up, if it is time to."""
        returncode = child.popen.returncode
        child.reader.join(timeout=2)  # its last lines before the message about its end
        child.popen = None
        child.exits.append(now)
        while child.exits and now - child.exits[0] > self.window:
            child.exits.popleft()
        name = child.process.name
        if len(child.exits) >= self.max_exits:
            return (
                f"{name} exited {len(child.exits)} times within {self.window:g} s (last: {_describe(returncode)}); "
                "stopping everything"
            )
        delay = min(self.max_delay, self.first_delay * 2 ** (len(child.exits) - 1))
        child.start_at = now + delay
        self.say("run", f"{name} exited with {_describe(returncode)}; restarting it in {delay:g} s")
        return None

    def _signal_groups(self, sig: int) -> None:
        for child in self.children:
            if child.popen is not None and child.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.popen.pid, sig)

    def _stop_all(self) -> None:
        running = [child for child in self.children if child.popen is not None]
        if not running:
            return
        self.say("run", f"stopping {', '.join(child.process.name for child in running)} (SIGTERM)")
        signals_before = len(self._signals)
        self._signal_groups(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(child.popen.poll() is None for child in running):
            if time.monotonic() >= deadline or len(self._signals) > signals_before:
                late = [child.process.name for child in running if child.popen.poll() is None]
                why = (
                    "asked again" if len(self._signals) > signals_before else f"not stopped in {self.stop_timeout:g} s"
                )
                self.say("run", f"{', '.join(late)}: {why}; SIGKILL")
                self._signal_groups(signal.SIGKILL)
                break
            self._wake.wait(0.05)
            self._wake.clear()
        for child in running:
            child.popen.wait()
            child.reader.join(timeout=2)
            self.say("run", f"{child.process.name} stopped ({_describe(child.popen.returncode)})")

    # --- the loop -----------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        self._signals.append(signum)
        self._wake.set()

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> int:
        for child in self.children:
            self._start(child)
        give_up = None
        while not self._signals and give_up is None:
            now = time.monotonic()
            for child in self.children:
                if child.popen is not None and child.popen.poll() is not None:
                    give_up = self._on_exit(child, now)
                    if give_up:
                        break
                elif child.popen is None and child.start_at is not None and now >= child.start_at:
                    self._start(child)
            self._wake.wait(0.1)
            self._wake.clear()
        if give_up:
            self.say("run", give_up)
        else:
            self.say("run", f"{signal.Signals(self._signals[0]).name} received")
        self._stop_all()
        self.say("run", "stopped" if give_up is None else "stopped after a failure (exit code 1)")
        return 0 if give_up is None else 1


def main(argv: Sequence[str] | None = None, processes: Sequence[Process] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m missionhub.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="runserver's port")
    parser.add_argument(
        "--process", action="append", default=[], metavar="NAME=COMMAND",
        help="run these instead of web, worker and beat (the command is split like a shell would)",
    )  # fmt: skip
    parser.add_argument("--stop-timeout", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--first-delay", type=float, default=1.0, help="seconds before the first restart")
    args = parser.parse_args(argv)
    if any("=" not in spec for spec in args.process):
        parser.error("--process takes NAME=COMMAND")
    if processes is None:
        processes = [Process(spec.split("=", 1)[0], shlex.split(spec.split("=", 1)[1])) for spec in args.process]
    if not processes:
        processes = project_processes(port=args.port)
    supervisor = Supervisor(processes, stop_timeout=args.stop_timeout, first_delay=args.first_delay)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
