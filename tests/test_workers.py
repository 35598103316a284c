"""simulator.core.workers.run_parallel: results in order, errors as themselves, deaths named."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from simulator.core.errors import SimulationError
from simulator.core.workers import WorkerDied, WorkerFailed, run_parallel

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")]


def _square_slowly(x: int) -> int:
    time.sleep(0.05 * (3 - x % 3))  # finish out of order
    return x * x


def test_results_in_item_order() -> None:
    assert run_parallel(_square_slowly, list(range(7)), 3) == [x * x for x in range(7)]


def test_large_results_cross_the_pipe() -> None:
    out = run_parallel(lambda n: bytes(n), [3 << 20, 5], 2)  # 3 MB: many pipe buffers
    assert [len(b) for b in out] == [3 << 20, 5]


def _user_error(x: int) -> int:
    if x == 1:
        raise SimulationError("buffers too small for layer conv2")
    time.sleep(0.2)
    return x


def test_job_exception_is_reraised_as_itself() -> None:
    with pytest.raises(SimulationError, match="buffers too small") as exc:
        run_parallel(_user_error, [0, 1, 2], 3, labels=["a", "b", "c"])
    assert any("raised in the worker process of b" in n for n in exc.value.__notes__)


class _Unpicklable(Exception):
    def __init__(self, msg: str, handle) -> None:
        super().__init__(msg)
        self.handle = handle


def _raise_unpicklable(_: int) -> int:
    raise _Unpicklable("odd", lambda: None)


def test_unpicklable_exception_becomes_worker_failed() -> None:
    with pytest.raises(WorkerFailed, match="job 0: _Unpicklable: odd"):
        run_parallel(_raise_unpicklable, [0], 1)


def _die(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(30 if x else 0)  # job 1 would outlive the test if it were not killed
    return x


def _children() -> set[int]:
    """Processes whose parent is this one (zombies included: not reaped)."""
    me, out = str(os.getpid()), set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1] == me:
                    out.add(int(d))
            except OSError:
                pass
    return out


def test_a_killed_worker_is_named_and_the_others_stopped() -> None:
    before = _children()
    t = time.monotonic()
    with pytest.raises(WorkerDied) as exc:
        run_parallel(_die, [0, 1, 2], 3, labels=["pipeline 'a'", "pipeline 'b'",
                                                 "pipeline 'c'"])
    assert time.monotonic() - t < 20  # job 1 (30 s) was killed, not waited for
    assert str(exc.value).startswith("pipeline 'c': its worker process (pid ")
    assert "was killed by SIGKILL" in str(exc.value)
    assert _children() <= before  # every worker was killed and reaped


def _exit_early(_: int) -> int:
    sys.stdout.flush()
    os._exit(3)


def test_a_worker_that_exits_without_result() -> None:
    with pytest.raises(WorkerDied, match="exited with status 3 without sending its result"):
        run_parallel(_exit_early, [0], 1)


def _many_dicts(n: int) -> list[dict]:
    return [{"ph": "X", "name": f"mvm {i}", "ts": i * 1.5, "dur": 2.0, "tid": i % 7}
            for i in range(n)]


def test_an_interrupt_is_not_held_up_by_unpickling_a_large_result(monkeypatch) -> None:
    """A Ctrl-C while the parent unpickles a large result (a trace) is handled within
    that unpickling, not after it: the reader is Python code called every frame."""
    import threading

    from simulator.core import workers
    from simulator.core.interrupts import Interrupted, handle_signals

    readers: list = []
    first_read = threading.Event()
    init, read = workers._Reader.__init__, workers._Reader.read

    def spy_init(self, data):
        init(self, data)
        readers.append(self)

    def spy_read(self, n=-1):
        first_read.set()
        return read(self, n)

    monkeypatch.setattr(workers._Reader, "__init__", spy_init)
    monkeypatch.setattr(workers._Reader, "read", spy_read)

    def ctrl_c() -> None:
        first_read.wait(60)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    with handle_signals(), pytest.raises(Interrupted):
        run_parallel(_many_dicts, [400_000], 1)
    r = readers[0]
    # handled within the unpickling: the reader never reached the end of the result (in
    # a fresh interpreter it is stopped in the first few frames; in a long test session
    # the collector's passes over a large heap can delay the signal thread by a few more)
    assert r._pos < len(r._data), "the interrupt waited for the whole result"
