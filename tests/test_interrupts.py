"""simulator.core.interrupts: signals become one exception, never lost, never cut a swap."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from simulator.core.interrupts import Interrupted, deferred, handle_signals

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")]


def _spin(n: int = 2_000_000) -> None:
    for _ in range(n):
        pass


def test_signals_raise_interrupted_with_their_exit_status() -> None:
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
        with handle_signals(), pytest.raises(Interrupted) as exc:
            os.kill(os.getpid(), sig)
            _spin()
        assert exc.value.exit_code == code and exc.value.signum == sig
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


class _SignalsInFinalizer:
    """Its finalizer receives the signal: the handler runs inside ``__del__``."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        _spin(100_000)  # the handler raises here, and Python swallows it


def test_an_interrupt_raised_inside_a_finalizer_is_not_lost(capsys) -> None:
    with handle_signals(), pytest.raises(Interrupted):
        _SignalsInFinalizer()  # dropped at once: __del__ runs now
        _spin()  # the re-delivered interrupt lands here
    assert "Exception ignored" not in capsys.readouterr().err


def test_deferred_delivers_after_the_block() -> None:
    done = []
    with handle_signals(), pytest.raises(Interrupted):
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            _spin()
            done.append("whole block")
    assert done == ["whole block"]


# ------------------------------------------------------------ a sweep's cluster processes
_PROBE = r"""
import ctypes, signal, sys
blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
sig = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
print(sorted(int(s) for s in blocked), sig.value, flush=True)
"""


def test_cluster_processes_ignore_the_terminal_and_die_with_the_sweep(tmp_path) -> None:
    """The local Dask cluster's processes (simulator/explore/sweep/cluster.py) are started
    with SIGINT, SIGTERM and SIGHUP blocked (a Ctrl-C to the process group is for the
    sweep alone, which stops them) and SIGKILLed by the kernel when the sweep's process
    dies, however it dies."""
    import subprocess
    import time

    from simulator.explore.sweep.cluster import _LAUNCHER

    out = subprocess.run([sys.executable, "-c", _LAUNCHER, str(os.getpid()), "-c", _PROBE],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    blocked, death = out.split("] ")
    assert {int(s) for s in blocked.strip("[").split(", ")} >= {
        signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    assert int(death) == signal.SIGKILL
    # a parent that starts a process through the launcher and is then SIGKILLed
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import os, subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {_LAUNCHER!r}, str(os.getpid()), '-c',"
        " 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(600)\n")])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.is_file() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child = int(pid_file.read_text())
        time.sleep(0.3)  # the launcher has exec'd Python by now
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child}").exists() and "Z" not in Path(
                f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]:
            assert time.monotonic() < deadline, "the cluster process outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
