"""The Dask cluster of a sweep or a study: a local one of our own processes, or a scheduler.

:func:`dask_client` yields a ``distributed.Client``:

- with a scheduler address (``--scheduler``), connected to it, after a plain TCP probe
  that fails in seconds, in one line, when nothing answers there;
- otherwise connected to a :class:`LocalCluster` that this process starts: one
  ``python -m distributed.cli.dask_scheduler`` and N ``python -m distributed.cli.dask_worker
  --nthreads 1 --no-nanny`` processes — the README's cluster recipe on this machine.

The local processes are ours from start to end:

- they are started through a small launcher that blocks SIGINT, SIGTERM and SIGHUP in
  them and asks the kernel to SIGKILL them when this process dies
  (``prctl(PR_SET_PDEATHSIG)``) before it execs Python: a Ctrl-C in the terminal, which
  reaches the whole process group, is for this process alone (it stops the sweep and
  then the cluster), and no worker outlives a sweep, however it ends;
- nothing in this process ignores or holds back a signal while they start, so a Ctrl-C
  during the start-up stops everything at once (issue 19);
- closing the cluster SIGKILLs them and removes their scratch folder: the workers hold
  nothing worth saving (a point's folder is swapped into place whole, or not at all);
- their environment asks for one thread in torch, OpenMP, MKL and OpenBLAS, and their
  logs go to a file in the scratch folder (its last lines are quoted if they fail to
  start);
- the scheduler's HTTP server (the dashboard) listens on a random port of 127.0.0.1
  unless a *dashboard* address is asked for: two sweeps on one machine do not compete
  for port 8787.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.core import faults
from simulator.core.config_io import ConfigError
from simulator.core.errors import RunFailure
from simulator.core.interrupts import deferred

#: environment of the local cluster's processes: one thread per native pool (torch reads
#: OMP too); no statistical profiler in the workers (it samples every task's stack every
#: 10 ms for a dashboard that is not open by default: half a worker's idle CPU)
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MALLOC_TRIM_THRESHOLD_": "65536", "REDYSIM_TORCH_THREADS": "1",
              "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}

#: seconds the local scheduler may take to write its address, and a probe to answer
START_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 5.0

#: runs ``python ARGS...`` with SIGINT/SIGTERM/SIGHUP blocked and death with the parent
_LAUNCHER = r"""
import ctypes, os, signal, sys
parent = int(sys.argv[1])
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
if sys.platform.startswith("linux"):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
if os.getppid() != parent:
    os._exit(1)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def require_dask() -> None:
    """Raise a one-line :class:`ConfigError` when ``dask.distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"redysim sweep runs on Dask, which is not installed ({exc.name} is missing): "
            "pip install 'redysim[dist]'") from None


def check_dashboard(address: str | None) -> None:
    """A dashboard needs bokeh (a one-line ConfigError otherwise)."""
    if address is None:
        return
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        raise ConfigError(f"--dashboard {address}: Dask's dashboard needs bokeh, which is "
                          "not installed: pip install 'bokeh>=3.1'")


# --------------------------------------------------------------------------- a scheduler


def probe_scheduler(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast, in one line, when nothing listens at a ``tcp://HOST:PORT`` address."""
    if "://" in address and not address.startswith("tcp://"):
        return  # tls, ucx, inproc: Dask itself will say
    hostport = address.removeprefix("tcp://").rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--scheduler {address}: expected tcp://HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except TimeoutError:
        raise ConfigError(f"--scheduler {address}: no answer within {timeout:g} s; is a Dask "
                          "scheduler running there (python -m dask scheduler)?") from None
    except OSError as exc:
        raise ConfigError(f"--scheduler {address}: cannot connect ({exc.strerror or exc}); is "
                          "a Dask scheduler running there (python -m dask scheduler)?") from None


def connect(address: str) -> Any:
    """A Client of the scheduler at *address* (one-line ConfigError when unreachable)."""
    from distributed import Client

    probe_scheduler(address)
    try:
        return Client(address, timeout="15s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--scheduler {address}: cannot connect ({exc})") from None


# --------------------------------------------------------------------------- local


class LocalCluster:
    """A scheduler and *workers* worker processes on this machine (see the module doc)."""

    def __init__(self, workers: int, dashboard: str | None = None) -> None:
        self.n = max(1, int(workers))
        self.dashboard = dashboard
        self.procs: list[subprocess.Popen] = []
        self.scratch = Path(tempfile.mkdtemp(prefix="redysim-dask-"))
        self.log_path = self.scratch / "cluster.log"
        self.scheduler_file = self.scratch / "scheduler.json"
        self.address: str | None = None
        self.respawned = 0

    # ------------------------------------------------------------------ processes
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(WORKER_ENV)
        root = str(Path(__file__).resolve().parents[3])  # where `simulator` is importable
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, env.get("PYTHONPATH", "")) if p)
        return env

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        cmd = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *args]
        log = self.log_path.open("ab")
        try:
            # held back: a signal between the fork and the registration would leave a
            # process that the clean-up does not know about (it would still die with us)
            with deferred():
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, env=self._env(),
                                        cwd=os.getcwd())
                self.procs.append(proc)
        finally:
            log.close()
        return proc

    def _spawn_worker(self, i: int) -> subprocess.Popen:
        return self._spawn(["-m", "distributed.cli.dask_worker", "--scheduler-file",
                            str(self.scheduler_file), "--nthreads", "1", "--no-nanny",
                            "--no-dashboard", "--memory-limit", "0",
                            "--name", f"redysim-{i}",
                            "--local-directory", str(self.scratch / f"worker-{i}"),
                            "--preload", "simulator.explore.sweep.preload"])

    def start(self) -> str:
        """Start the scheduler and the workers; return the scheduler's address once it
        has written it (the workers join as they finish starting)."""
        dash = ["--dashboard", "--dashboard-address", self.dashboard] if self.dashboard else [
            "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
        self._spawn(["-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                     "--port", "0", "--scheduler-file", str(self.scheduler_file), *dash])
        for i in range(self.n):
            self._spawn_worker(i)
        faults.checkpoint("sweep-start")
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.address is None:
            try:
                self.address = json.loads(self.scheduler_file.read_text())["address"]
                break
            except (OSError, ValueError, KeyError):
                pass
            if self.procs[0].poll() is not None:
                raise RunFailure("the local Dask scheduler exited while starting"
                                 + self.log_tail())
            if time.monotonic() > deadline:
                raise RunFailure(f"the local Dask scheduler did not start within "
                                 f"{START_TIMEOUT_S:g} s" + self.log_tail())
            time.sleep(0.05)
        return self.address

    def check(self) -> None:
        """Replace a worker process that died (at most 2 × workers times in all); raise
        :class:`RunFailure` when the scheduler died or the workers keep dying."""
        if self.procs and self.procs[0].poll() is not None:
            raise RunFailure("the local Dask scheduler exited" + self.log_tail())
        for i, proc in enumerate(list(self.procs[1:])):
            if proc.poll() is None:
                continue
            if self.respawned >= 2 * self.n:
                raise RunFailure(f"the local Dask workers keep dying ({self.respawned} "
                                 "restarted)" + self.log_tail())
            self.respawned += 1
            self.procs.remove(proc)
            self._spawn_worker(self.n + self.respawned + i)

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the cluster's log, for an error message."""
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return (": " + " | ".join(t.strip() for t in tail)) if tail else ""

    def close(self) -> None:
        """SIGKILL and reap every process, remove the scratch folder (idempotent)."""
        with deferred():
            procs, self.procs = self.procs, []
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
        for p in procs:
            with contextlib.suppress(ChildProcessError):
                p.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        """Process ids of the scheduler and the workers."""
        return [p.pid for p in self.procs]


# --------------------------------------------------------------------------- the client


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None,
                dashboard: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: to *scheduler*, or to a new :class:`LocalCluster` of
    *workers* worker processes (one per core by default), closed on exit, also on an
    interrupt. The client has ``redysim_cluster`` set to the local cluster (or None)."""
    require_dask()
    check_dashboard(dashboard)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler:
        client = connect(scheduler)
        client.redysim_cluster = None
        try:
            yield client
        finally:
            _close_client(client)
        return
    cluster = LocalCluster(workers or max(1, os.cpu_count() or 1), dashboard)
    client = None
    try:
        address = cluster.start()
        from distributed import Client

        client = Client(address, timeout="30s")
        client.redysim_cluster = cluster
        yield client
    finally:
        if client is not None:
            _close_client(client)  # first, while the scheduler still answers
        cluster.close()


def _close_client(client: Any) -> None:
    """Close *client* within a second or two, quietly (its scheduler may be gone)."""
    quiet = logging.getLogger("distributed.client")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):
            client.close(timeout=2)
    finally:
        quiet.setLevel(level)
