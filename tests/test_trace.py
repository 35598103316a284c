"""The Chrome trace (trace.json) of the digits scenario, checked against independent counts.

The scenario (configs/scenarios/digits.yaml: isaac8 hardware, pipelines static, msb-trim
and redy) runs through simulator.runner.flow.run and simulator.results.write_results with
``simulation.trace = True``, 2 images and 16 accuracy images. Expectations come from the
mapping (placement of every lane), the precision result (bit planes of every group) and
docs/model.md, not from the recorder:

* one complete ("X") MVM event per non-skipped group (group fidelity books nothing for
  a 0-plane group), carrying its plane count;
* a lane's crossbars are busy planes x read_ns each per group, which is what the ledger
  books as crossbar busy instance-time;
* a lane's occupancy (EngineResult.lane_busy_ns) is the length of the union of its MVM
  intervals: consecutive groups of a lane overlap (the next read starts while the
  previous plane converts), so the sum of durations over-counts;
* NoC: each packet holds every port and link of its route for whole flits (1 / 1.2 ns
  each); per port or link the holds add up to the engine's busy time.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from simulator.engine.trace import write_trace
from simulator.results.write import write_results
from simulator.runner.flow import RunResult, run
from simulator.runner.scenario import load_scenario

DIGITS = Path(__file__).resolve().parents[1] / "configs" / "scenarios" / "digits.yaml"
IMAGES = 2
READ_NS = 100.0
NOC_PID = 100000
PIPE_PID = 1_000_000
LANE_RE = re.compile(r"^(\S+) r(\d+) rb(\d+) \(IMA (\d+)\)$")


def _scenario(trace_sample: int = 1, pipelines: tuple[str, ...] | None = None):
    sc = load_scenario(DIGITS)
    sc.simulation.trace = True
    sc.simulation.trace_sample = trace_sample
    sc.simulation.images = IMAGES
    sc.workload.accuracy_images = 16
    if pipelines is not None:
        sc.pipelines = {k: v for k, v in sc.pipelines.items() if k in pipelines}
    return sc


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> tuple[RunResult, Path, dict]:
    rr = run(_scenario())
    out = tmp_path_factory.mktemp("trace")
    write_results(rr, out)
    data = json.loads((out / "trace.json").read_text())
    return rr, out, data


def _memory(rr: RunResult) -> dict:
    """The recorders' events before writing (full float precision)."""
    return {"traceEvents": [e for pr in rr.pipelines.values() for e in pr.trace.events]}


# ------------------------------------------------------------------ expectations
class LaneInfo:
    """One lane as the mapping and the precision result describe it."""

    def __init__(self, layer: str, replica: int, rb: int, slots: list, cols: list[int],
                 planes: np.ndarray, adcs_per_ima: int) -> None:
        self.key = (layer, replica, rb)
        by_ima: dict[int, int] = {}
        tile_of: dict[int, int] = {}
        for s in slots:
            by_ima[s.ima] = by_ima.get(s.ima, 0) + 1
            tile_of[s.ima] = s.tile
        first = min(by_ima)
        self.tile = tile_of[first]
        self.label = f"{layer} r{replica} rb{rb} (IMA {first})"
        self.crossbars = len(cols)
        # ADCs held per IMA while converting: one per crossbar, at most the pool
        self.adcs = {ima: min(n, adcs_per_ima) for ima, n in by_ima.items()}
        self.tile_of = tile_of
        self.planes = planes  # bit planes of this lane's groups, image-major order
        self.groups = int(np.count_nonzero(planes))


def lanes_of(rr: RunResult, pipeline: str) -> dict[str, LaneInfo]:
    """label -> lane, from the mapping placement and the pipeline's bit planes."""
    out: dict[str, LaneInfo] = {}
    adcs = int(rr.hardware.ima.adcs)
    for layer, lm in rr.mapping.layers.items():
        arr = rr.precision[pipeline].layers[layer].planes[:IMAGES]
        assert arr.shape[0] == IMAGES
        for r in range(lm.replicas):
            idx = 0
            positions = lm.replica_positions[r]
            for rb_i, rb in enumerate(lm.row_blocks):
                n = len(rb.crossbar_cols)
                slots = lm.placement[r][idx: idx + n]
                idx += n
                info = LaneInfo(layer, r, rb_i, slots, list(rb.crossbar_cols),
                                arr[:, rb_i, positions].reshape(-1), adcs)
                out[info.label] = info
    return out


def _pipeline_index(rr: RunResult) -> dict[str, int]:
    return {name: i for i, name in enumerate(rr.pipelines)}


def _events_of(data: dict, idx: int) -> list[dict]:
    """Events of pipeline number *idx* (pid offset idx x 1e6, NoC process + 100000)."""
    return [e for e in data["traceEvents"] if e["pid"] // PIPE_PID == idx]


def _thread_names(events: list[dict]) -> dict[tuple[int, int], str]:
    return {(e["pid"], e["tid"]): e["args"]["name"] for e in events
            if e["ph"] == "M" and e["name"] == "thread_name"}


def _mvm_by_lane(events: list[dict]) -> dict[str, list[dict]]:
    names = _thread_names(events)
    out: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X" and e["cat"] == "mvm":
            out[names[(e["pid"], e["tid"])]].append(e)
    return out


def _union_ns(intervals: list[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


# ------------------------------------------------------------------ tests
def test_trace_file_structure(traced) -> None:
    rr, out, data = traced
    assert isinstance(data["traceEvents"], list) and data["traceEvents"]
    events = data["traceEvents"]
    assert {e["ph"] for e in events} <= {"M", "X", "C"}
    for e in events:
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0, e
            assert e["cat"] in ("mvm", "digital", "noc")
        if e["ph"] == "C":
            assert e["ts"] >= 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trace"]["events"] == len(events)
    assert summary["trace"]["sample_every"] == 1
    assert summary["trace"]["bytes"] == (out / "trace.json").stat().st_size
    # the digits scenario has three pipelines, each with its own pid range
    assert list(rr.pipelines) == ["static", "msb-trim", "redy"]
    assert {e["pid"] // PIPE_PID for e in events} == {0, 1, 2}


def test_process_names_for_every_pipeline(traced) -> None:
    """One "<pipeline>: tile N" process per tile holding an active lane part or a pool."""
    rr, _, data = traced
    g = rr.mapping.graph
    pool_tiles = {int(g.nodes[n]["tiles"][0]) for n in g.nodes
                  if g.nodes[n]["kind"] in ("maxpool", "avgpool", "add")}
    for name, idx in _pipeline_index(rr).items():
        events = _events_of(data, idx)
        procs = {e["pid"]: e["args"]["name"] for e in events
                 if e["ph"] == "M" and e["name"] == "process_name"}
        tiles = set(pool_tiles)
        for lane in lanes_of(rr, name).values():
            if lane.groups:
                tiles |= set(lane.tile_of.values())
        expect = {idx * PIPE_PID + t: f"{name}: tile {t}" for t in tiles}
        expect[idx * PIPE_PID + NOC_PID] = f"{name}: NoC"
        assert procs == expect
        # digits occupies tiles 0-4 (conv2 spans 0-3, conv3 3-4, fc 4)
        assert tiles == {0, 1, 2, 3, 4}


def test_lane_threads(traced) -> None:
    """A thread per lane with at least one non-skipped group, in its first IMA's tile."""
    rr, _, data = traced
    for name, idx in _pipeline_index(rr).items():
        events = _events_of(data, idx)
        names = _thread_names(events)
        lane_threads = {v: k for k, v in names.items() if "rb" in v}
        lanes = lanes_of(rr, name)
        active = {label for label, lane in lanes.items() if lane.groups}
        assert set(lane_threads) == active
        assert len(lane_threads) == len([v for v in names.values() if "rb" in v])  # unique
        for label, (pid, _tid) in lane_threads.items():
            assert LANE_RE.match(label), label
            assert pid == idx * PIPE_PID + lanes[label].tile
    # the static policy never skips a group: every lane of the mapping is there
    total = sum(lm.replicas * len(lm.row_blocks) for lm in rr.mapping.layers.values())
    static = {v for v in _thread_names(_events_of(data, 0)).values() if "rb" in v}
    assert len(static) == total


def test_adc_counter_tracks(traced) -> None:
    """'ADC pools' thread per tile and an 'ADCs in use, IMA k' counter per used IMA."""
    rr, _, data = traced
    pool = int(rr.hardware.ima.adcs)
    for name, idx in _pipeline_index(rr).items():
        events = _events_of(data, idx)
        names = _thread_names(events)
        lanes = [lane for lane in lanes_of(rr, name).values() if lane.groups]
        imas = {ima for lane in lanes for ima in lane.adcs}
        tiles = {lane.tile_of[ima] for lane in lanes for ima in lane.adcs}
        adc_threads = {pid - idx * PIPE_PID for (pid, _), v in names.items() if v == "ADC pools"}
        assert adc_threads == tiles
        counters: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for e in events:
            if e["ph"] == "C":
                m = re.fullmatch(r"ADCs in use, IMA (\d+)", e["name"])
                assert m, e["name"]
                counters[int(m.group(1))].append((e["ts"], e["args"]["in_use"]))
        assert set(counters) == imas
        for ima, seq in counters.items():
            assert all(0 <= v <= pool for _, v in seq), ima
            assert max(ts for ts, _ in seq) > 0
            # the pool is idle after the last conversion
            last_t = max(ts for ts, _ in seq)
            assert all(v == 0 for ts, v in seq if ts == last_t), ima


def test_adc_counter_levels_static(traced) -> None:
    """The counter equals the ADCs held by the IMA's converting lanes at every instant.

    Static pipeline (no selection latency): a group over [x, end] converts from x + r
    (its first read done) to end, holding one ADC per crossbar it has in the IMA.
    Checked on the recorder's exact times (the file rounds MVM times to 0.1 ns).
    """
    rr, _, _ = traced
    events = _events_of(_memory(rr), 0)
    lanes = lanes_of(rr, "static")
    windows: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for label, evs in _mvm_by_lane(events).items():
        for e in evs:
            t0 = e["ts"] * 1e3 + READ_NS
            t1 = (e["ts"] + e["dur"]) * 1e3
            for ima, n in lanes[label].adcs.items():
                windows[ima].append((t0, t1, n))
    counters: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    for i, e in enumerate(events):
        if e["ph"] == "C":
            ima = int(e["name"].rsplit(" ", 1)[1])
            counters[ima].append((e["ts"] * 1e3, i, e["args"]["in_use"]))
    assert set(counters) == set(windows)
    for ima, seq in counters.items():
        seq.sort()
        times = sorted({t for w in windows[ima] for t in w[:2]})
        for a, b in zip(times, times[1:], strict=False):
            if b - a < 1e-6:
                continue
            mid = (a + b) / 2
            truth = sum(n for t0, t1, n in windows[ima] if t0 <= mid < t1)
            shown = 0
            for ts, _, v in seq:
                if ts <= mid:
                    shown = v
            assert shown == truth, (ima, mid)


def _stage_label(key: tuple) -> str:
    """Thread name of a NoC port or link (simulator.engine.trace.TraceRecorder.link)."""
    if len(key) == 3:
        return f"{key[0]} {key[1]}->{key[2]}"
    if key[0] == "io":
        return f"input port, chip {key[1]}"
    return f"{'inject' if key[0] == 'inj' else 'eject'} tile {key[1]}"


def test_noc_tracks(traced) -> None:
    """A NoC thread per port and link a packet used; each packet's hold is one event.

    Per thread the events add up to the engine's busy time of that port or link, and
    the packets of the run (activation rows fanned out to consumer tiles, partial sums
    to merge tiles) each hold every stage of their route once: a unicast over h hops
    holds h + 2 stages (injection port, links, ejection port), so the events number
    sum(flit-hops / flits over packets) + packets... checked through the busy times.
    Every hold is a whole number of flits (1 / 1.2 ns each) long.
    """
    rr, _, data = traced
    for name, idx in _pipeline_index(rr).items():
        busy = rr.pipelines[name].timing.link_busy_ns
        assert busy, name
        mem = [e for e in _events_of(_memory(rr), idx) if e["ph"] == "X" and e["cat"] == "noc"]
        names = _thread_names(_events_of(_memory(rr), idx))
        per_thread: dict[str, float] = defaultdict(float)
        for e in mem:
            per_thread[names[(e["pid"], e["tid"])]] += e["dur"] * 1e3
            flits = e["dur"] * 1e3 * 1.2
            assert flits == pytest.approx(round(flits), abs=1e-6)
        assert per_thread == pytest.approx({_stage_label(k): v for k, v in busy.items()},
                                           rel=1e-9)
        assert all(pid == idx * PIPE_PID + NOC_PID for (pid, _) in
                   {(e["pid"], e["tid"]) for e in mem})
        # the file keeps 4 decimals of a µs: the same events, rounded
        in_file = [e for e in _events_of(data, idx) if e["ph"] == "X" and e["cat"] == "noc"]
        assert len(in_file) == len(mem)
        traffic = rr.pipelines[name].noc_traffic
        assert traffic["activations"]["packets"] > 0 and traffic["psum"]["packets"] >= 0
        # every packet holds its injection and ejection ports: at least 2 events each
        packets = traffic["activations"]["packets"] + traffic["psum"]["packets"]
        assert len(mem) >= 2 * packets


def test_mvm_events_are_the_non_skipped_groups(traced) -> None:
    """(a) one MVM event per non-skipped group, with the group's plane count."""
    rr, _, data = traced
    for name, idx in _pipeline_index(rr).items():
        lanes = lanes_of(rr, name)
        by_lane = _mvm_by_lane(_events_of(data, idx))
        n_events = sum(len(v) for v in by_lane.values())
        groups = sum(int(np.count_nonzero(lp.planes[:IMAGES]))
                     for lp in rr.precision[name].layers.values())
        assert n_events == groups
        for label, evs in by_lane.items():
            lane = lanes[label]
            # in time order the events carry the lane's non-zero plane counts in order
            got = [e["args"]["planes"] for e in sorted(evs, key=lambda e: e["ts"])]
            assert got == [int(b) for b in lane.planes if b > 0], label
        if name == "static":
            # static: nothing skipped, every group of every image
            positions = sum(lm.positions * len(lm.row_blocks)
                            for lm in rr.mapping.layers.values())
            assert n_events == IMAGES * positions
        else:
            # the dynamic policies skip some groups of conv1 (all-zero activations)
            zero = int((rr.precision[name].layers["conv1"].planes[:IMAGES] == 0).sum())
            assert zero > 0
            total = sum(lp.planes[:IMAGES].size for lp in rr.precision[name].layers.values())
            assert n_events < total


def test_mvm_crossbar_time_matches_ledger(traced) -> None:
    """(b) sum of planes x read_ns x lane crossbars = the ledger's crossbar busy time."""
    rr, _, data = traced
    for name, idx in _pipeline_index(rr).items():
        lanes = lanes_of(rr, name)
        by_lane = _mvm_by_lane(_events_of(data, idx))
        trace_busy = sum(e["args"]["planes"] * READ_NS * lanes[label].crossbars
                         for label, evs in by_lane.items() for e in evs)
        # the same from the planes arrays alone
        arrays = sum(float(lane.planes.sum()) * READ_NS * lane.crossbars
                     for lane in lanes.values())
        assert trace_busy == pytest.approx(arrays, rel=1e-12)
        _, busy = rr.pipelines[name].ledger.busy_bins()
        assert busy["crossbar"].sum() == pytest.approx(trace_busy, rel=1e-9)


@pytest.mark.parametrize("source", ["file", "memory"])
def test_lane_occupancy_is_union_of_mvm_intervals(traced, source: str) -> None:
    """(c) lane_busy_ns = length of the union of the lane's MVM intervals.

    In memory the times are exact; the file rounds ts and dur to 0.1 ns (4 decimals of a
    µs), so each interval end may move by up to 0.1 ns.
    """
    rr, _, data = traced
    if source == "memory":
        data = _memory(rr)
    overlapping = 0
    for name, idx in _pipeline_index(rr).items():
        lanes = lanes_of(rr, name)
        by_lane = _mvm_by_lane(_events_of(data, idx))
        busy = rr.pipelines[name].timing.lane_busy_ns
        assert set(busy) == {lane.key for lane in lanes.values()}
        for label, lane in lanes.items():
            evs = by_lane.get(label, [])
            tol = 1e-6 if source == "memory" else 0.15 * (len(evs) + 1)
            iv = [(e["ts"] * 1e3, (e["ts"] + e["dur"]) * 1e3) for e in evs]
            union = _union_ns(iv)
            assert busy[lane.key] == pytest.approx(union, abs=tol), (name, label)
            total = sum(b - a for a, b in iv)
            assert total >= union - 1e-6
            overlapping += total > union + 1.0
    # consecutive groups do overlap somewhere (read of the next during the last conversion)
    assert overlapping > 0


def test_file_matches_recorded_events(traced) -> None:
    """trace.json holds the recorders' events in order, times rounded to 0.1 ns."""
    rr, _, data = traced
    mem = _memory(rr)["traceEvents"]
    assert len(mem) == len(data["traceEvents"])
    for a, b in zip(mem, data["traceEvents"], strict=True):
        assert (a["ph"], a["pid"], a.get("tid"), a["name"]) == \
            (b["ph"], b["pid"], b.get("tid"), b["name"])
        if a["ph"] in ("X", "C"):
            assert b["ts"] == pytest.approx(a["ts"], abs=0.5e-4 + 1e-9)
        if a["ph"] == "X":
            assert b["dur"] == pytest.approx(a["dur"], abs=0.5e-4 + 1e-9)


def test_trace_sampling(tmp_path) -> None:
    """trace_sample = 4 keeps MVMs 0, 4, 8, ... of each lane: ceil(n / 4) of n, and no
    ADC counters (a counter track with dropped changes would be wrong)."""
    rr = run(_scenario(trace_sample=4, pipelines=("static", "redy")))
    assert list(rr.pipelines) == ["static", "redy"]
    recorders = [pr.trace for pr in rr.pipelines.values()]
    assert all(r is not None and r.sample_every == 4 for r in recorders)
    path = tmp_path / "trace.json"
    write_trace(recorders, path)
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    assert not [e for e in events if e["ph"] == "C"]
    assert not [e for e in events if e["ph"] == "M" and e["args"]["name"] == "ADC pools"]
    for name, idx in _pipeline_index(rr).items():
        lanes = lanes_of(rr, name)
        evs = _events_of(data, idx)
        by_lane = _mvm_by_lane(evs)
        for label, lane in lanes.items():
            assert len(by_lane.get(label, [])) == -(-lane.groups // 4), label
            kept = [e["args"]["planes"] for e in sorted(by_lane.get(label, []),
                                                         key=lambda e: e["ts"])]
            assert kept == [int(b) for b in lane.planes if b > 0][::4], label
        n_groups = sum(lane.groups for lane in lanes.values())
        n_mvm = sum(len(v) for v in by_lane.values())
        assert n_groups / 4 <= n_mvm <= n_groups / 4 + len(lanes)
        # digital steps are all kept: one per row of pool1 and pool2 per tile computing
        # some of it (mapping.position_tiles); NoC packets one in 4 (all the ports and
        # links of a kept packet): about a quarter of the ports' and links' busy time
        digital = [e for e in evs if e["ph"] == "X" and e["cat"] == "digital"]
        steps = 0
        for node in ("pool1", "pool2"):
            w = rr.workload.traced.graph.nodes[node]["out_shape"][2]
            tiles = rr.mapping.position_tiles[node].reshape(-1, w)
            steps += sum(len(set(row.tolist())) for row in tiles)
        assert len(digital) == IMAGES * steps
        noc = sum(e["dur"] * 1e3 for e in evs if e["ph"] == "X" and e["cat"] == "noc")
        total = sum(rr.pipelines[name].timing.link_busy_ns.values())
        assert 0.1 * total < noc < 0.5 * total
