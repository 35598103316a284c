"""Forked worker processes that never outlive, hang or garble their parent.

:func:`run_parallel` runs ``fn(item)`` for every item in a forked child process, at most
``processes`` at a time, and returns the results in item order. It replaces
``multiprocessing.Pool``, whose clean-up could hang for minutes after Ctrl-C when a
worker was blocked sending a large result (a trace), and which waited forever for a
result when a worker was killed.

How it behaves:

- each child inherits the parent's memory (``fork``: nothing is pickled on the way in),
  runs its job, pickles ``("ok", result)`` or ``("error", exception, traceback)`` and
  writes it to its own pipe, then leaves with ``os._exit``;
- the parent waits on the pipes with ``select``; a pipe that reaches end-of-file
  without a whole message means the child died: the parent reaps it, kills the other
  children and raises :class:`WorkerDied` naming the job (e.g. ``pipeline 'redy'``) and
  the signal or exit status;
- whatever ends the wait — :class:`~simulator.core.interrupts.Interrupted`,
  ``KeyboardInterrupt``, an error in another job — the ``finally`` block SIGKILLs and
  reaps every child still running and closes the pipes, in milliseconds (children hold
  no files: results only travel through the pipes);
- children ignore SIGINT (Ctrl-C reaches the whole process group; the parent decides)
  and die with their parent (:func:`simulator.core.interrupts.child_after_fork`).

An exception raised by a job is re-raised in the parent as the same exception (so
user-facing errors stay one line), with the child's traceback attached as a note.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from simulator.core import faults
from simulator.core.errors import RunFailure
from simulator.core.interrupts import child_after_fork, deferred

T = TypeVar("T")
R = TypeVar("R")

_HEADER = struct.Struct("!Q")  # payload length
_CHUNK = 1 << 20


class WorkerDied(RunFailure):
    """A worker process ended without sending its result (killed, crashed)."""

    def __init__(self, label: str, pid: int, status: int) -> None:
        self.label, self.pid, self.status = label, pid, status
        super().__init__(_death_message(label, pid, status))


class WorkerFailed(RuntimeError):
    """A job raised an exception that could not be sent back as itself."""


@dataclass
class _Child:
    index: int
    label: str
    pid: int
    fd: int
    buf: bytearray = field(default_factory=bytearray)


def run_parallel(fn: Callable[[T], R], items: Sequence[T], processes: int,
                 labels: Sequence[str] | None = None) -> list[R]:
    """``[fn(item) for item in items]``, computed in forked processes.

    At most *processes* children run at once. *labels* name the jobs in error messages
    (default ``job 0``, ``job 1``, ...). Raises :class:`WorkerDied` when a child dies
    without a result, re-raises a job's own exception, and on any exception or signal
    kills every child before returning.
    """
    labels = list(labels) if labels is not None else [f"job {i}" for i in range(len(items))]
    if len(labels) != len(items):
        raise ValueError("one label per item")
    with WorkerGroup(processes) as group:
        for item, label in zip(items, labels, strict=True):
            group.submit(fn, item, label)
        return group.collect()


class WorkerGroup:
    """Jobs submitted one at a time, each forked as soon as a process is free.

    ``submit`` forks at once while fewer than *processes* children run (the child sees
    the parent's memory as it is at that moment, e.g. the bit planes just captured), and
    queues the job otherwise; queued jobs start as running ones finish, inside
    :meth:`collect`. Used as a context manager: leaving the block for any reason (an
    exception, :class:`~simulator.core.interrupts.Interrupted`) kills and reaps every child.
    """

    def __init__(self, processes: int) -> None:
        self.processes = max(1, int(processes))
        self._queue: list[tuple[Callable[[Any], Any], Any, int, str]] = []
        self._running: dict[int, _Child] = {}
        self._results: list[Any] = []

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._queue.clear()
        _kill_all(self._running.values())
        self._running.clear()

    def submit(self, fn: Callable[[T], R], item: T, label: str) -> int:
        """Run ``fn(item)`` in a child (now, or when a process frees); its index."""
        index = len(self._results)
        self._results.append(None)
        self._queue.append((fn, item, index, label))
        self._start_queued()
        return index

    def _start_queued(self) -> None:
        while self._queue and len(self._running) < self.processes:
            fn, item, index, label = self._queue.pop(0)
            _start(fn, item, index, label, self._running)

    def collect(self) -> list[Any]:
        """Wait for every submitted job; their results in submission order."""
        while self._queue or self._running:
            self._start_queued()
            # a timeout, so that a signal delivered to another thread of this process
            # (torch's pool) gets its Python handler run within it
            ready, _, _ = select.select(list(self._running), [], [], 0.25)
            for fd in ready:
                child = self._running[fd]
                chunk = os.read(fd, _CHUNK)
                if chunk:
                    child.buf += chunk
                    continue
                # end of file: the child has sent everything and is exiting, or died
                status = _reap(child.pid)
                del self._running[fd]
                os.close(fd)
                self._results[child.index] = _finish(child, status)
        return list(self._results)


def trim_memory() -> None:
    """Give back to the system what this process has freed, before it forks workers.

    A forked child shares every page of its parent, freed heap pages included; when the
    parent uses them again it copies them, and pages the parent lets go while a child
    lives stay held by the child. A cycle collection frees what only cycles hold (a
    torch.fx module's graph is cyclic), and on glibc ``malloc_trim(0)`` returns the free
    pages of the heap (elsewhere nothing more is done).
    """
    import gc

    gc.collect()
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        try:
            import ctypes

            _MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", False)
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            pass
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


# ----------------------------------------------------------------------------- parent
def _start(fn: Callable[[T], R], item: T, index: int, label: str,
           running: dict[int, _Child]) -> None:
    """Fork a child for *item* and register it in *running*.

    Signals are held back (:func:`simulator.core.interrupts.deferred`) from before the fork
    until the child is registered: a Ctrl-C in between would otherwise leave a child
    that the clean-up does not know about. The child sets its own signal dispositions
    first thing.
    """
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    with deferred():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child (covered by the fault tests)
            _child_main(fn, item, r, w, running)
        os.close(w)
        running[r] = _Child(index, label, pid, r)


def _finish(child: _Child, status: int) -> Any:
    """Decode a finished child's message, or report its death (*status*: its wait status)."""
    buf = child.buf
    complete = len(buf) >= _HEADER.size and len(buf) == _HEADER.size + _HEADER.unpack_from(
        buf)[0]
    if not complete:
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (
                signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", -1)):
            # killed by a signal sent to the whole process group: the parent's own
            # signal handler is about to raise Interrupted; give it the chance
            time.sleep(0.2)
        raise WorkerDied(child.label, child.pid, status)
    msg = pickle.Unpickler(_Reader(memoryview(buf)[_HEADER.size:])).load()
    child.buf = bytearray()
    if msg[0] == "ok":
        return msg[1]
    _, exc, tb_text, desc = msg
    if exc is None:
        exc = WorkerFailed(f"{child.label}: {desc}")
    if hasattr(exc, "add_note"):
        exc.add_note(f"(raised in the worker process of {child.label}:)\n{tb_text}")
    raise exc


class _Reader:
    """A file over a buffer whose ``read`` is Python code.

    ``pickle.loads`` of a large result (a trace: hundreds of MB of small dicts) is one C
    call of several seconds during which Python signal handlers cannot run, so a Ctrl-C
    would wait for it. The C unpickler calls ``read`` for every frame (64 KB), and each
    call gives the interpreter the chance to run a pending handler.
    """

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        """Up to *n* bytes (all the rest when n < 0)."""
        end = len(self._data) if n is None or n < 0 else min(self._pos + n, len(self._data))
        out = self._data[self._pos:end].tobytes()
        self._pos = end
        return out

    def readinto(self, b) -> int:
        """Fill *b* from the buffer."""
        n = min(len(b), len(self._data) - self._pos)
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n

    def readline(self) -> bytes:
        """Up to and including the next newline."""
        rest = self._data[self._pos:]
        i = bytes(rest[:1 << 16]).find(b"\n")
        return self.read(i + 1 if i >= 0 else len(rest))


def _reap(pid: int) -> int:
    """Wait status of *pid* (blocking; it has closed its pipe, so it is exiting)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except ChildProcessError:
            return 0


def _kill_all(children) -> None:
    """SIGKILL and reap every child still running, close their pipes."""
    children = list(children)
    for c in children:
        try:
            os.kill(c.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for c in children:
        try:
            os.close(c.fd)
        except OSError:
            pass
        try:
            os.waitpid(c.pid, 0)
        except ChildProcessError:
            pass


def _death_message(label: str, pid: int, status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        how = f"was killed by {name}"
        if sig == signal.SIGKILL:
            how += (" (by someone, or by the kernel's out-of-memory killer: compare the "
                    "run header's memory estimate with the memory available)")
    elif os.WIFEXITED(status):
        how = f"exited with status {os.WEXITSTATUS(status)} without sending its result"
    else:
        how = f"ended (wait status {status}) without sending its result"
    return f"{label}: its worker process (pid {pid}) {how}; the run was stopped"


# ----------------------------------------------------------------------------- child
def _child_main(fn, item, r: int, w: int, running: dict[int, _Child]) -> None:
    """Body of a forked child: run the job, send the outcome, leave without clean-up."""
    code = 0
    try:
        child_after_fork()
        os.close(r)
        for c in running.values():  # the other children's pipes are not ours
            try:
                os.close(c.fd)
            except OSError:
                pass
        faults.checkpoint("worker")
        try:
            payload = pickle.dumps(("ok", fn(item)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            code = 1
            payload = _error_payload(exc)
        _send(w, payload)
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        code = 2
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _error_payload(exc: BaseException) -> bytes:
    tb_text = "".join(traceback.format_exception(exc))
    desc = f"{type(exc).__name__}: {exc}"
    try:
        return pickle.dumps(("error", exc, tb_text, desc), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - unpicklable exception: send its text
        return pickle.dumps(("error", None, tb_text, desc))


def _send(w: int, payload: bytes) -> None:
    data = memoryview(payload)
    half = len(data) // 2
    _write_all(w, memoryview(_HEADER.pack(len(payload))))
    _write_all(w, data[:half])
    faults.checkpoint("worker-send")
    _write_all(w, data[half:])
    os.close(w)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        k = os.write(fd, data[:_CHUNK])
        data = data[k:]
