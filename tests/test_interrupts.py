"""simulator.core.interrupts: signals become one exception, never lost, never cut a swap."""

from __future__ import annotations

import os
import signal
import sys

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
