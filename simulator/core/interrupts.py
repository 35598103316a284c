"""Signals (Ctrl-C, ``kill``) turned into one exception that unwinds cleanly.

The command line wraps every command in :func:`handle_signals`: the first SIGINT, SIGTERM
or SIGHUP raises :class:`Interrupted` in the main thread, wherever it is (tracing,
capture, waiting for worker processes, writing results). Because it is an exception,
every ``finally`` and ``with`` block on the way up runs: worker processes are killed and
reaped (:mod:`simulator.core.workers`), the staging folder of the results is removed
(:mod:`simulator.core.outdir`), and the CLI prints one line and exits with
``128 + signal number`` (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).

:class:`Interrupted` derives from ``BaseException`` (like ``KeyboardInterrupt``) so that
``except Exception`` blocks in libraries do not swallow it. Code that must clean up
catches nothing: it uses ``try/finally``. Python API users without the CLI's handlers get
``KeyboardInterrupt`` on Ctrl-C, and the same ``finally`` blocks run.

A second signal while the first is being handled exits at once (``os._exit``), after a
one-line note: worker processes still die with their parent (``PR_SET_PDEATHSIG``, see
:func:`child_after_fork`), but a staging folder may be left behind.

:func:`deferred` holds signals back over a few statements that must not be cut in half
(the swap of a finished results folder into place).

Any multi-process part of redysim (the pipeline workers, a sweep's local cluster) uses
this one mechanism: run under :func:`handle_signals` (the CLI does it), clean up in
``finally``, and in forked children call :func:`child_after_fork` first.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator

#: signals the CLI turns into :class:`Interrupted`
HANDLED: tuple[int, ...] = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
    if s is not None)


class Interrupted(BaseException):
    """The run was stopped by a signal (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def signal_name(self) -> str:
        """``SIGINT``, ``SIGTERM``, ..."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by signal: 128 + signal number."""
        return 128 + self.signum


_state: dict = {"raised": None, "redeliver": False}


def _handler(signum: int, _frame) -> None:
    if _state["redeliver"]:  # our own re-delivery of a swallowed interrupt (below)
        _state["redeliver"] = False
        raise Interrupted(signum)
    if _state["raised"] is not None:
        # a second signal during the cleanup of the first: give up at once
        try:
            os.write(2, f"redysim: second {signal.Signals(signum).name}, exiting "
                        "immediately\n".encode())
        finally:
            os._exit(128 + signum)
    _state["raised"] = signum
    raise Interrupted(signum)


def _swallowed(unraisable) -> None:
    """``sys.unraisablehook``: re-deliver an :class:`Interrupted` that Python swallowed.

    A signal handler runs at the next bytecode of the main thread, which may belong to a
    ``__del__`` method, a garbage-collector or weakref callback: an exception raised
    there is "ignored" (printed, then dropped) and the interrupt would be lost. This
    hook asks for the signal again from a helper thread a moment later
    (``_thread.interrupt_main``: the handler runs at the main thread's next bytecode),
    when the finalizer has returned; should it land in a finalizer again, it comes back
    here and is asked for once more.
    """
    exc = unraisable.exc_value
    if isinstance(exc, Interrupted):
        _state["redeliver"] = True
        t = threading.Timer(0.005, _thread.interrupt_main, args=(exc.signum,))
        t.daemon = True
        t.start()
        return
    _state["previous_hook"](unraisable)


@contextlib.contextmanager
def handle_signals(signals: tuple[int, ...] = HANDLED) -> Iterator[None]:
    """Within the block, the first of *signals* raises :class:`Interrupted`.

    Only the main thread can install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in signals}
    _state["raised"], _state["redeliver"] = None, False
    _state["previous_hook"] = sys.unraisablehook
    sys.unraisablehook = _swallowed
    for s in signals:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        sys.unraisablehook = _state["previous_hook"]
        _state["raised"], _state["redeliver"] = None, False


@contextlib.contextmanager
def deferred(signals: tuple[int, ...] = HANDLED) -> Iterator[None]:
    """Hold *signals* back for the duration of the block; deliver them after it.

    For a few statements that must run to completion once started (forking a worker and
    registering it, the renames that swap a results folder into place). Inside the block
    a signal is only recorded; at its end the first recorded signal is handed to the
    handler that was in place (raising :class:`Interrupted` or ``KeyboardInterrupt``), or,
    for a signal whose action is the default one, sent again so the process ends as it
    would have. This works at the Python level, so it also catches a signal that arrived
    just before the block but whose Python handler had not run yet. Keep blocks short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def record(signum: int, _frame) -> None:
        pending.append(signum)

    old = {s: signal.getsignal(s) for s in signals}
    for s, h in old.items():
        if h is not signal.SIG_IGN and h is not None:
            signal.signal(s, record)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        if pending:
            first = pending[0]
            handler = old[first]
            if callable(handler):
                handler(first, None)
            elif handler is signal.SIG_DFL:
                os.kill(os.getpid(), first)


def child_after_fork() -> None:
    """Signal set-up of a forked worker process (call first thing in the child).

    - SIGINT is ignored: Ctrl-C reaches the whole process group, and the parent alone
      decides (it kills its workers), so workers print nothing;
    - SIGTERM and SIGHUP take their default action (die at once, silently);
    - the child is killed (SIGKILL) when its parent dies, however it dies
      (Linux ``prctl(PR_SET_PDEATHSIG)``), so no worker outlives the run.
    """
    _state["raised"] = None
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        s = getattr(signal, name, None)
        if s is not None:
            signal.signal(s, signal.SIG_DFL)
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: best effort
        pass
