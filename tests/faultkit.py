"""Helpers of the fault-injection tests: the real CLI in a subprocess, signalled on cue.

A :class:`CliRun` starts ``python -m simulator.cli.main ARGS`` in its own session (so that a
"Ctrl-C" can be sent to its whole process group, as a terminal does), collects stderr
line by line with arrival times, and lets a test wait for a line (a progress line or a
``redysim-fault: paused at POINT`` line from ``REDYSIM_TEST_FAULT``), send a signal, and
check what is left: the exit status, the time it took, the lines printed after the
signal, and the processes still alive in the session.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of session *sid* (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            out.append(int(d))
    return out


class CliRun:
    """One ``redysim`` command in a subprocess of its own session."""

    def __init__(self, args: list[str], fault: str | None = None,
                 prefix: list[str] | None = None,
                 trigger: Callable[[CliRun], None] | None = None,
                 env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **(env or {})}
        env.pop("REDYSIM_TEST_FAULT", None)
        if fault:
            env["REDYSIM_TEST_FAULT"] = fault
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [*(prefix or []), sys.executable, "-m", "simulator.cli.main", *args]
        self.args = args
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self._out: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()
        self.exited_at: float | None = None
        self._waiter = threading.Thread(target=self._wait_exit, daemon=True)
        self._waiter.start()
        self.signalled_at: float | None = None
        self.signal_index = 0
        self.notes: dict[str, object] = {}
        self.trigger_error: BaseException | None = None
        self._trigger = None
        if trigger is not None:
            self._trigger = threading.Thread(target=self._run_trigger, args=(trigger,),
                                             daemon=True)
            self._trigger.start()

    def _run_trigger(self, trigger: Callable[[CliRun], None]) -> None:
        try:
            trigger(self)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.trigger_error = exc

    @property
    def busy(self) -> bool:
        """Running and not paused at a fault hook (so using CPU)."""
        if self.exited_at is not None:
            return False
        with self._cond:
            return not any(line.startswith("redysim-fault: paused") for _, line in self.lines)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _wait_exit(self) -> None:
        self.proc.wait()
        self.exited_at = time.monotonic()  # the moment of the exit, whoever asks later

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.append(line)

    @property
    def stdout(self) -> str:
        """Standard output so far."""
        return "".join(self._out)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 600.0) -> list[str]:
        """Block until *count* stderr lines match *pattern*; return them."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [line for _, line in self.lines if rx.search(line)]
                if len(hits) >= count:
                    return hits
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"exited ({self.proc.returncode}) before {count} × {pattern!r}:\n"
                        + self.stderr())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count} × {pattern!r} in {timeout} s:\n"
                                         + self.stderr())
                self._cond.wait(min(left, 0.5))

    def mark(self) -> None:
        """Start the clock (and the 'after the signal' lines) now."""
        with self._cond:
            self.signal_index = len(self.lines)
        self.signalled_at = time.monotonic()

    def send(self, sig: int, group: bool = False) -> None:
        """Send *sig* to the process (or to its whole process group, like Ctrl-C)."""
        self.mark()
        try:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:  # it had exited already: the test sees the status
            pass

    def finish(self, timeout: float = 600.0) -> tuple[int, float]:
        """Exit status and seconds from the signal to the exit (0 without a signal)."""
        deadline = time.monotonic() + timeout
        while self._waiter.is_alive() and time.monotonic() < deadline:
            self._waiter.join(0.2)
            if self.trigger_error is not None and self._waiter.is_alive():
                self.kill()
                raise AssertionError(f"the trigger failed: {self.trigger_error!r}; "
                                     f"stderr:\n{self.stderr_timed()}")
        if self._waiter.is_alive():
            self.kill()
            raise AssertionError(f"still running {timeout} s later:\n{self.stderr_timed()}")
        end = self.exited_at if self.exited_at is not None else time.monotonic()
        elapsed = end - self.signalled_at if self.signalled_at is not None else 0.0
        self._reader.join(5)
        self._out_reader.join(5)
        if self._trigger is not None:
            self._trigger.join(5)
        if self.trigger_error is not None:
            raise AssertionError(f"the trigger failed: {self.trigger_error!r}")
        return self.proc.returncode, elapsed

    def stderr(self) -> str:
        """All of stderr so far."""
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def stderr_timed(self) -> str:
        """Stderr with each line's arrival, in seconds after the start (diagnostics)."""
        with self._cond:
            return "\n".join(f"[+{t - self.started_at:6.1f}s] {line}" for t, line in self.lines)

    def after_signal(self) -> list[str]:
        """Stderr lines printed after the signal was sent (fault-hook lines excluded)."""
        with self._cond:
            return [line for _, line in self.lines[self.signal_index:]
                    if not line.startswith("redysim-fault:")]

    def leftovers(self) -> list[int]:
        """Processes of the run's session still alive (its workers, if any)."""
        return session_processes(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the whole session (clean-up of a failed test)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


class Fleet:
    """Runs started in the background, at most *busy* of them using CPU at a time.

    A run paused at a fault hook uses no CPU, so the next one starts; each run's trigger
    (a thread) signals it at its moment, and the tests only collect the outcomes.
    """

    def __init__(self, specs: dict[str, dict], busy: int = 2) -> None:
        self.specs = specs
        self.pending = list(specs)
        self.runs: dict[str, CliRun] = {}
        self.limit = busy
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._schedule, daemon=True)
        self._thread.start()

    def _schedule(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    if not self.pending:
                        return
                    if sum(r.busy for r in self.runs.values()) < self.limit:
                        name = self.pending.pop(0)
                        self.runs[name] = CliRun(**self.specs[name])
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting test
            self.error = exc

    error: BaseException | None = None

    def __getitem__(self, name: str) -> CliRun:
        while True:
            with self._lock:
                if name in self.runs:
                    return self.runs[name]
            if self.error is not None:
                raise AssertionError(f"the fleet could not start {name}: {self.error!r}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop starting runs and kill whatever still runs."""
        self._stop.set()
        self._thread.join(5)
        for r in self.runs.values():
            if r.proc.poll() is None:
                r.kill()


def wait_for_file_line(path: Path, pattern: str, run: CliRun, timeout: float = 600.0) -> str:
    """Block until a line of *path* (``REDYSIM_TEST_FAULT_FILE``: what a Dask worker's fault
    hook says) matches *pattern*; return it."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for line in path.read_text().splitlines():
                if rx.search(line):
                    return line
        except OSError:
            pass
        if run.proc.poll() is not None:
            raise AssertionError(f"exited ({run.proc.returncode}) before {pattern!r} in "
                                 f"{path}:\n{run.stderr()}")
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in {path} within {timeout} s:\n{run.stderr()}")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of *folder* with its bytes (to prove a folder untouched)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def staging_left(parent: Path, name: str | None = None) -> list[str]:
    """Hidden staging or backup folders of redysim left in *parent* (for results folder
    *name* only, when given: other runs may be writing beside it at the same time)."""
    prefix = f".{name}." if name else "."
    return sorted(p.name for p in parent.iterdir()
                  if p.name.startswith(prefix) and (".partial-" in p.name or ".old-" in p.name))


def fake_results(folder: Path) -> None:
    """A small folder that looks like redysim results (so --force may replace it)."""
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text('{"scenario": "old"}\n')
    (folder / "layers.csv").write_text("pipeline,layer\nstatic,conv1\n")
