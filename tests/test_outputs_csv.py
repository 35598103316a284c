"""Every CSV of a results folder reads back with pandas: each row has the header's width,
and the per-layer energies of layers.csv add up to summary.json's totals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from simulator.results.write import (
    build_summary,
    json_default,
    write_layers_csv,
    write_tiles_csv,
    write_timeline_csv,
)
from simulator.runner.flow import run
from simulator.runner.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
CSVS = ("layers.csv", "timeline.csv", "tiles.csv")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CSVs and summary.json that ``redysim run`` writes (write_results also draws the
    plots, which are not under test here)."""
    sc = load_scenario(ROOT / "configs" / "scenarios" / "digits.yaml")
    sc.workload.accuracy_images = 16
    sc.simulation.images = 2
    rr = run(sc)
    out = tmp_path_factory.mktemp("csv")
    (out / "summary.json").write_text(json.dumps(build_summary(rr), default=json_default))
    write_layers_csv(rr, out / "layers.csv")
    write_timeline_csv(rr, out / "timeline.csv", sc.simulation.time_bins)
    write_tiles_csv(rr, out / "tiles.csv")
    return out


@pytest.mark.parametrize("name", CSVS)
def test_rows_have_the_header_width(results: Path, name: str) -> None:
    with (results / name).open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert len(set(header)) == len(header)
    assert all(len(r) == len(header) for r in rows[1:]), name
    df = pd.read_csv(results / name)
    assert list(df.columns) == header and len(df) == len(rows) - 1
    assert df.columns[0] == "pipeline" and set(df["pipeline"]) == {"static", "msb-trim", "redy"}


def test_layer_energies_sum_to_the_summary(results: Path) -> None:
    df = pd.read_csv(results / "layers.csv")
    s = json.loads((results / "summary.json").read_text())
    comps = [c for c in df.columns if c.startswith("energy_pj:")]
    for pipe, p in s["pipelines"].items():
        rows = df[df["pipeline"] == pipe]
        # layers.csv rounds to 1e-3 pJ per cell
        assert rows["energy_pj"].sum() == pytest.approx(p["energy_pj"]["dynamic"], abs=1.0)
        assert rows[comps].sum(axis=1).to_numpy() == pytest.approx(
            rows["energy_pj"].to_numpy(), abs=0.1)
        # precision statistics are in their own named columns
        weights = rows[rows["kind"].isin(["conv", "linear"])]
        assert weights["zero_group_fraction"].between(0, 1).all()
        assert weights["rel_rms_error"].ge(0).all()
        hist = weights["hist"].str.split("|").map(lambda h: sum(int(x) for x in h))
        assert (hist > 0).all()
