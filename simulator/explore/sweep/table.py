"""The table of a sweep: one row per point and pipeline, ``sweep.csv`` and ``sweep.parquet``.

Columns: ``point``, ``status``, ``error``, one column per axis (its label), ``pipeline``,
then every scalar figure of the pipeline's block of ``summary.json`` flattened with dots
(``latency_ns``, ``energy_pj.total``, ``energy_pj.by_component.adc``, ``counts.*``,
``events.*``, ``mean_bits_per_group``, ``accuracy``, ...; the per-layer breakdowns stay in
the point's folder), the point's ``comparison.*`` ratios, ``mapping.*``, the hardware
figures of ``point.json`` (``hw.*``) and ``wall_s.*``. A failed point has one row with
its error. Rows are built from the points' folders, so a resumed sweep's table holds the
points of earlier runs too.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from simulator.core import faults
from simulator.core.fsmode import mkstemp
from simulator.explore.sweep.spec import POINT_JSON, POINTS_DIR, SweepPlan

#: Per-pipeline summary keys left out of the table (per layer: in the point's folder).
SKIP_KEYS = ("energy_pj.by_layer", "precision")


def _flatten(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if key in SKIP_KEYS:
                continue
            _flatten(v, key, out)
    elif isinstance(obj, list | tuple):
        return
    else:
        out[prefix] = obj


def table_rows(plan: SweepPlan, out: Path) -> list[dict[str, Any]]:
    """Rows of the sweep table from the points' folders (points not run yet: no row)."""
    rows: list[dict[str, Any]] = []
    for p in plan.points:
        folder = out / POINTS_DIR / p.id
        try:
            info = json.loads((folder / POINT_JSON).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("hash") != p.hash:
            continue
        base: dict[str, Any] = {"point": p.id, "status": info.get("status"),
                                "error": info.get("error", "")}
        base.update(p.axes)
        if info.get("status") != "ok":
            rows.append({**base, "pipeline": ""})
            continue
        summary = json.loads((folder / "summary.json").read_text())
        extra: dict[str, Any] = {}
        _flatten(summary.get("comparison", {}), "comparison", extra)
        _flatten(summary.get("mapping", {}), "mapping", extra)
        _flatten(info.get("hardware", {}), "hw", extra)
        extra["hw.warnings"] = len(info.get("hardware", {}).get("warnings", []))
        extra["float_accuracy"] = summary.get("float_accuracy")
        _flatten(info.get("wall_s", {}), "wall_s", extra)
        extra["wall_s.point"] = info.get("point_s")
        for pname, pipe in summary.get("pipelines", {}).items():
            row = {**base, "pipeline": pname}
            _flatten(pipe, "", row)
            row.update(extra)
            rows.append(row)
    return rows


def _column_type(values: list[Any]) -> str:
    vals = [v for v in values if v is not None and v != ""]
    if vals and all(isinstance(v, bool) for v in vals):
        return "bool"
    if vals and all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return "int"
    if vals and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return "float"
    return "str"


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    seen: set[str] = set()
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    return cols


def _atomic(path: Path, write: Any) -> None:
    """Write *path* through a temporary file beside it (mode: 0666 less the umask)."""
    fd, tmp = mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(plan: SweepPlan, out: Path, plots: bool = True) -> list[Path]:
    """Write sweep.csv, sweep.parquet and (*plots*) the plots; returns the files written.
    Each file is written to a temporary file and renamed: an interrupt leaves the old
    file or the new one, never half of one."""
    rows = table_rows(plan, out)
    cols = _columns(rows) or ["point", "status", "error", "pipeline"]
    files: list[Path] = []

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({c: r.get(c, "") for c in cols})
        faults.checkpoint("sweep-table", tmp)

    _atomic(out / "sweep.csv", write_csv)
    files.append(out / "sweep.csv")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with the dist extra
        pq = None
    if pq is not None:
        arrays = {}
        for c in cols:
            vals = [r.get(c) for r in rows]
            kind = _column_type(vals)
            if kind == "str":
                vals = [None if v is None else (v if isinstance(v, str) else json.dumps(v))
                        for v in vals]
                arrays[c] = pa.array(vals, type=pa.string())
            elif kind == "float":
                arrays[c] = pa.array([None if v in (None, "") else float(v) for v in vals],
                                     type=pa.float64())
            elif kind == "int":
                arrays[c] = pa.array([None if v in (None, "") else int(v) for v in vals],
                                     type=pa.int64())
            else:
                arrays[c] = pa.array([None if v in (None, "") else bool(v) for v in vals],
                                     type=pa.bool_())
        _atomic(out / "sweep.parquet", lambda tmp: pq.write_table(pa.table(arrays), tmp))
        files.append(out / "sweep.parquet")
    if plots and any(r.get("status") == "ok" for r in rows):
        from simulator.explore.sweep.plots import draw_sweep_plots

        files += draw_sweep_plots(rows, plan, out)
    return files
