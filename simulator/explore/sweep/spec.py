"""Sweep files: a base scenario plus axes, expanded into validated points.

::

    name: adc-sharing
    scenario: ../scenarios/quickstart.yaml   # base scenario, relative to this file
    set:                                     # optional: changes applied to every point
      simulation.images: 1
    axes:
      - key: hardware.ima.crossbars_per_adc  # one key, a list of values
        values: [1, 2, 4]
      - name: crossbar                       # a zip: several keys move together
        zip:
          hardware.crossbar.rows: [128, 256]
          hardware.crossbar.cols: [128, 256]

Keys are dotted paths. ``hardware.<path>`` changes the scenario's hardware spec (with
:meth:`HardwareSpec.with_changes`: derived counts follow); any other key replaces that key
of the scenario (``pipelines``, ``workload.model``, ``simulation.fidelity``, ``hardware``
for another hardware file, ...). The points are the cartesian product of the axes.

:func:`plan_sweep` validates every axis value on its own (errors name the axis and the
key) and then every point (errors name the point and its changes), before any work
starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from simulator.core.config_io import ConfigError, StrictModel, load_yaml, path_is_file, validate

#: the layout of a sweep's results folder: one folder per point under POINTS_DIR, each
#: with its POINT_JSON; SWEEP_JSON records the sweep
POINTS_DIR = "points"
SWEEP_JSON = "sweep.json"
POINT_JSON = "point.json"

HW_PREFIX = "hardware."


class Axis(StrictModel):
    """One axis: ``key`` + ``values``, or ``zip`` (several keys, equally long lists)."""

    name: str | None = Field(None, description="label of the axis (default: the last key part)")
    key: str | None = None
    values: list[Any] | None = None
    zip: dict[str, list[Any]] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Axis:
        if self.zip is None:
            if self.key is None or self.values is None:
                raise ValueError("an axis needs key and values, or zip")
            if not self.values:
                raise ValueError("values: at least one value is required")
        else:
            if self.key is not None or self.values is not None:
                raise ValueError("an axis has either key and values, or zip, not both")
            lengths = {k: len(v) for k, v in self.zip.items()}
            if not lengths:
                raise ValueError("zip: at least one key is required")
            if len(set(lengths.values())) != 1 or 0 in lengths.values():
                raise ValueError(f"zip: the lists must be equally long and not empty "
                                 f"(got lengths {lengths})")
        seen: dict[str, int] = {}
        for i, setting in enumerate(self.settings()):
            canon = json.dumps(setting, sort_keys=True, default=str)
            if canon in seen:
                shown = (repr(next(iter(setting.values()))) if self.zip is None else
                         ", ".join(f"{k}={v!r}" for k, v in setting.items()))
                where = "values" if self.zip is None else "zip"
                raise ValueError(f"{where}: {shown} is given twice (positions {seen[canon]} "
                                 f"and {i}); each value makes one point: remove the copy")
            seen[canon] = i
        return self

    @property
    def keys(self) -> list[str]:
        """The key paths this axis sets."""
        return list(self.zip) if self.zip is not None else [str(self.key)]

    @property
    def label(self) -> str:
        """Name of the axis in point ids, tables and plots."""
        if self.name:
            return self.name
        return "+".join(k.split(".")[-1] for k in self.keys)

    def settings(self) -> list[dict[str, Any]]:
        """One ``{key: value}`` mapping per position along the axis."""
        if self.zip is None:
            return [{str(self.key): v} for v in self.values or []]
        n = len(next(iter(self.zip.values())))
        return [{k: vals[i] for k, vals in self.zip.items()} for i in range(n)]


class SweepSpec(StrictModel):
    """A sweep file (see the module docstring)."""

    name: str
    scenario: str = Field(description="base scenario YAML, relative to the sweep file")
    set: dict[str, Any] = Field(default_factory=dict,
                                description="key path -> value applied to every point")
    axes: list[Axis] = Field(min_length=1)
    baseline: str = Field("static", description="pipeline the savings are measured against")

    @model_validator(mode="after")
    def _distinct_labels(self) -> SweepSpec:
        labels = [a.label for a in self.axes]
        dup = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dup:
            raise ValueError(f"two axes are labelled {', '.join(dup)}; give them a name:")
        reserved = {"point", "status", "error", "pipeline"} & set(labels)
        if reserved:
            raise ValueError(f"axis label {', '.join(sorted(reserved))} is a column of the "
                             "table; give the axis another name:")
        return self


@dataclass
class Point:
    """One point of a sweep: its id, axis values and the changes that build it."""

    id: str
    axes: dict[str, Any]
    """axis label -> value (a zip axis: the tuple of its values)."""
    changes: dict[str, Any]
    """key path -> value (``set`` and every axis)."""
    scenario_changes: dict[str, Any] = field(default_factory=dict)
    hardware_changes: dict[str, Any] = field(default_factory=dict)
    hash: str = ""
    """Digest of the point's validated scenario and hardware (resume key)."""


@dataclass
class SweepPlan:
    """A validated sweep: the spec, the base scenario path and every point."""

    spec: SweepSpec
    source: Path
    scenario_path: Path
    points: list[Point]


def split_changes(changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scenario changes, hardware changes) of a point's key paths."""
    scen = {k: v for k, v in changes.items() if not k.startswith(HW_PREFIX)}
    hw = {k[len(HW_PREFIX):]: v for k, v in changes.items() if k.startswith(HW_PREFIX)}
    return scen, hw


def build_point(scenario_path: Path, scenario_changes: dict[str, Any],
                hardware_changes: dict[str, Any]) -> tuple[Any, Any]:
    """(Scenario, HardwareSpec) of one point, validated (raises ConfigError)."""
    from simulator.hardware.spec import load_hardware
    from simulator.runner.flow import load_scenario_hardware
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(scenario_path, scenario_changes)
    hw_path = sc.resolve(sc.hardware)
    hw = load_hardware(hw_path)
    if hardware_changes:
        hw = hw.with_changes(hardware_changes, source=f"{hw_path} (sweep changes)")
    return sc, load_scenario_hardware(sc, hw)


def point_hash(sc: Any, hw: Any) -> str:
    """Digest of everything a point's results depend on (resume key): the scenario, the
    hardware, the workload and the source of the whole simulator (a point finished by
    other code is run again)."""
    from simulator.runner.cache import source_version, workload_key

    blob = json.dumps({"scenario": sc.model_dump(mode="json"),
                       "hardware": hw.model_dump(mode="json"),
                       "workload": workload_key(sc), "code": source_version()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _fmt(value: Any) -> str:
    if isinstance(value, dict | list | tuple) and not value:
        return "none"
    if isinstance(value, dict):
        return "+".join(str(k) for k in value)
    if isinstance(value, list | tuple):
        return "x".join(_fmt(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def axis_value(axis: Axis, setting: dict[str, Any]) -> Any:
    """The value an axis shows in tables: its value, or a zip's values joined by 'x'."""
    if len(setting) == 1:
        (v,) = setting.values()
        return _fmt(v) if isinstance(v, dict | list) else v
    return "x".join(_fmt(v) for v in setting.values())


def _slug(parts: list[tuple[str, Any]]) -> str:
    text = ",".join(f"{label}={_fmt(v)}" for label, v in parts)
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)[:150]


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path]:
    """Validate a sweep file; returns the spec and the base scenario's path."""
    p = Path(path)
    spec = validate(SweepSpec, load_yaml(p), str(p))
    scen = Path(spec.scenario)
    scen = scen if scen.is_absolute() else p.parent / scen
    if not path_is_file(scen, f"{p}: scenario"):
        raise ConfigError(f"{p}: scenario: file not found: {scen}")
    return spec, scen


def plan_sweep(path: str | Path) -> SweepPlan:
    """Validate a sweep file, each axis value and each point; nothing runs."""
    spec, scen_path = load_sweep(path)
    src = Path(path)

    def check(where: str, changes: dict[str, Any]) -> tuple[Any, Any]:
        sc_ch, hw_ch = split_changes(changes)
        try:
            return build_point(scen_path, sc_ch, hw_ch)
        except ConfigError as exc:
            raise ConfigError(f"{src}: {where}: {exc}") from None

    check("set", dict(spec.set))
    for i, axis in enumerate(spec.axes):
        for setting in axis.settings():
            keys = ", ".join(f"{k}={v!r}" for k, v in setting.items())
            check(f"axes[{i}] ({keys})", {**spec.set, **setting})
    points: list[Point] = []
    seen: dict[str, int] = {}
    by_hash: dict[str, str] = {}
    for combo in itertools.product(*(a.settings() for a in spec.axes)):
        changes = dict(spec.set)
        labels: list[tuple[str, Any]] = []
        axes_vals: dict[str, Any] = {}
        for axis, setting in zip(spec.axes, combo, strict=True):
            changes.update(setting)
            val = axis_value(axis, setting)
            labels.append((axis.label, val))
            axes_vals[axis.label] = val
        pid = _slug(labels)
        if pid in seen:
            seen[pid] += 1
            pid = f"{pid}-{seen[pid]}"
        else:
            seen[pid] = 1
        sc, hw = check(f"point {pid}", changes)
        sc_ch, hw_ch = split_changes(changes)
        h = point_hash(sc, hw)
        if h in by_hash:
            other = next(p for p in points if p.hash == h)

            def shown(ch: dict[str, Any]) -> str:
                return ", ".join(f"{k}={v!r}" for k, v in ch.items() if k not in spec.set)

            raise ConfigError(f"{src}: points ({shown(other.changes)}) and ({shown(changes)}) "
                              "are the same point once validated (the same scenario and "
                              "hardware); each point must differ: remove one of the values")
        by_hash[h] = pid
        points.append(Point(pid, axes_vals, changes, sc_ch, hw_ch, h))
    return SweepPlan(spec, src, scen_path, points)
