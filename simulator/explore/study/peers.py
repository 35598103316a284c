"""The study's independent check: other simulators' figures for the configuration we model.

A peers file (YAML, e.g. ``configs/studies/peers/peers.yaml``) names a CSV of what other
tools reported when run on the common ISAAC-like configuration (``tool``, ``run``,
``network``, ``adc_conversions``, ``energy_per_image_mJ``, ``energy_by_component_uJ`` as
``name=value;...``, ``note``; the CSV's README gives its sources), the runs to compare
with, our scenario of the same network and the hardware changes that make our chip the
tools' configuration, and which of their components correspond to which of ours.

:func:`peers_check` runs our pipeline on that network (analytic fidelity, one image: the
counts and energies are those of every fidelity) and gathers, beside the tools' rows, our
ADC conversions, crossbars and energy by component per image, and the same network's ADC
conversions and crossbars under the two other ways of packing rows and columns that the
tools use (closed forms over our mapping's layers):

* ``linear`` rows: ``ceil(L / R)`` row blocks of a layer's ``L = kh·kw·C_in`` im2col rows
  (ours are kernel-aligned: whole input channels per crossbar, ``R // (kh·kw)`` of them);
* ``whole-crossbar columns``: every crossbar of our mapping converts all its columns, also
  the unused ones of a layer's last column block.

Conversions per image = Σ over row blocks of the columns converted × output positions ×
the activation bits (static: every group streams all of them).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from simulator.core.config_io import ConfigError, StrictModel, load_yaml, validate

#: CSV columns a baseline row must have
COLUMNS = ("tool", "version", "run", "network", "input", "configuration", "adc_conversions",
           "crossbars", "energy_per_image_mJ", "energy_by_component_uJ", "latency_ms", "note")


class PeersSpec(StrictModel):
    """A peers file (see the module docstring); paths relative to it."""

    baselines: str = Field(description="CSV of the tools' figures")
    scenario: str = Field(description="our scenario of the network the tools ran")
    pipeline: str = Field("static", description="our pipeline set against the tools'")
    hardware_changes: dict[str, Any] = Field(
        default_factory=dict, description="dotted hardware keys that make our chip the tools' "
                                          "configuration")
    runs: list[str] = Field(min_length=1, description="the CSV's runs to compare with")
    components: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="our component group -> tool -> its components")
    breakdowns: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="tool -> a component -> the components it is the "
                                          "sum of (reported beside it, not compared again)")
    causes: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="our component group -> tool -> what the difference "
                                          "comes from, where the tool's note or documentation "
                                          "says")


@dataclass(frozen=True)
class Peers:
    """A validated peers file and the baseline rows it compares with."""

    spec: PeersSpec
    source: Path
    rows: list[dict[str, Any]]

    def path(self, rel: str) -> Path:
        """A path of the peers file, resolved against its folder."""
        p = Path(rel)
        return p if p.is_absolute() else (self.source.parent / p).resolve()


def _number(text: str, where: str, cast: type = float, optional: bool = False) -> Any:
    text = text.strip()
    if not text and optional:
        return None
    try:
        return cast(text)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {text!r}") from None


def read_baselines(path: Path) -> list[dict[str, Any]]:
    """The CSV's rows, numbers parsed (``energy_by_component_uJ`` into a dict)."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} "
                                  f"(expected {', '.join(COLUMNS)})")
            raw = list(reader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    rows = []
    for i, r in enumerate(raw, start=2):
        where = f"{path}: line {i} (run {r['run']!r})"
        comps = {}
        for part in filter(None, (p.strip() for p in r["energy_by_component_uJ"].split(";"))):
            name, eq, val = part.partition("=")
            if not eq:
                raise ConfigError(f"{where}: energy_by_component_uJ: expected name=value, "
                                  f"got {part!r}")
            comps[name.strip()] = _number(val, f"{where}: energy_by_component_uJ.{name}")
        rows.append({**r,
                     "adc_conversions": _number(r["adc_conversions"], f"{where}: adc_conversions",
                                                int),
                     "crossbars": _number(r["crossbars"], f"{where}: crossbars", int, True),
                     "energy_per_image_mJ": _number(r["energy_per_image_mJ"],
                                                    f"{where}: energy_per_image_mJ"),
                     "energy_by_component_uJ": comps,
                     "latency_ms": _number(r["latency_ms"], f"{where}: latency_ms",
                                           float, True)})
    return rows


def load_peers(path: str | Path) -> Peers:
    """Validate a peers file, its CSV and the runs and components it names."""
    src = Path(path)
    spec = validate(PeersSpec, load_yaml(src), str(src))
    peers = Peers(spec, src.resolve(), [])
    for key in ("baselines", "scenario"):
        if not peers.path(getattr(spec, key)).is_file():
            raise ConfigError(f"{src}: {key}: file not found: {peers.path(getattr(spec, key))}")
    by_run = {r["run"]: r for r in read_baselines(peers.path(spec.baselines))}
    rows = []
    for run in spec.runs:
        if run not in by_run:
            raise ConfigError(f"{src}: runs: no run {run!r} in {spec.baselines} "
                              f"(runs: {', '.join(by_run)})")
        rows.append(by_run[run])
    tools = {r["tool"]: r for r in rows}
    for ours, theirs in spec.components.items():
        for tool, names in theirs.items():
            if tool not in tools:
                raise ConfigError(f"{src}: components.{ours}.{tool}: no compared run of that "
                                  f"tool (tools: {', '.join(tools)})")
            unknown = [n for n in names if n not in tools[tool]["energy_by_component_uJ"]]
            if unknown:
                raise ConfigError(f"{src}: components.{ours}.{tool}: {tool} reports no "
                                  f"{', '.join(unknown)}")
    for tool, parts in spec.breakdowns.items():
        if tool not in tools:
            raise ConfigError(f"{src}: breakdowns.{tool}: no compared run of that tool")
        known = tools[tool]["energy_by_component_uJ"]
        for whole, names in parts.items():
            unknown = [n for n in (whole, *names) if n not in known]
            if unknown:
                raise ConfigError(f"{src}: breakdowns.{tool}.{whole}: {tool} reports no "
                                  f"{', '.join(unknown)}")
    for ours, theirs in spec.causes.items():
        for tool in theirs:
            if tool not in spec.components.get(ours, {}):
                raise ConfigError(f"{src}: causes.{ours}.{tool}: components.{ours} maps no "
                                  f"component of {tool}")
    return Peers(spec, src.resolve(), rows)


def packings(mapping: Any, hw: Any) -> dict[str, dict[str, int]]:
    """ADC conversions and crossbars per image of the static pipeline (every group streams
    all activation bits) as mapped and under the two other packings (module docstring)."""
    from mapping.partition import col_layout

    bits, r, k_cols = int(hw.activations.bits), int(hw.crossbar.rows), int(hw.crossbar.cols)
    out = {"as mapped": [0, 0], "linear rows": [0, 0], "whole-crossbar columns": [0, 0]}
    for lm in mapping.layers.values():
        p = lm.positions * bits
        for rb in lm.row_blocks:
            out["as mapped"][0] += sum(rb.crossbar_cols) * p
            out["as mapped"][1] += rb.n_crossbars
            out["whole-crossbar columns"][0] += rb.n_crossbars * k_cols * p
            out["whole-crossbar columns"][1] += rb.n_crossbars
        cols = col_layout(lm.cols, hw)
        blocks = lm.groups * math.ceil(lm.rows / r)
        out["linear rows"][0] += blocks * sum(cols) * p
        out["linear rows"][1] += blocks * len(cols)
    return {k: {"adc_conversions": v[0], "crossbars": v[1]} for k, v in out.items()}


def peers_check(peers: Peers) -> dict[str, Any]:
    """Run our pipeline on the tools' network and gather everything the page compares."""
    from simulator.explore.study.rows import pipeline_row
    from simulator.hardware.spec import load_hardware
    from simulator.results.write import build_summary
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    spec = peers.spec
    # one image at analytic fidelity: counts and energies per image are every fidelity's
    sc = load_scenario(peers.path(spec.scenario), {
        "simulation.fidelity": "analytic", "simulation.images": 1,
        "simulation.warmup_images": 0, "simulation.workers": 1, "workload.eval_images": 1})
    if spec.pipeline not in sc.pipelines:
        raise ConfigError(f"{peers.source}: pipeline: {spec.scenario} has no pipeline "
                          f"{spec.pipeline!r} (pipelines: {', '.join(sc.pipelines)})")
    sc.pipelines = {spec.pipeline: sc.pipelines[spec.pipeline]}
    try:
        hw = load_hardware(sc.resolve(sc.hardware)).with_changes(dict(spec.hardware_changes))
    except ConfigError as exc:
        raise ConfigError(f"{peers.source}: hardware_changes: {exc}") from None
    rr = run(sc, hardware=hw)
    summ = build_summary(rr)
    row = pipeline_row(summ["pipelines"][spec.pipeline])
    return {"file": str(peers.source), "baselines": spec.baselines, "runs": peers.rows,
            "components": spec.components, "breakdowns": spec.breakdowns,
            "causes": spec.causes, "hardware_changes": spec.hardware_changes,
            "ours": {"network": summ["workload"], "scenario": str(peers.path(spec.scenario)),
                     "input_shape": summ["workload_info"].get("input_shape"),
                     "weights": summ["workload_info"].get("weights"),
                     "hardware": hw.name, "pipeline": spec.pipeline,
                     "activation_bits": int(hw.activations.bits),
                     "energy_pj": row["energy_pj"], "components_pj": row["components_pj"],
                     "counts": row["counts"], "crossbars_used": rr.mapping.crossbars_used,
                     "packings": packings(rr.mapping, hw)}}
