"""The peers' checked-in ADC counts (configs/studies/peers/peer_baselines.csv) against
closed forms written here, and our mapping's packings against the same closed forms.

The configuration: 128 x 128 crossbars, 8-bit weights in 2-bit cells (4 columns per
weight, no offset column), 8-bit activations streamed one bit plane at a time (static:
every group all 8 planes). For a conv/linear layer with C input channels, a k x k kernel,
C' output channels and P output positions:

* linear row packing: ceil(C k^2 / 128) row blocks, each converting 4 C' columns per
  plane at every position: conversions = ceil(C k^2 / 128) * 4 C' * P * 8;
* kernel-aligned rows (ours): floor(128 / k^2) whole input channels per row block
  (1x1 and linear: 128), so ceil(C / floor(128 / k^2)) row blocks;
* whole-crossbar columns (MNSIM's count): kernel-aligned, every crossbar converts all its
  128 columns: 4 C' rounded up to a multiple of 128;
* crossbars: row blocks x ceil(4 C' / 128).
"""

from __future__ import annotations

import csv
from math import ceil
from pathlib import Path

import pytest
import yaml

from simulator.core.config_io import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "configs" / "studies" / "peers"
R = COLS = 128
CELLS = 4   # 8-bit weights / 2-bit cells
BITS = 8


def _conv(cin: int, cout: int, k: int, hw: int) -> tuple[int, int, int, int]:
    return cin, cout, k, hw * hw


# torchvision's ResNet-18 at 224 x 224: (C, C', k, positions) of every conv and the fc
RESNET18 = ([_conv(3, 64, 7, 112)] + [_conv(64, 64, 3, 56)] * 4
            + [_conv(64, 128, 3, 28)] + [_conv(128, 128, 3, 28)] * 3 + [_conv(64, 128, 1, 28)]
            + [_conv(128, 256, 3, 14)] + [_conv(256, 256, 3, 14)] * 3
            + [_conv(128, 256, 1, 14)]
            + [_conv(256, 512, 3, 7)] + [_conv(512, 512, 3, 7)] * 3 + [_conv(256, 512, 1, 7)]
            + [(512, 1000, 1, 1)])
# VGG-16 at 224 x 224: 13 3x3 convs, three fc layers
VGG16 = ([_conv(3, 64, 3, 224), _conv(64, 64, 3, 224), _conv(64, 128, 3, 112),
          _conv(128, 128, 3, 112), _conv(128, 256, 3, 56)] + [_conv(256, 256, 3, 56)] * 2
         + [_conv(256, 512, 3, 28)] + [_conv(512, 512, 3, 28)] * 2
         + [_conv(512, 512, 3, 14)] * 3 + [(25088, 4096, 1, 1), (4096, 4096, 1, 1),
                                           (4096, 1000, 1, 1)])


def closed_form(layers: list[tuple[int, int, int, int]], rows: str,
                whole_columns: bool = False) -> tuple[int, int]:
    """(ADC conversions per image, crossbars) of the static pipeline (module docstring)."""
    conversions = crossbars = 0
    for cin, cout, k, positions in layers:
        if rows == "linear":
            blocks = ceil(cin * k * k / R)
        else:
            blocks = ceil(cin / (R // (k * k)))
        cols = CELLS * cout
        converted = ceil(cols / COLS) * COLS if whole_columns else cols
        conversions += blocks * converted * positions * BITS
        crossbars += blocks * ceil(cols / COLS)
    return conversions, crossbars


def _rows() -> dict[str, dict[str, str]]:
    with open(PEERS / "peer_baselines.csv", newline="") as fh:
        return {r["run"]: r for r in csv.DictReader(fh)}


def test_closed_forms_reproduce_the_checked_in_counts() -> None:
    """AccelForge packs rows linearly (ResNet-18 and VGG-16 exactly); MNSIM 2.0's count is
    our kernel-aligned rows with whole-crossbar columns (its last fc block counted as 128
    columns); the source's closed forms for ResNet-18 (its README) are ours."""
    rows = _rows()
    assert closed_form(RESNET18, "linear") == (491_451_392, 2_864)
    assert closed_form(RESNET18, "aligned") == (510_718_976, 2_972)
    assert closed_form(RESNET18, "aligned", whole_columns=True)[0] == 510_722_048
    assert int(rows["accelforge_resnet18"]["adc_conversions"]) == \
        closed_form(RESNET18, "linear")[0]
    assert int(rows["accelforge_vgg16"]["adc_conversions"]) == closed_form(VGG16, "linear")[0]
    assert int(rows["mnsim_r18in_w4a8"]["adc_conversions"]) == \
        closed_form(RESNET18, "aligned", whole_columns=True)[0]
    # the fc layer is the only one whose 4 x 1000 columns are not whole crossbars:
    # 4 row blocks x (4096 - 4000) columns x 8 planes
    assert closed_form(RESNET18, "aligned", whole_columns=True)[0] - \
        closed_form(RESNET18, "aligned")[0] == 4 * 96 * 8


def test_our_mapping_packs_like_the_closed_forms() -> None:
    """Our mapper on the traced ResNet-18 (the tools' configuration: no unit column), and the
    two other packings the study computes from it, equal the closed forms."""
    import torchvision

    from mapping.mapper import MappingOptions, map_network
    from simulator.explore.study.peers import packings
    from simulator.hardware.spec import load_hardware
    from workloads.graph import trace_model

    hw = load_hardware(ROOT / "configs" / "hardware" / "isaac8.yaml").with_changes(
        {"weights.unit_column": False})
    tw = trace_model(torchvision.models.resnet18(weights=None), (3, 224, 224), "resnet18")
    m = map_network(tw.graph, hw, MappingOptions(replicate=False))
    got = packings(m, hw)
    assert (got["as mapped"]["adc_conversions"], got["as mapped"]["crossbars"]) == \
        closed_form(RESNET18, "aligned")
    assert (got["linear rows"]["adc_conversions"], got["linear rows"]["crossbars"]) == \
        closed_form(RESNET18, "linear")
    assert got["whole-crossbar columns"]["adc_conversions"] == \
        closed_form(RESNET18, "aligned", whole_columns=True)[0]


def _peers_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((PEERS / "peers.yaml").read_text())
    data["baselines"] = str(PEERS / "peer_baselines.csv")
    data["scenario"] = str(ROOT / "configs" / "scenarios" / "quickstart.yaml")
    data.update(changes)
    p = tmp_path / "peers.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_the_peers_file_loads_and_bad_ones_are_named(tmp_path: Path) -> None:
    from simulator.explore.study.peers import load_peers

    peers = load_peers(PEERS / "peers.yaml")
    assert [r["tool"] for r in peers.rows] == ["AccelForge", "MNSIM 2.0"]
    assert peers.rows[0]["energy_by_component_uJ"]["ADC"] == pytest.approx(954.558)
    with pytest.raises(ConfigError, match=r"peers\.yaml: runs: no run 'nope'"):
        load_peers(_peers_file(tmp_path, runs=["nope"]))
    with pytest.raises(ConfigError, match=r"components\.ADC\.AccelForge: AccelForge reports "
                                          r"no Flux"):
        load_peers(_peers_file(tmp_path, components={"ADC": {"AccelForge": ["Flux"]}}))
    bad = tmp_path / "bad.csv"
    text = (PEERS / "peer_baselines.csv").read_text().replace("491451392", "49x")
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.csv: line 2 .*adc_conversions: expected a "
                                          r"number, got '49x'"):
        load_peers(_peers_file(tmp_path, baselines=str(bad)))
