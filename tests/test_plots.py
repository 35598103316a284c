"""Plots and HTML report drawn from a synthetic results folder (docs/outputs.md formats)."""

from __future__ import annotations

import argparse
import base64
import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from simulator.cli.plot import cmd_plot
from simulator.core.config_io import ConfigError
from simulator.results.html import write_report
from simulator.results.plots import draw_all, tile_slots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMPONENTS = ("crossbar", "dac", "sample_hold", "adc", "edram", "router", "static:adc")
LAYERS = ("conv1", "relu1", "conv2", "pool2", "fc1")
BITS = 8
PLOTS = ("utilization", "power", "energy_breakdown", "energy_per_layer", "bits_histogram",
         "tile_heatmap")


def make_results(root: Path, *, bins: int = 50, tiles: int = 8, precision: bool = True,
                 with_tiles: bool = True, accuracy: bool = True) -> Path:
    """Write summary.json, layers.csv, timeline.csv and tiles.csv for 'static' and 'redy'."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pipes = {}
    scale = {"static": 1.0, "redy": 0.6}
    for name, k in scale.items():
        by_comp = {c: (i + 1) * 1.0e6 * k for i, c in enumerate(COMPONENTS)}
        by_layer = {ly: (i + 1) * 2.0e6 * k for i, ly in enumerate(LAYERS)}
        hist = {ly: ([0] * BITS + [100]) if name == "static"
                else [int(x) for x in rng.integers(0, 30, BITS + 1)]
                for ly in LAYERS if not ly.startswith(("relu", "pool"))}
        p = {
            "policy": name, "fidelity": "group", "images": 2,
            "latency_ns": 12346.0 * k, "throughput_ips": 81000.0 / k,
            "throughput_basis": "pipelined", "simulated_ns": 25000.0 * k,
            "energy_pj": {"total": sum(by_comp.values()), "dynamic": 1.0, "static": 1.0,
                          "per_image": sum(by_comp.values()) / 2,
                          "by_component": by_comp, "by_layer": by_layer},
            "counts": {"groups": 1000, "bit_planes": 8000, "crossbar_reads": int(4.0e6 * k),
                       "adc_conversions": int(3.2e7 * k), "dac_drives": 10},
            "events": {"adc_conversion": int(3.2e7 * k)},
            "mean_bits_per_group": 8.0 * k,
            "static_power_mw": {"adc": 1.0},
            "accuracy": (91.25 if name == "static" else 90.5) if accuracy else None,
        }
        if precision:
            p["precision"] = {ly: {"mean_bits": 8.0 * k, "hist": h, "saturated_fraction": 0.0,
                                   "zero_group_fraction": 0.1, "rel_rms_error": 0.01}
                              for ly, h in hist.items()}
        pipes[name] = p
    summary = {
        "scenario": "synthetic", "hardware": "isaac-test", "workload": "tinynet",
        "workload_note": "synthetic workload <for tests> & more",
        "float_accuracy": 92.0 if accuracy else None,
        "mapping": {"crossbars_used": 77, "crossbars_available": 1024, "tiles_used": tiles,
                    "chips": 1},
        "pipelines": pipes,
        "comparison": {"energy_ratio": 0.6, "latency_ratio": 0.6, "throughput_ratio": 1.6667,
                       "adc_conversion_ratio": 0.6, "crossbar_read_ratio": 0.6,
                       "mean_bits_ratio": 0.6},
        "wall_s": {"simulate": 1.5},
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    with (root / "layers.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pipeline", "layer", "kind", "crossbars", "replicas", "groups", "mean_bits",
                    "adc_conversions", "crossbar_reads", "busy_ns", "energy_pj",
                    *[f"energy_pj:{c}" for c in COMPONENTS]])
        for name in pipes:
            for ly in LAYERS:
                w.writerow([name, ly, "conv", 4, 1, 10, "8.0", 100, 10, "100.0", "1.0",
                            *["0.1"] * len(COMPONENTS)])
    with (root / "timeline.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pipeline", "t_ns", "bin_ns", "util:crossbar", "util:adc", "util:digital",
                    *[f"power_mw:{c}" for c in COMPONENTS if not c.startswith("static:")]])
        for name, k in scale.items():
            width = 500.0 * k
            for i in range(bins):
                ph = i / bins * np.pi
                w.writerow([name, f"{i * width:g}", f"{width:g}",
                            f"{0.8 * np.sin(ph) ** 2:.4f}", f"{0.5 * k * np.sin(ph):.4f}",
                            f"{0.1:.4f}",
                            *[f"{(j + 1) * 3 * k * np.sin(ph) ** 2:.4f}"
                              for j, c in enumerate(COMPONENTS) if not c.startswith("static:")]])
    if with_tiles:
        with (root / "tiles.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pipeline", "tile", "chip", "router", "router_row", "router_col",
                        "crossbars", "busy_ns", "utilization"])
            for name, k in scale.items():
                for t in range(tiles):
                    if t == 5:  # an unused tile inside a used router
                        continue
                    router = t // 4
                    w.writerow([name, t, 0, router, router // 2, router % 2, 8,
                                f"{1000.0 * t:.1f}", f"{min(1.0, 0.12 * t * k):.6f}"])
    return root


def _check_files(paths: list[Path], stems: tuple[str, ...], formats: tuple[str, ...]) -> None:
    names = {p.name for p in paths}
    for stem in stems:
        for fmt in formats:
            p = paths[0].parent / f"{stem}.{fmt}"
            assert p.name in names, p.name
            assert p.is_file() and p.stat().st_size > 1000, p
            if fmt == "png":
                assert p.read_bytes()[:8] == PNG_MAGIC
            else:
                root = ET.parse(p).getroot()
                assert root.tag.endswith("svg")


def test_draw_all_writes_valid_png_and_svg(tmp_path: Path) -> None:
    d = make_results(tmp_path / "res")
    paths = draw_all(d)
    _check_files(paths, PLOTS, ("png", "svg"))
    assert not (d / "bits_histogram_layers.png").exists()
    assert len(paths) == 2 * len(PLOTS)


def test_draw_all_per_layer_and_single_format(tmp_path: Path) -> None:
    d = make_results(tmp_path / "res")
    paths = draw_all(d, formats=("png",), per_layer_hist=True)
    _check_files(paths, (*PLOTS, "bits_histogram_layers"), ("png",))
    assert not list(d.glob("*.svg"))


def test_missing_optional_inputs_are_skipped(tmp_path: Path) -> None:
    d = make_results(tmp_path / "res", precision=False, with_tiles=False, accuracy=False)
    (d / "timeline.csv").unlink()
    paths = draw_all(d, formats=("png",), per_layer_hist=True)
    assert {p.stem for p in paths} == {"energy_breakdown", "energy_per_layer"}
    html = write_report(d).read_text()
    assert html.count('<img src="data:image/png;base64,') == 2
    assert "accuracy" not in html.lower()


def test_tile_slots_within_router() -> None:
    rows = [{"tile": str(t), "chip": "0", "router": str(t // 4)} for t in (0, 1, 3, 6, 7)]
    assert tile_slots(rows) == {0: 0, 1: 1, 3: 3, 6: 2, 7: 3}
    # inconsistent numbering falls back to the rank within the router
    rows = [{"tile": "10", "chip": "0", "router": "0"}, {"tile": "11", "chip": "0", "router": "1"},
            {"tile": "12", "chip": "0", "router": "1"}]
    assert tile_slots(rows) == {10: 0, 11: 0, 12: 1}


def test_report_embeds_every_plot_and_the_table(tmp_path: Path) -> None:
    d = make_results(tmp_path / "res")
    draw_all(d, formats=("png",), per_layer_hist=True)
    out = write_report(d)
    assert out == d / "report.html"
    html = out.read_text()
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == len(PLOTS) + 1
    assert all(base64.b64decode(b)[:8] == PNG_MAGIC for b in imgs)
    # self-contained: no external resources
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html
    # header, note (escaped), mapping
    for s in ("synthetic", "isaac-test", "tinynet", "synthetic workload &lt;for tests&gt; &amp;",
              "77", "1,024"):
        assert s in html, s
    # table values: latency µs, throughput, energy/image µJ, counts per image (the totals
    # over the 2 images halved: 3.2e7 / 2, 1.92e7 / 2, 4e6 / 2, 2.4e6 / 2), bits,
    # accuracy, ratios
    for s in ("12.35", "7.41", "81,000.0", "135,000.0", "14.000", "8.400", "16,000,000",
              "9,600,000", "2,000,000", "1,200,000", "8.000", "4.800", "91.25", "90.50",
              "92.00", "0.600", "1.667", "static:adc", "ADC conversions / image",
              "crossbar reads / image", "mean bits / group", "2 simulated image(s)"):
        assert s in html, s
    assert "32,000,000" not in html  # the totals are not shown as if per image
    # every plot has a caption
    assert html.count("<figcaption>") == len(PLOTS) + 1


def test_cmd_plot_prints_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = make_results(tmp_path / "res")
    rc = cmd_plot(argparse.Namespace(results_dir=str(d), per_layer=False, format=["png"]))
    assert rc == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "tile_heatmap.png" in out
    assert (d / "report.html").is_file()


def test_cmd_plot_missing_folder_or_summary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="results folder .* does not exist"):
        cmd_plot(argparse.Namespace(results_dir=str(tmp_path / "nope"), per_layer=False,
                                    format=["png"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="summary.json"):
        cmd_plot(argparse.Namespace(results_dir=str(tmp_path / "empty"), per_layer=False,
                                    format=["png"]))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        cmd_plot(argparse.Namespace(results_dir=str(tmp_path / "bad"), per_layer=False,
                                    format=["png"]))


def test_cmd_plot_rejects_unknown_format(tmp_path: Path) -> None:
    d = make_results(tmp_path / "res")
    with pytest.raises(ConfigError, match="format"):
        cmd_plot(argparse.Namespace(results_dir=str(d), per_layer=False, format=["bmp"]))


def test_add_plot_parser_wires_cmd_plot(tmp_path: Path) -> None:
    from simulator.cli.plot import add_plot_parser

    parser = argparse.ArgumentParser(prog="redysim")
    add_plot_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["plot", str(tmp_path), "--per-layer", "--format", "svg"])
    assert args.func is cmd_plot and args.per_layer and args.format == ["svg"]
    # PNG unless --format is given, as docs/outputs.md says (issue 19 item 12)
    assert parser.parse_args(["plot", str(tmp_path)]).format == ["png"]
    d = make_results(tmp_path / "res")
    assert args.func(argparse.Namespace(results_dir=str(d), per_layer=True,
                                        format=["svg"])) == 0
    # PNGs are drawn even when only SVG was asked for: the report embeds them
    assert (d / "tile_heatmap.svg").is_file() and (d / "tile_heatmap.png").is_file()
    assert (d / "bits_histogram_layers.svg").is_file()
