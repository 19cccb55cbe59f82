"""`python -m missionhub.run`, the supervisor behind `make run`, with tiny children."""

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from bench.stack import free_port
from tests.worker import ROOT

TICKER = "import time\nfor i in range(600): print('tick', i, flush=True); time.sleep(0.1)"


class Supervised:
    """The supervisor in its own process; its output gathered line by line."""

    def __init__(self, *children: tuple[str, str], extra: list[str] | None = None, env: dict | None = None):
        argv = [sys.executable, "-m", "missionhub.run", "--stop-timeout", "2", "--first-delay", "0.05", *(extra or [])]
        for name, code in children:
            argv += ["--process", f"{name}={shlex.join([sys.executable, '-c', code])}"]
        self.started = time.monotonic()
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s:\n" + "\n".join(self.lines[-60:]))

    def finish(self, timeout: float = 20) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(5)
        return code

    def interrupt(self) -> tuple[int, float]:
        """SIGINT, as Ctrl-C sends it; the exit code and the seconds it took to stop."""
        asked = time.monotonic()
        self.popen.send_signal(signal.SIGINT)
        code = self.finish()
        return code, time.monotonic() - asked

    def output(self, name: str) -> list[str]:
        """What the child `name` wrote, without the prefixes."""
        prefix = re.compile(rf"^\d\d:\d\d:\d\d {re.escape(name)}\s* \| (.*)$")
        return [found.group(1) for line in self.lines if (found := prefix.match(line))]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for whoever adopted it to reap it does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class TestRestarts:
    def test_a_child_that_exits_is_started_again(self):
        run = Supervised(("flaky", "print('up', flush=True)"), ("ticker", TICKER))

        run.wait_for(r"flaky exited with code 0; restarting it in 0.05 s")
        run.wait_for(r"flaky exited with code 0; restarting it in 0.1 s")
        code, _ = run.interrupt()

        assert run.output("flaky")[:2] == ["up", "up"]
        assert code == 0

    def test_five_exits_within_a_minute_stop_everything_with_a_message_and_code_1(self):
        run = Supervised(("crasher", "import sys; sys.exit(3)"), ("ticker", TICKER))

        code = run.finish()

        assert code == 1
        assert sum("crasher exited with code 3; restarting" in line for line in run.lines) == 4
        assert any(
            "crasher exited 5 times within 60 s (last: code 3); stopping everything" in line for line in run.lines
        )
        assert any("ticker stopped (signal SIGTERM)" in line for line in run.lines)
        assert run.lines[-1].endswith("run     | stopped after a failure (exit code 1)")
        assert time.monotonic() - run.started < 15


GRANDPARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    # A child of the child, as runserver's autoreloader runs the server in one.
    inner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("pids", inner.pid, flush=True)
    time.sleep(60)
    """
)


class TestStopping:
    def test_sigint_stops_every_child_and_its_children_and_exits_0(self):
        run = Supervised(("ticker", TICKER), ("parent", GRANDPARENT))
        inner_pid = int(run.wait_for(r"parent \s*\| pids (\d+)").group(1))
        pids = [int(found) for found in re.findall(r"started \w+ \(pid (\d+)\)", "\n".join(run.lines))]
        run.wait_for(r"ticker \s*\| tick 1\b")

        code, seconds = run.interrupt()

        assert code == 0
        assert seconds < 5
        assert len(pids) == 2
        assert not any(alive(pid) for pid in [*pids, inner_pid])
        assert run.lines[-1].endswith("run    | stopped")

    def test_a_child_that_ignores_sigterm_is_killed_after_the_stop_timeout(self):
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready'); time.sleep(60)"
        run = Supervised(("stubborn", stubborn))
        run.wait_for(r"stubborn \| ready")

        code, seconds = run.interrupt()

        assert code == 0
        assert 2 <= seconds < 6
        assert any("stubborn: not stopped in 2 s; SIGKILL" in line for line in run.lines)

    def test_sigterm_stops_it_too(self):
        run = Supervised(("ticker", TICKER))
        run.wait_for(r"ticker \| tick 1\b")

        run.popen.terminate()

        assert run.finish() == 0
        assert any("SIGTERM received" in line for line in run.lines)


def test_each_line_of_stdout_and_stderr_appears_once_with_the_childs_name():
    chatty = textwrap.dedent(
        """
        import sys, time
        for i in range(300):
            print(f"out {i}")
            print(f"err {i}", file=sys.stderr)
        time.sleep(60)
        """
    )
    run = Supervised(("chatty", chatty), ("ticker", TICKER))
    run.wait_for(r"chatty \| err 299")

    run.interrupt()

    expected = [f"{stream} {i}" for i in range(300) for stream in ("out", "err")]
    assert run.output("chatty") == expected
    assert all(re.match(r"\d\d:\d\d:\d\d (run   |chatty|ticker) \| ", line) for line in run.lines)


@pytest.mark.worker
def test_the_project_runs_web_worker_and_beat_and_stops_cleanly_on_sigint(tmp_path):
    """What `make run` starts (its migrations done here), on the embedded defaults."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "ACCOUNTS_DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
                          "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}  # fmt: skip
    env["MISSIONHUB_VAR_DIR"] = str(tmp_path / "var")
    for database in ("default", "accounts"):
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0", f"--database={database}"],
                       cwd=ROOT, env=env, check=True)  # fmt: skip
    port = free_port()

    run = Supervised(extra=["--port", str(port)], env=env)
    try:
        run.wait_for(r"worker \| .*celery@\S+ ready", timeout=40)
        run.wait_for(r"beat   \| .*beat: Starting", timeout=40)
        run.wait_for(r"web    \| Starting development server", timeout=40)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
    finally:
        code, seconds = run.interrupt()

    text = "\n".join(run.lines)
    assert code == 0, text[-4000:]
    assert seconds < 10
    assert "No hostname was supplied" not in text
    assert "exited with" not in text  # no child died, none was killed by a signal
    assert sum("Watching for file changes" in line for line in run.lines) == 1
    assert re.search(r"worker \| .*Warm shutdown", text)
    for name in ("web", "worker", "beat"):
        assert re.search(rf"run    \| {name} stopped", text)
