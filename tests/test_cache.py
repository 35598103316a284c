"""The on-disk artifact cache (simulator/runner/cache.py): keys, atomic store, locks, reuse by
run."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from simulator.runner.cache import (
    ArtifactCache,
    CaptureCache,
    cached_workload,
    clear_memory,
    default_cache_dir,
    get_with_refs,
    lazy_workload,
    mapping_key,
    referenced_files,
    timing_plan_key,
    workload_key,
)
from simulator.runner.scenario import load_scenario
from workloads.precision.records import LayerSpec

ROOT = Path(__file__).resolve().parents[1]
ISAAC8 = ROOT / "configs" / "hardware" / "isaac8.yaml"


def _scenario(tmp_path: Path, **workload: object) -> Path:
    data = {"name": "t", "hardware": str(ISAAC8),
            "workload": {"model": "digits", "calibration_images": 8, "accuracy_images": 16,
                         **workload},
            "pipelines": {"static": {"policy": "static"}, "redy": {"policy": "redy"}}}
    p = tmp_path / "scen.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


# ----------------------------------------------------------------------------- store


def test_compute_once_then_read_from_disk(tmp_path: Path) -> None:
    calls = []
    c = ArtifactCache(tmp_path)
    assert c.get_or_compute("scales", "k1", lambda: calls.append(1) or {"a": 1.0}) == {"a": 1.0}
    assert c.get_or_compute("scales", "k1", lambda: calls.append(1) or {}) == {"a": 1.0}
    clear_memory()
    fresh = ArtifactCache(tmp_path)
    assert fresh.get_or_compute("scales", "k1", lambda: calls.append(1) or {}) == {"a": 1.0}
    assert calls == [1] and fresh.hits == {"scales": 1} and fresh.misses == {}
    # nothing half-written is left: the entry and its lock file only
    assert sorted(f.name for f in (tmp_path / "scales").iterdir()) == ["k1.lock", "k1.pkl"]


def test_corrupt_entry_is_recomputed(tmp_path: Path) -> None:
    c = ArtifactCache(tmp_path)
    c.path("scales", "k").parent.mkdir(parents=True)
    c.path("scales", "k").write_bytes(b"not a pickle")
    clear_memory()
    assert c.get_or_compute("scales", "k", lambda: 42) == 42


def _slow_compute(root: str, log: str) -> None:
    def compute() -> int:
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)
        return 7

    assert ArtifactCache(root).get_or_compute("precision", "shared", compute) == 7


def test_concurrent_processes_compute_once(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_slow_compute, args=(str(tmp_path / "c"), str(log)))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().count("computed") == 1


def _dies_while_writing(root: str) -> None:
    """Computes, leaves a temporary file as a writer killed mid-write would, and dies."""
    def compute() -> int:
        c = ArtifactCache(root)
        tmp = c.path("precision", "crash").with_name(".crash.pkl.half")
        tmp.write_bytes(b"half a pick")
        os.kill(os.getpid(), 9)
        return 0  # never reached

    ArtifactCache(root).get_or_compute("precision", "crash", compute)


def test_a_crashed_task_leaves_no_entry(tmp_path: Path) -> None:
    """SIGKILL while computing: no entry, the lock is free at once (a second process would
    otherwise block), and the next computation removes the temporary file."""
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_dies_while_writing, args=(str(tmp_path),))
    p.start()
    p.join(30)
    assert p.exitcode == -9
    assert not ArtifactCache(tmp_path).path("precision", "crash").exists()
    clear_memory()
    t0 = time.monotonic()
    assert ArtifactCache(tmp_path).get_or_compute("precision", "crash", lambda: 5) == 5
    assert time.monotonic() - t0 < 5
    assert sorted(f.name for f in (tmp_path / "precision").iterdir()) == [
        "crash.lock", "crash.pkl"]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDYSIM_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    assert ArtifactCache().root == tmp_path / "artifacts"
    monkeypatch.delenv("REDYSIM_CACHE")
    assert ROOT not in default_cache_dir().parents  # never inside the repository


# ----------------------------------------------------------------------------- keys


def test_workload_key_follows_the_weights_content(tmp_path: Path) -> None:
    w = tmp_path / "w.pt"
    w.write_bytes(b"one")
    sc = load_scenario(_scenario(tmp_path, weights="w.pt"))
    k1 = workload_key(sc)
    os.utime(w, (1, 1))  # a new mtime, the same content
    assert workload_key(sc) == k1
    w.write_bytes(b"two")
    assert workload_key(sc) != k1


def test_workload_key_follows_every_workload_field(tmp_path: Path) -> None:
    a = workload_key(load_scenario(_scenario(tmp_path)))
    b = workload_key(load_scenario(_scenario(tmp_path, seed=1)))
    c = workload_key(load_scenario(_scenario(tmp_path, eval_images=2)))
    assert len({a, b, c}) == 3


def test_referenced_folder_listing(tmp_path: Path) -> None:
    d = tmp_path / "images" / "cat"
    d.mkdir(parents=True)
    (d / "1.png").write_bytes(b"x")
    section = {"dataset": "images", "model": "resnet18"}
    one = referenced_files(section, tmp_path)
    assert set(one) == {"images"} and one["images"]["files"] == 1
    (d / "2.png").write_bytes(b"y")
    assert referenced_files(section, tmp_path) != one
    # a module:attr names its source file
    mod = referenced_files({"model": "workloads.trained.digits:DigitsCNN"}, tmp_path)
    assert mod["workloads.trained.digits:DigitsCNN"]["file"].endswith("digits.py")


def test_precision_key_follows_the_group_layout(tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path))
    spec = sc.pipelines["redy"]

    def key(ranges: list[tuple[int, int]], signed: bool = False) -> tuple[str, str]:
        seen: dict[str, str] = {}
        cc = CaptureCache(ArtifactCache(tmp_path), sc, {
            "conv": LayerSpec(module="conv", kind="conv", row_ranges=ranges,
                              signed_input=signed)})
        cc.cache.get_or_compute = lambda kind, k, compute: seen.setdefault(kind, k)
        cc.fetch("precision", lambda: None, policy=spec)
        cc.fetch("scales", lambda: None)
        return seen["precision"], seen["scales"]

    p128, s128 = key([(0, 126), (126, 144)])
    p256, s256 = key([(0, 144)])
    assert p128 != p256 and s128 == s256  # regrouping: new planes, the same scales
    assert key([(0, 144)]) == (p256, s256)
    assert key([(0, 144)], signed=True)[1] != s256


# ----------------------------------------------------------------------------- through run


def test_hardware_change_reuses_everything(tmp_path: Path) -> None:
    from simulator.hardware.spec import load_hardware
    from simulator.runner.flow import run

    sc = load_scenario(_scenario(tmp_path))
    sc.simulation.workers = 1
    cache = ArtifactCache(tmp_path / "cache")
    first = run(sc, cache=cache)
    assert cache.misses == {"workload": 1, "workload_graph": 1, "scales": 1, "precision": 2,
                            "float_accuracy": 1, "mapping": 1, "timing_plan": 1}
    clear_memory()  # read from disk, as a fresh worker process would
    again = ArtifactCache(tmp_path / "cache")
    hw = load_hardware(ISAAC8).with_changes({"ima.crossbars_per_adc": 2})
    second = run(sc, hardware=hw, cache=again)
    # no trace, no forward pass, no mapping (the mapper reads no ADC): only a new plan
    assert again.misses == {"timing_plan": 1}
    # the graph alone: the fx module and the inputs are never read
    assert again.hits == {"workload_graph": 1, "scales": 1, "precision": 2, "float_accuracy": 1,
                          "mapping": 1}
    assert second.hardware.ima.adcs == 4
    for name, pp in first.precision.items():
        for layer, lp in pp.layers.items():
            assert (second.precision[name].layers[layer].planes == lp.planes).all()
    # ADC sharing changes time, not energy (no static power in isaac8)
    for name, pr in first.pipelines.items():
        assert second.pipelines[name].ledger.total_energy() == pytest.approx(
            pr.ledger.total_energy(), rel=1e-12)
    # results folders can be named by a str
    from simulator.results.write import write_results

    summary = write_results(second, str(tmp_path / "res"), plots=False)
    assert (tmp_path / "res" / "summary.json").is_file()
    assert summary["hardware_warnings"] == hw.warnings() and len(hw.warnings()) == 1
    # uncached, the same numbers
    plain = run(sc, hardware=hw)
    for name, pr in second.pipelines.items():
        assert plain.pipelines[name].latency_ns == pytest.approx(pr.latency_ns, rel=1e-12)
        assert plain.pipelines[name].counts() == pr.counts()


def test_mapping_and_timing_plan_keys_follow_what_they_read() -> None:
    """The mapping's key changes with the workload, the mapping options, every hardware
    value the mapper reads (mapping.mapper.HARDWARE_KEYS, which tests/test_sweep.py checks
    against what it reads) and the code; the timing plan's with the mapping's and with
    every value of the hardware."""
    import simulator.runner.cache as cache_mod
    from mapping.mapper import HARDWARE_KEYS, MappingOptions
    from simulator.hardware.spec import load_hardware

    hw, opts = load_hardware(ISAAC8), MappingOptions()
    m0 = mapping_key("w", opts, hw)
    p0 = timing_plan_key(m0, hw)
    assert mapping_key("w", MappingOptions(), load_hardware(ISAAC8)) == m0  # by content
    assert timing_plan_key(m0, load_hardware(ISAAC8)) == p0
    assert mapping_key("v", opts, hw) != m0
    for changed in ({"replicate": False}, {"stripe": 1}, {"placement": "interleaved"},
                    {"tile_aligned": True}, {"chips": 2}, {"replicas": {"fc": 2}}):
        assert mapping_key("w", opts.model_copy(update=changed), hw) != m0, changed
    # a change of each hardware value the mapper reads: a new mapping, a new plan
    changes = {"crossbar.rows": 64, "crossbar.cols": 64, "crossbar.cell_bits": 1,
               "weights.bits": 4, "weights.unit_column": not hw.weights.unit_column,
               "activations.bits": 4, "ima.crossbars": 4, "tile.imas": 4,
               "chip.tiles": 64, "chip.mesh_cols": 2, "chip.tiles_per_router": 2,
               "tile.edram_bytes": 2 * hw.tile.edram_bytes}
    assert sorted(changes) == sorted(HARDWARE_KEYS)
    for key, value in changes.items():
        other = hw.with_changes({key: value})
        mkey = mapping_key("w", opts, other)
        assert mkey != m0 and timing_plan_key(mkey, other) != p0, key
    # what only the plan reads: the same mapping, a new plan
    for key, value in {"ima.adc_bits": 6, "ima.crossbars_per_adc": 2,
                       "crossbar.read_ns": 2 * hw.crossbar.read_ns}.items():
        other = hw.with_changes({key: value})
        assert mapping_key("w", opts, other) == m0, key
        assert timing_plan_key(m0, other) != p0, key
    # other code (the mapper's, the model's: source_version): new keys
    cache_mod.source_version()
    old = cache_mod._SOURCE_VERSION
    try:
        cache_mod._SOURCE_VERSION = "other"
        assert mapping_key("w", opts, hw) != m0
    finally:
        cache_mod._SOURCE_VERSION = old


def test_get_with_refs_reads_fresh_objects_that_hold_the_caller_s(tmp_path: Path) -> None:
    """An artifact stored with references (the mapping, the timing plan) is a fresh object
    at each read, holding the reader's objects in place of the references and sharing
    what the computed one shared; a failed computation leaves no entry."""
    c = ArtifactCache(tmp_path)
    hw = {"chip": "stands for the hardware spec"}
    value: dict = {"hw": hw, "data": [1, 2]}
    value["again"] = value["data"]

    def never() -> dict:
        raise AssertionError("computed again")

    assert get_with_refs(c, "mapping", "k", lambda: value, {"hw": hw}) is value  # computed
    assert b"stands for" not in c.path("mapping", "k").read_bytes()  # stored by name
    mine = {"chip": "the reader's"}
    for from_disk in (False, True):
        if from_disk:
            clear_memory()
        got = get_with_refs(c, "mapping", "k", never, {"hw": mine})
        assert got is not value and got["data"] == [1, 2]
        assert got["hw"] is mine and got["again"] is got["data"]
        assert get_with_refs(c, "mapping", "k", never, {"hw": mine}) is not got
    assert got == {**value, "hw": mine}

    def fails() -> dict:
        raise ValueError("no fit")

    with pytest.raises(ValueError, match="no fit"):
        get_with_refs(c, "timing_plan", "bad", fails, {})
    assert not c.path("timing_plan", "bad").exists()
    assert sorted(f.name for f in (tmp_path / "timing_plan").iterdir()) == ["bad.lock"]


def test_a_mapping_change_maps_and_plans_again(tmp_path: Path) -> None:
    """A hardware change that the mapper reads (crossbar columns: more column blocks, the
    same row blocks, so the same bit planes) maps and plans again, and gives the figures of
    a run without the cache."""
    from simulator.hardware.spec import load_hardware
    from simulator.runner.flow import run

    sc = load_scenario(_scenario(tmp_path))
    sc.simulation.workers, sc.simulation.images, sc.simulation.fidelity = 1, 2, "analytic"
    cache = ArtifactCache(tmp_path / "cache")
    first = run(sc, cache=cache)
    hw = load_hardware(ISAAC8).with_changes({"crossbar.cols": 64})
    again = ArtifactCache(tmp_path / "cache")
    second = run(sc, hardware=hw, cache=again)
    assert again.misses == {"mapping": 1, "timing_plan": 1}
    assert second.mapping.crossbars_used > first.mapping.crossbars_used
    plain = run(sc, hardware=hw)
    assert second.mapping.crossbars_used == plain.mapping.crossbars_used
    for name, pr in plain.pipelines.items():
        assert second.pipelines[name].latency_ns == pr.latency_ns
        assert second.pipelines[name].counts() == pr.counts()
        assert second.pipelines[name].ledger.total_energy() == pr.ledger.total_energy()


# ----------------------------------------------------------------------------- torch objects


def test_torch_storages_round_trip_without_torch_s_copies(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors (a parameter, integer, boolean and half ones, an empty one, views into one
    storage) come back equal from disk; their storages are written from the tensors'
    memory, never through torch's own ``__reduce__`` (which copies each into a bytes
    object that stays held until the whole artifact is written)."""
    import torch

    base = torch.arange(12, dtype=torch.float32)
    value = {"p": torch.nn.Parameter(torch.randn(3, 4)), "i": torch.arange(5),
             "b": torch.tensor([True, False]), "h": torch.randn(4).half(),
             "e": torch.empty(0), "view": base[2:8].reshape(2, 3), "base": base}

    def refused(self, *args):
        raise AssertionError("torch's own storage pickling was used")

    monkeypatch.setattr(torch.storage.TypedStorage, "__reduce__", refused)
    monkeypatch.setattr(torch.UntypedStorage, "__reduce__", refused)
    ArtifactCache(tmp_path).get_or_compute("workload", "k", lambda: value)
    monkeypatch.undo()
    clear_memory()
    got = ArtifactCache(tmp_path).get_or_compute("workload", "k", lambda: None)
    assert sorted(got) == sorted(value)
    for k, t in value.items():
        assert got[k].dtype == t.dtype and torch.equal(got[k], t), k
    assert isinstance(got["p"], torch.nn.Parameter) and got["p"].requires_grad
    assert got["view"].storage_offset() == 2 and got["view"].stride() == (3, 1)


def _fake_workload(calls: list) -> object:
    import networkx as nx

    calls.append(1)
    return SimpleNamespace(
        traced=SimpleNamespace(graph=nx.DiGraph([("a", "b")]), name="n", input_shape=(1, 2),
                               module={"weights": [1.0, 2.0]}),
        note="note", info={}, keep_images=None, eval_count=1, has_labels=False)


def test_lazy_workload_own_and_release(tmp_path: Path) -> None:
    """A run takes its workload (own: out of the in-memory layer, so it may change it) and
    lets it go (release: the next use reads it from disk, unchanged); a workload the
    in-memory layer gave, another holder may have: own() copies it."""
    sc = load_scenario(_scenario(tmp_path))
    cache = ArtifactCache(tmp_path / "c")
    calls: list = []
    wl = cached_workload(cache, sc, lambda _sc: _fake_workload(calls), lazy=True)
    other = cached_workload(cache, sc, lambda _sc: _fake_workload(calls), lazy=True)
    key = workload_key(sc)
    shared = other.traced.module  # the same object, from the in-memory layer
    assert wl.traced.module is shared and calls == [1]
    mine = wl.own()
    assert mine.traced.module is shared and not cache.in_memory("workload", key)
    mine.traced.module["weights"][0] = -1.0  # changed in place
    assert wl.release()
    assert wl.traced.module == {"weights": [1.0, 2.0]}  # read from disk again
    assert wl.traced.module is not shared and calls == [1]
    assert cache.in_memory("workload", key)
    third = cached_workload(cache, sc, lambda _sc: _fake_workload(calls), lazy=True)
    assert third.own().traced.module is not wl.traced.module  # a copy: wl holds it too
    assert wl.traced.module == {"weights": [1.0, 2.0]}


def test_lazy_workload_without_cache_is_built_again_after_release() -> None:
    calls: list = []
    wl = lazy_workload(_fake_workload(calls), lambda: _fake_workload(calls))
    net = wl.traced.module
    assert wl.own().traced.module is net and calls == [1]
    assert wl.release() and not wl.release()  # nothing held the second time
    assert wl.traced.module == net and wl.traced.module is not net and calls == [1, 1]
    assert list(wl.traced.graph.edges) == [("a", "b")]
