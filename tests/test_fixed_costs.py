"""Fixed costs of a run (issue 20 item 4): what the command line imports, and a rerun that
reads every artifact from the cache. Properties only; the seconds are measured by
bench/quickstart_time.py (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from simulator.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "matplotlib", "dask", "distributed")


def _imported(code: str) -> set[str]:
    """The HEAVY packages that *code*, run in a fresh interpreter, leaves in sys.modules."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True).stdout
    return set(out.split())


def test_command_line_parser_imports_nothing_heavy() -> None:
    """``redysim --help``, ``hw``, ``plot``: no torch, torchvision, matplotlib or Dask."""
    assert _imported("import simulator.cli.main as m\nm.build_parser()") == set()


def test_run_modules_import_nothing_heavy() -> None:
    """What ``redysim run`` imports before its first step, and loading a scenario: no torch
    (only to build a network or run a pass), torchvision (only to build a torchvision
    model), matplotlib (only to draw) or Dask (sweeps)."""
    got = _imported("import simulator.runner.flow, simulator.results.write, "
                    "simulator.runner.scenario, workloads.loader\n"
                    "from simulator.runner.scenario import load_scenario\n"
                    "load_scenario('configs/scenarios/quickstart.yaml')")
    assert got == set()
    assert _imported("import workloads.models") == {"torch"}


@pytest.fixture()
def digits(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["simulation"].update(images=1, fidelity="analytic", workers=1)
    data["workload"]["accuracy_images"] = 16
    p = tmp_path / "digits1.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _figures(folder: Path) -> dict:
    s = json.loads((folder / "summary.json").read_text())
    s.pop("wall_s")
    s.pop("estimate", None)
    return s


def test_rerun_reads_every_artifact_from_the_cache(digits: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    args = ["run", str(digits), "--force", "--cache", str(cache)]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().err
    assert "artifact cache" in first and "read nothing" in first
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    again = capsys.readouterr().err
    assert "computed nothing" in again and "1 workload" in again
    assert _figures(tmp_path / "a") == _figures(tmp_path / "b")
    for name in ("layers.csv", "tiles.csv", "timeline.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _exact(scenario: Path, folder: Path) -> Path:
    """*scenario* in the exact crossbar mode, on isaac8 with a calibrated 6-bit ADC and read
    noise (so a run also measures and caches the ADC's range: the ``adc_range`` artifact)."""
    hw = folder / "isaac8-calibrated.yaml"
    hw.write_text(yaml.safe_dump({"include": str(ROOT / "configs" / "hardware" / "isaac8.yaml"),
                                  "ima": {"adc_bits": 6, "adc_model": "calibrated",
                                          "adc_noise_lsb": 0.25}}))
    data = yaml.safe_load(scenario.read_text())
    data.update(hardware=str(hw), accuracy={"crossbar": "exact"})
    p = folder / "digits1-exact.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("crossbar", ["fast", "exact"])
def test_rerun_from_the_cache_imports_no_torch(digits: Path, tmp_path: Path,
                                               crossbar: str) -> None:
    """A run whose every artifact is cached (a rerun) reads the graph, the scales and the
    bit planes, none of which holds a torch object, and never imports torch; the
    first run, which builds and captures, does. In the exact crossbar mode too: the
    mode's cache key and progress line come from the torch-free
    ``workloads.precision.crossbar_model``, the calibrated ADC's range from the cache."""
    scenario = digits if crossbar == "fast" else _exact(digits, tmp_path)
    cache = tmp_path / "cache"
    run = (f"import contextlib, io\nfrom simulator.cli.main import main\n"
           f"with contextlib.redirect_stdout(io.StringIO()):\n"
           f"    assert main(['run', {str(scenario)!r}, '-o', {str(tmp_path / 'out')!r}, "
           f"'--force', '--quiet', '--cache', {str(cache)!r}]) == 0")
    assert "torch" in _imported(run)
    first = _figures(tmp_path / "out")
    assert _imported(run) == {"matplotlib"}  # the plots; no torch
    assert (tmp_path / "out" / "report.html").is_file()
    again = _figures(tmp_path / "out")
    assert again == first
    assert again["workload_info"]["accuracy_crossbar"] == crossbar


def test_no_cache_stores_nothing(digits: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDYSIM_CACHE", str(tmp_path / "env-cache"))
    assert main(["run", str(digits), "-o", str(tmp_path / "o"), "--quiet", "--no-cache"]) == 0
    assert (tmp_path / "o" / "summary.json").is_file()
    assert not (tmp_path / "env-cache").exists()


def test_passes_side_by_side_only_when_their_weight_copies_are_small(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import networkx as nx

    from simulator.runner.flow import PARALLEL_PASSES_MAX_BYTES, pass_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 4)

    g = nx.DiGraph()
    g.add_node("conv", weights=11_000_000)  # ResNet-18-sized: 44 MB of float32 per pass
    sc = SimpleNamespace(workload=SimpleNamespace(device="cpu"),
                         accuracy=SimpleNamespace(crossbar="fast"))
    specs = {"conv": None}
    assert pass_workers(sc, g, specs, passes=2, workers=3) == 2
    assert pass_workers(sc, g, specs, passes=3, workers=2) == 2
    assert pass_workers(sc, g, specs, passes=1, workers=3) == 1  # one pass
    assert pass_workers(sc, g, specs, passes=2, workers=1) == 1  # no simulation workers
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert pass_workers(sc, g, specs, passes=2, workers=3) == 1  # one core
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    sc.workload.device = "auto"  # a GPU cannot be shared with forked children
    assert pass_workers(sc, g, specs, passes=2, workers=3) == 1
    sc.workload.device = "cpu"
    sc.accuracy.crossbar = "exact"  # passes with crossbars: one after the other
    assert pass_workers(sc, g, specs, passes=2, workers=3) == 1
    sc.accuracy.crossbar = "fast"
    g.nodes["conv"]["weights"] = PARALLEL_PASSES_MAX_BYTES // 8 + 1  # two copies: too big
    assert pass_workers(sc, g, specs, passes=2, workers=3) == 1


def test_passes_side_by_side_capture_the_same_bit_planes(digits: Path) -> None:
    """The lossless pass and the ReDy pass in two forked processes give what one pass after
    the other in this process gives."""
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    got = {}
    for workers in (1, 3):
        sc = load_scenario(digits)
        sc.simulation.workers = workers
        got[workers] = run(sc).precision
    assert list(got[1]) == list(got[3]) == list(sc.pipelines)
    assert sorted(sc.pipelines) == ["msb-trim", "redy", "static"]  # two passes
    for name, pp in got[1].items():
        other = got[3][name]
        assert other.accuracy == pp.accuracy and other.top5 == pp.top5
        assert bool((other.logits == pp.logits).all())
        for layer, lp in pp.layers.items():
            assert (other.layers[layer].planes == lp.planes).all()
            assert (other.layers[layer].low == lp.low).all()
            assert other.layers[layer].hist.tolist() == lp.hist.tolist()


def test_map_reads_the_traced_network_from_the_cache(digits: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``redysim map`` goes through the artifact cache as ``run`` does: the first call
    traces (torch) and stores the network, its mapping and its timing plan (the NoC
    traffic it prints), the next ones read them (no torch, no mapper, no planning) and
    print the same mapping; ``--no-cache`` stores nothing."""
    import simulator.runner.flow as flow
    import simulator.runner.simulate as simulate

    cache = tmp_path / "cache"
    out = tmp_path / "map.txt"
    call = (f"import contextlib\nfrom simulator.cli.main import main\n"
            f"with open({str(out)!r}, 'w') as f, contextlib.redirect_stdout(f):\n"
            f"    assert main(['map', {str(digits)!r}, '--cache', {str(cache)!r}]) == 0")
    assert "torch" in _imported(call)
    first = [ln for ln in out.read_text().splitlines() if "trace + map" not in ln]
    assert _imported(call) == set()
    assert [ln for ln in out.read_text().splitlines() if "trace + map" not in ln] == first
    assert main(["map", str(digits), "--no-cache", "--cache", str(tmp_path / "none")]) == 0
    assert not (tmp_path / "none").exists()

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(flow, "map_network", refuse)
    monkeypatch.setattr(simulate, "prepare_timing", refuse)
    assert main(["map", str(digits), "--cache", str(cache), "--json"]) == 0


def test_passes_one_after_the_other_own_the_network(digits: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Passes one after the other in the run's process (forced here; VGG-16's weight
    copies are too big to run them side by side): the network becomes the run's own, its
    weights are quantized in place once for both passes, and it is let go before the
    simulations are forked (a forked worker would hold its pages: docs/benchmarks.md,
    "Peak memory"). The bit planes and figures are those of the passes side by side."""
    import simulator.runner.flow as flow
    import workloads.precision.quantize as quantize
    from simulator.core import workers
    from simulator.runner.cache import ArtifactCache, workload_key
    from simulator.runner.scenario import load_scenario

    traced, in_place, forks = [], [], []
    trace_step, in_place_fn = flow.trace_step, quantize.quantize_weights_in_place
    submit = workers.WorkerGroup.submit
    cache = ArtifactCache(tmp_path / "cache")

    def fork(group, fn, item, label):
        wl = traced[0]
        forks.append((label, wl.full.value is None,
                      cache.in_memory("workload", workload_key(wl_sc))))
        return submit(group, fn, item, label)

    monkeypatch.setattr(flow, "trace_step",
                        lambda *a, **k: traced.append(trace_step(*a, **k)) or traced[-1])
    monkeypatch.setattr(quantize, "quantize_weights_in_place",
                        lambda *a: in_place.append(a[2]) or in_place_fn(*a))
    monkeypatch.setattr(workers.WorkerGroup, "submit", fork)
    monkeypatch.setattr(flow, "PARALLEL_PASSES_MAX_BYTES", 0)
    wl_sc = load_scenario(digits)
    wl_sc.simulation.workers = 3
    own = flow.run(wl_sc, cache=cache)
    assert in_place == [8, 8]  # one call per pass; the second finds it done
    # every simulation forked after the network was let go, out of the in-memory layer too
    assert sorted(forks) == [(f"pipeline '{n}'", True, False) for n in sorted(wl_sc.pipelines)]
    monkeypatch.undo()

    sc = load_scenario(digits)
    sc.simulation.workers = 3
    side = flow.run(sc)  # the passes side by side, each quantizing a copy
    for name, pp in side.precision.items():
        assert own.precision[name].accuracy == pp.accuracy
        assert bool((own.precision[name].logits == pp.logits).all())
        for layer, lp in pp.layers.items():
            assert (own.precision[name].layers[layer].planes == lp.planes).all()
        a, b = own.pipelines[name], side.pipelines[name]
        assert (a.latency_ns, a.throughput_ips) == (b.latency_ns, b.throughput_ips)
        assert a.ledger.total_energy() == b.ledger.total_energy()


def _no_times(summary: dict) -> dict:
    """*summary* without the wall times and the estimate (which holds the run's)."""
    return {k: v for k, v in summary.items() if k not in ("wall_s", "estimate")}


def _same(a: object, b: object, where: str = "") -> None:
    """*a* and *b* hold the same values, compared through containers, dataclasses, plain
    objects, numpy arrays and networkx graphs (nodes, edges and their attributes in order);
    the hardware spec by its values."""
    import dataclasses

    import networkx as nx
    import numpy as np

    from simulator.hardware.spec import HardwareSpec

    assert type(a) is type(b), where
    if isinstance(a, nx.DiGraph):
        assert list(a.nodes) == list(b.nodes) and list(a.edges) == list(b.edges), where
        for n in a.nodes:
            _same(dict(a.nodes[n]), dict(b.nodes[n]), f"{where} node {n}")
        for u, v in a.edges:
            _same(dict(a.edges[u, v]), dict(b.edges[u, v]), f"{where} edge {u}->{v}")
        _same(dict(a.graph), dict(b.graph), f"{where} graph")
    elif isinstance(a, HardwareSpec):
        assert a.resolved() == b.resolved(), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif dataclasses.is_dataclass(a) or hasattr(a, "__dict__"):
        _same(dict(vars(a)), dict(vars(b)), f"{where}.{type(a).__name__}")
    else:
        assert a == b, where


def test_rerun_reads_the_mapping_and_the_timing_plan_from_the_cache(
        digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun neither maps nor plans (issue 20 item 4): the mapping and the timing plan
    come from the artifact cache, from its in-memory layer or from disk (as a new process
    reads them), each time fresh objects that hold this run's hardware spec and graph.
    The graph it hands on is annotated as map_network annotates it, the mapping and the
    plan are those a run without the cache computes, and so are the figures."""
    import simulator.runner.flow as flow
    import simulator.runner.simulate as simulate
    from simulator.results.write import write_results
    from simulator.runner.cache import ArtifactCache, clear_memory
    from simulator.runner.cache_usage import usage
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(digits)
    root = tmp_path / "cache"
    flow.run(sc, cache=ArtifactCache(root))
    assert {"mapping", "timing_plan"} <= set(usage(root))  # `redysim cache info` lists them
    plain = flow.run(sc)  # no cache: mapped and planned here
    expected = write_results(plain, tmp_path / "plain", plots=False)
    # a plan as the run makes it (its simulations then fill a memo of its node plans)
    expected_plan = simulate.prepare_timing(plain.workload.traced.graph, plain.mapping,
                                            plain.hardware)

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(flow, "map_network", refuse)
    monkeypatch.setattr(simulate, "prepare_timing", refuse)
    for from_disk in (False, True):
        if from_disk:
            clear_memory()
        cache = ArtifactCache(root)
        again = flow.run(sc, cache=cache)
        assert cache.misses == {}
        assert cache.hits["mapping"] == cache.hits["timing_plan"] == 1
        m, hw = again.mapping, again.hardware
        assert m.graph is again.workload.traced.graph and m.hw is hw
        _same(again.workload.traced.graph, plain.workload.traced.graph, "graph")
        _same(m, plain.mapping, "mapping")
        plan = flow.timing_plan_step(sc, again.workload, m, hw, cache)  # read once more
        assert plan.topo.hw is hw
        for lane in (la for p in plan.plans.values() for la in p.lanes):
            assert lane.positions is m.layers[lane.layer].replica_positions[lane.replica]
        _same(plan, expected_plan, "plan")
        got = write_results(again, tmp_path / f"again{from_disk}", plots=False)
        assert _no_times(got) == _no_times(expected)
