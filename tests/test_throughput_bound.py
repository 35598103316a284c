"""The measured throughput never exceeds its bound, on every shipped scenario.

For every configs/scenarios/*.yaml: the scenario's network on its hardware, mapped with
its options, streamed in ``group`` fidelity with the scenario's number of images, once
with every group at B planes (static) and, on the small networks, once with random planes
per group (a dynamic policy's work differs per image, the case where a window of
completions alone can read high). Wherever there is a steady-state window, the
measurement must not exceed the bound over the same images, and ``throughput_ips`` is
never a transient: it is the measurement or, without a window, the bound.

Fast enough for the suite: the planes are synthetic (no activation capture), a network is
simulated once for the scenarios that share it (quickstart and resnet18-imagenet: the same
ResNet-18, chip and mapping), ResNet-18 only with static planes (its images do not differ
in work then), and vgg16 / densenet121 stream a single image (no window: the bound), which
is checked from their files.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from mapping.mapper import MappingOptions, map_network
from simulator.hardware.spec import load_hardware
from simulator.runner.scenario import load_scenario
from simulator.runner.simulate import PipelineResult, simulate_pipeline
from workloads.graph import trace_model
from workloads.models import build_model

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "configs" / "scenarios").glob("*.yaml"))


@cache
def _mapped(model: str, input_size: int, hw_path: str, mapping_json: str):
    """Hardware and mapping of a scenario's network (seeded weights: the same graph)."""
    hw = load_hardware(hw_path)
    module, shape = build_model(model, input_size=input_size)
    tw = trace_model(module, shape, model)
    m = map_network(tw.graph, hw, MappingOptions.model_validate_json(mapping_json))
    return hw, m


@cache
def _runs(path: Path) -> tuple[int, list[PipelineResult]]:
    sc = load_scenario(path)
    images = sc.simulation.images
    if images < 2:
        return images, []
    hw, m = _mapped(sc.workload.model, sc.workload.input_size,
                    str(sc.resolve(sc.hardware)), sc.mapping.model_dump_json())
    out = []
    rng = np.random.default_rng(0)
    small = m.crossbars_used < 10_000
    for policy in ("static", "redy") if small else ("static",):
        planes = {n: (np.full((images, len(lm.row_blocks), lm.positions), 8, dtype=np.uint8)
                      if policy == "static" else
                      rng.integers(0, 9, (images, len(lm.row_blocks), lm.positions),
                                   dtype=np.uint8))
                  for n, lm in m.layers.items()}
        out.append(simulate_pipeline(m.graph, m, hw, planes, policy, policy, "group", images,
                                     warmup=sc.simulation.warmup_images))
    return images, out


def _key(path: Path) -> Path:
    """resnet18-imagenet maps the same ResNet-18 as the quick start: simulate it once."""
    return path.with_name("quickstart.yaml") if path.stem == "resnet18-imagenet" else path


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_measured_never_exceeds_the_bound(path: Path) -> None:
    images, runs = _runs(_key(path))
    if images < 2:
        # one image: no window, the headline is the bound (checked on digits below)
        assert path.stem in ("vgg16", "densenet121")
        return
    for pr in runs:
        if pr.throughput_measured_ips is not None:
            assert pr.throughput_measured_ips <= pr.throughput_bound_ips * (1 + 1e-9), (
                path.stem, pr.policy, pr.throughput_basis)
            assert pr.throughput_ips == pr.throughput_measured_ips
            assert pr.throughput_basis.startswith("measured in steady state")
        else:
            assert pr.throughput_ips == pr.throughput_bound_ips
            assert pr.throughput_basis.startswith("bound")
    # the shipped scenarios stream enough images for a window with the static planes
    assert runs[0].throughput_measured_ips is not None, runs[0].throughput_basis


def test_one_image_reports_the_bound() -> None:
    """A single image: no steady state; throughput_ips is the bound, labelled."""
    sc = load_scenario(ROOT / "configs" / "scenarios" / "digits.yaml")
    hw, m = _mapped(sc.workload.model, sc.workload.input_size,
                    str(sc.resolve(sc.hardware)), sc.mapping.model_dump_json())
    planes = {n: np.full((1, len(lm.row_blocks), lm.positions), 8, dtype=np.uint8)
              for n, lm in m.layers.items()}
    pr = simulate_pipeline(m.graph, m, hw, planes, "static", "static", "group", 1)
    assert pr.throughput_measured_ips is None
    assert pr.throughput_ips == pr.throughput_bound_ips
    assert pr.throughput_basis.startswith("bound: 1 / the busiest unit's work per image")


def test_summary_labels_throughput_and_compares_like_with_like() -> None:
    """summary.json says what throughput_ips is; the ReDy/static throughput ratio never
    divides a measurement by a bound (issue 19, item 5)."""
    from simulator.results.write import compare

    def pipe(ips: float, bound: float, measured: bool) -> dict:
        return {"throughput_ips": ips, "throughput_bound_ips": bound,
                "throughput_measured_ips": ips if measured else None,
                "throughput_is": "measured" if measured else "bound",
                "latency_ns": 1.0, "energy_pj": {"per_image": 1.0, "total": 1.0, "dynamic": 1.0,
                                                 "per_image_steady_state": 1.0},
                "counts": {"adc_conversions": 1, "crossbar_reads": 1},
                "mean_bits_per_group": 1.0}

    both = compare(pipe(100.0, 120.0, True), pipe(110.0, 130.0, True))
    assert both["throughput_ratio_of"] == "measured"
    assert both["throughput_ratio"] == pytest.approx(1.1)
    mixed = compare(pipe(100.0, 120.0, True), pipe(130.0, 130.0, False))
    assert mixed["throughput_ratio_of"] == "bound"
    assert mixed["throughput_ratio"] == pytest.approx(130 / 120)
