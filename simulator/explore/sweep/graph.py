"""A sweep as a Dask graph: the steps of its points as tasks, shared where they agree.

:func:`submit_points` builds, for every point to run, the tasks of
:mod:`simulator.explore.sweep.tasks` and submits each distinct one once. A task's key is a
digest of everything its result depends on, so two points that agree on a step's inputs
share its task:

- ``trace``: the workload key of the artifact cache (the ``workload`` section, the content
  of the files it names, the code version);
- ``map``: the trace, the mapping options and the hardware the mapper reads
  (:data:`mapping.mapper.HARDWARE_KEYS`): points that change the ADCs, the NoC or the
  energies share their mapping;
- ``scales``: the trace and the ``quantization`` section;
- ``capture``: the mapping (so the group layout and the weight bits), the scales and the
  policies of one forward pass (:func:`workloads.precision.options.capture_groups`):
  points that change only hardware the mapper does not read share their bit planes;
- ``float``: the trace;
- ``plan``: the mapping and the whole hardware spec;
- ``simulate``: the plan, the capture, the pipeline and the ``simulation`` section;
- ``point``: the point (its hash): assembles the results and writes the folder.

Points that change only a policy share the trace, mapping and scales; points that change
only hardware share everything upstream of the simulation. Two captures of the same
layout reached through different mappings (say, 8 tiles and 16 tiles per chip) are two
tasks, and the artifact cache's per-entry lock makes the second read what the first
computed.

Keys also make a study's sweeps (several clients of one scheduler) share their tasks.
Only the point tasks are held by the client: an intermediate result is released by the
scheduler as soon as the last point that needs it is done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.explore.sweep import tasks as T

#: kinds of task, in graph order (the prefix of their keys)
KINDS = ("trace", "map", "scales", "capture", "float", "plan", "simulate", "point")


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class PointJob:
    """One point to run: its validated scenario and hardware, and its folder."""

    id: str
    sc: Any
    hw: Any
    hash: str
    out: Path
    axes: dict[str, Any]
    changes: dict[str, Any]
    keys: set[str] = field(default_factory=set)
    """Keys of every task the point needs (its own and the shared ones)."""

    def task(self, plots: bool) -> dict[str, Any]:
        """The point task's description (``point.json`` fields and where to write)."""
        return {"id": self.id, "axes": self.axes, "changes": self.changes,
                "hash": self.hash, "out": str(self.out), "plots": plots}


@dataclass
class PointKeys:
    """The keys of one point's tasks, by role."""

    trace: str
    map: str
    scales: str
    float: str
    plan: str
    capture: dict[str, str]
    simulate: dict[str, str]
    point: str

    def roles(self) -> dict[str, Any]:
        """The roles the point task reads its dependencies by."""
        return {"trace": self.trace, "map": self.map, "plan": self.plan,
                "float": self.float, "capture": self.capture, "simulate": self.simulate}

    def all(self) -> set[str]:
        """Every key of the point."""
        return {self.trace, self.map, self.scales, self.float, self.plan,
                *self.capture.values(), *self.simulate.values(), self.point}


def point_keys(job: PointJob) -> PointKeys:
    """The task keys of *job* (pure: from its scenario and hardware only)."""
    from mapping.mapper import hardware_view
    from simulator.runner.cache import referenced_files, workload_key
    from simulator.runner.flow import crossbar_key
    from workloads.precision.options import capture_groups

    sc, hw = job.sc, job.hw
    wkey = workload_key(sc)
    trace = f"trace-{_digest(wkey)}"
    mkey = f"map-{_digest([trace, sc.mapping.model_dump(mode='json'), hardware_view(hw)])}"
    skey = f"scales-{_digest([trace, sc.quantization.model_dump(mode='json')])}"
    fkey = f"float-{_digest(trace)}"
    pkey = f"plan-{_digest([mkey, hw.model_dump(mode='json')])}"
    capture: dict[str, str] = {}
    exact = crossbar_key(sc, hw)  # the exact crossbar mode's captures depend on the ADC
    for pipes in capture_groups(sc.pipelines, exact=exact is not None):
        specs = [(n, p.model_dump(mode="json")) for n, p in pipes]
        files = [referenced_files(s, sc.base_dir) for _, s in specs]
        ckey = f"capture-{_digest([mkey, skey, specs, files, int(hw.weights.bits), exact])}"
        for n, _ in pipes:
            capture[n] = ckey
    sim_opts = sc.simulation.model_dump(mode="json")
    simulate = {}
    for i, name in enumerate(sc.pipelines):
        simulate[name] = (f"simulate-{_digest([pkey, capture[name], name, i, sim_opts])}")
    return PointKeys(trace, mkey, skey, fkey, pkey, capture, simulate,
                     f"point-{_digest([job.hash, job.id])}")


def submit_points(client: Any, jobs: list[PointJob], cache_dir: str | None,
                  plots: bool) -> dict[Any, PointJob]:
    """Submit the tasks of every job (each distinct task once); returns the point
    futures (future -> job). Only these are held: the intermediate futures are dropped
    once their dependents are submitted."""
    futures: dict[str, Any] = {}

    def submit(key: str, fn: Any, *args: Any) -> Any:
        if key not in futures:
            futures[key] = client.submit(fn, *args, key=key, pure=False)
        return futures[key]

    points: dict[Any, PointJob] = {}
    for job in jobs:
        k = point_keys(job)
        job.keys = k.all()
        sc, hw = job.sc, job.hw
        trace = submit(k.trace, T.trace_task, sc, cache_dir)
        mapped = submit(k.map, T.map_task, trace, hw, sc)
        scales = submit(k.scales, T.scales_task, trace, sc, cache_dir)
        submit(k.float, T.float_task, trace, sc, cache_dir)
        plan = submit(k.plan, T.plan_task, mapped, hw)
        for ckey in dict.fromkeys(k.capture.values()):
            names = [n for n, c in k.capture.items() if c == ckey]
            submit(ckey, T.capture_task, trace, mapped, scales, sc, names, hw, cache_dir)
        for i, (name, skey) in enumerate(k.simulate.items()):
            submit(skey, T.simulate_task, mapped, plan, futures[k.capture[name]], sc, hw, i,
                   name)
        deps = {key: futures[key] for key in (k.trace, k.map, k.scales, k.plan, k.float,
                                              *k.capture.values(), *k.simulate.values())}
        fut = client.submit(T.point_task, deps, k.roles(), sc, hw, job.task(plots),
                            key=k.point, pure=False)
        points[fut] = job
    futures.clear()
    return points


def key_kind(key: Any) -> str:
    """The kind of a task key (``simulate-…`` -> ``simulate``)."""
    text = key if isinstance(key, str) else str(key)
    return text.split("-", 1)[0]
