"""The ``redysim`` command line, run in-process on the small digits scenario."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from simulator.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILES = ("summary.json", "layers.csv", "timeline.csv", "tiles.csv", "report.html")
COUNT_KEYS = {"groups", "bit_planes", "crossbar_reads", "adc_conversions", "dac_drives"}


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the digits scenario: 2 images, hardware given by absolute path."""
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["simulation"]["images"] = 2
    data["workload"]["accuracy_images"] = 32  # a short precision pass keeps the test quick
    p = tmp_path_factory.mktemp("scenario") / "digits2.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.fixture(scope="module")
def first_run(scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "results"
    old = os.umask(0o022)  # the usual umask: results readable by others (issue 19 item 3)
    try:
        assert main(["run", str(scenario_file), "-o", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    return out


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_writes_results(first_run: Path) -> None:
    for name in RESULT_FILES:
        assert (first_run / name).is_file(), name
        assert (first_run / name).stat().st_size > 0, name
    header = (first_run / "layers.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["pipeline", "layer", "kind", "crossbars"]
    timeline = (first_run / "timeline.csv").read_text().splitlines()
    assert timeline[0].startswith("pipeline,t_ns,bin_ns,util:crossbar") and len(timeline) > 3


def test_results_follow_the_umask(first_run: Path) -> None:
    """Under umask 0022 the folder is 0755 and every file 0644, as mkdir and open give
    (the staging folder came from mkdtemp, 0700, whatever the umask)."""
    assert first_run.stat().st_mode & 0o777 == 0o755
    modes = {p.name: p.stat().st_mode & 0o777 for p in first_run.iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_summary_schema(first_run: Path) -> None:
    s = json.loads((first_run / "summary.json").read_text())
    assert {"scenario", "hardware", "workload", "pipelines", "comparison"} <= set(s)
    assert (s["scenario"], s["hardware"], s["workload"]) == ("digits", "isaac8", "digits")
    assert {"static", "redy"} <= set(s["pipelines"])
    for p in s["pipelines"].values():
        assert {"latency_ns", "throughput_ips", "energy_pj", "counts",
                "mean_bits_per_group"} <= set(p)
        assert {"total", "by_component", "by_layer"} <= set(p["energy_pj"])
        assert COUNT_KEYS <= set(p["counts"])
        assert p["images"] == 2 and p["latency_ns"] > 0 and p["throughput_ips"] > 0
        assert p["energy_pj"]["by_component"]["adc"] > 0
        assert {"conv1", "conv2", "conv3", "fc"} <= set(p["energy_pj"]["by_layer"])
    comp = s["comparison"]
    assert {"energy_ratio", "latency_ratio", "adc_conversion_ratio"} <= set(comp)
    assert 0 < comp["energy_ratio"] < 1 and 0 < comp["adc_conversion_ratio"] < 1


def test_refuses_non_empty_folder(first_run: Path, scenario_file: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(first_run)
    capsys.readouterr()
    assert main(["run", str(scenario_file), "-o", str(first_run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(first_run) in err and "--force" in err and "Traceback" not in err
    assert _snapshot(first_run) == before


def test_force_and_json(scenario_file: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    # --force only replaces a folder that looks like redysim results
    rc = main(["run", str(scenario_file), "-o", str(out), "--force", "--images", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "summary.json" in err and str(out) in err
    assert (out / "stale.txt").read_text() == "old"
    (out / "summary.json").write_text("{}")
    capsys.readouterr()
    rc = main(["run", str(scenario_file), "-o", str(out), "--force", "--json", "--images", "1"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert not (out / "stale.txt").exists()
    written = json.loads((out / "summary.json").read_text())
    assert printed == written
    assert printed["pipelines"]["static"]["images"] == 1


def test_missing_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_scenario.yaml"
    assert main(["run", str(missing), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "not found" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_images_option(scenario_file: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(scenario_file), "-o", str(tmp_path / "o"), "--images", "0"]) == 2
    assert "--images" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_hw_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", str(ROOT / "configs" / "hardware" / "isaac.yaml"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["tile"]["power_mw"] == pytest.approx(330, abs=1.0)
    assert rep["tile"]["area_mm2"] == pytest.approx(0.372, abs=0.002)


def test_map_json(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", str(scenario_file), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert set(m) == {"layers", "totals", "noc"}
    # the NoC traffic of one image (the simulator's packets): the digits CNN's activations
    # cross tiles (its layers sit on 5 tiles), and the worst port or link is named
    noc = m["noc"]
    assert noc["placement"] == "bands" and noc["bytes_per_image"]["activations"] > 0
    assert noc["worst_link"]["busy_ns_per_image"] > 0
    assert noc["worst_link"]["bound_ips"] == pytest.approx(
        1e9 / noc["worst_link"]["busy_ns_per_image"])
    assert [la["name"] for la in m["layers"]] == ["conv1", "conv2", "conv3", "fc"]
    for la in m["layers"]:
        assert {"name", "kind", "rows", "cols", "row_blocks", "col_blocks", "crossbars",
                "replicas", "tiles", "chip", "utilization"} <= set(la)
    t = m["totals"]
    assert {"crossbars_used", "crossbars_available", "tiles_used", "chips"} <= set(t)
    assert t["crossbars_used"] == sum(la["crossbars"] * la["replicas"] for la in m["layers"])
    assert 0 < t["crossbars_used"] <= t["crossbars_available"] and t["chips"] == 1


def test_a_whole_run_prints_no_traceback(scenario_file: Path, tmp_path: Path) -> None:
    """As a user runs it (its own process, plots drawn in worker processes): stderr holds
    no traceback, e.g. from a worker process stopped at the end of the run."""
    import subprocess
    import sys

    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "simulator.cli.main", "run", str(scenario_file),
                           "-o", str(out), "--quiet"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Interrupted" not in proc.stderr, proc.stderr
    assert (out / "report.html").is_file()
