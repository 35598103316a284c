"""Weights and data a researcher already has, offline, on files the tests make themselves:
pretrained weights by name in a temporary TORCH_HOME, labelled image folders of generated
PNGs (both layouts), a user's factory next to the scenario, and the one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from simulator.core.config_io import ConfigError
from simulator.runner.flow import load_workload
from simulator.runner.scenario import load_scenario
from workloads.datasets import scan_dataset, split_parts
from workloads.errors import WorkloadError
from workloads.loader import workload_files
from workloads.models import build_torchvision
from workloads.pretrained import OFFLINE_ENV, cache_file, resolve_weights

ROOT = Path(__file__).resolve().parents[1]
HW = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
COLORS = ((220, 30, 30), (30, 220, 30), (30, 30, 220))  # class i: channel i bright

# a user's network, next to the scenario: average colour -> class (channel i -> class i)
FACTORY = textwrap.dedent('''
    import torch
    from torch import nn

    def colour_net():
        conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
            conv.bias.zero_()
        fc = nn.Linear(3, 3)
        with torch.no_grad():
            fc.weight.copy_(torch.eye(3))
            fc.bias.zero_()
        return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)

    def bn_net():
        bn = nn.BatchNorm2d(3)
        bn.running_mean.fill_(0.25)
        bn.running_var.fill_(4.0)
        return nn.Sequential(nn.Conv2d(3, 3, 3), bn, nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(3, 3)), (3, 12, 12)

    def gray_net():
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 26 * 26, 10))
''')


def _png(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.clip(np.array(colour)[None, None, :] + rng.integers(-20, 20, (20, 24, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8)).save(path)


def _scenario(tmp: Path, workload: dict, name: str = "s.yaml", **extra) -> Path:
    data = {"name": "t", "hardware": HW, "workload": workload,
            "pipelines": {"static": {"policy": "static"}}, **extra}
    p = tmp / name
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """ImageFolder layout: 3 classes x 8 PNGs, plus the factory module."""
    for c, name in enumerate(("red", "green", "blue")):
        for i in range(8):
            _png(tmp_path / "data" / name / f"img{i}.png", COLORS[c], 10 * c + i)
    (tmp_path / "mynets.py").write_text(FACTORY)
    return tmp_path


# -- pretrained weights by name -------------------------------------------------------------

@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    return home


def test_weights_by_name_from_torchvision_cache(torch_home: Path, tmp_path: Path) -> None:
    w = resolve_weights("resnet18", "IMAGENET1K_V1")
    expected = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert cache_file(w) == expected  # torchvision's own file name, under TORCH_HOME
    src = build_torchvision("resnet18", seed=7)
    expected.parent.mkdir(parents=True)
    torch.save(src.state_dict(), expected)
    sc = load_scenario(_scenario(tmp_path, {"model": "resnet18", "weights": "DEFAULT",
                                            "input_size": 64, "eval_images": 1}))
    wl = load_workload(sc)
    assert wl.info["weights"] == "pretrained" and "IMAGENET1K_V1" in wl.note
    assert wl.info["batchnorm_statistics"] == "as the weights carry them"
    # the traced module holds the saved weights (BatchNorm folded: compare the fc layer)
    fc = dict(wl.traced.module.named_modules())["fc"]
    assert torch.equal(fc.weight, src.fc.weight)
    assert workload_files(sc.workload, sc.base_dir) == [expected]


def test_weights_by_name_missing_offline(torch_home: Path, tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path, {"model": "resnet18", "weights": "IMAGENET1K_V1"}))
    with pytest.raises(WorkloadError) as e:
        load_workload(sc)
    msg = str(e.value)
    assert "\n" not in msg
    assert "resnet18-f37072fd.pth" in msg and str(torch_home / "hub" / "checkpoints") in msg


def test_weights_name_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid: IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        load_scenario(_scenario(tmp_path, {"model": "mobilenet_v2", "weights": "IMAGENET1K_V9"}))
    with pytest.raises(ConfigError, match="only torchvision models"):
        load_scenario(_scenario(tmp_path, {"model": "digits", "weights": "DEFAULT"}))
    with pytest.raises(ConfigError, match="workload.weights: not found"):
        load_scenario(_scenario(tmp_path, {"model": "resnet18", "weights": "mine.pt"}))


# -- labelled image folders -----------------------------------------------------------------

def test_image_folder_accuracy_and_split(folder: Path) -> None:
    sc = load_scenario(_scenario(folder, {
        "model": "mynets:colour_net", "input_shape": [3, 16, 16], "calibration_images": 3,
        "accuracy_images": 12, "dataset": {"path": "data", "classes": "sorted",
                                          "mean": [0, 0, 0], "std": [1, 1, 1]}}))
    wl = load_workload(sc)
    assert wl.eval_inputs.shape == (12, 3, 16, 16) and wl.calib_inputs.shape[0] == 3
    # sorted classes: blue 0, green 1, red 2; colour_net answers the bright channel
    # (red 0, green 1, blue 2), so only green is right: a third of a stratified sample
    assert sorted(torch.bincount(wl.eval_labels).tolist()) == [4, 4, 4]
    pred = wl.traced.module(wl.eval_inputs).argmax(1)
    assert float((pred == wl.eval_labels).float().mean()) == pytest.approx(1 / 3)
    assert "sorted class names" in wl.note
    # redysim tune's images: the calibration end, never a test image
    xt, yt, desc = wl.tuning(9)
    assert len(xt) == 9 and sorted(torch.bincount(yt).tolist()) == [3, 3, 3]
    assert not any(torch.equal(a, b) for a in xt for b in wl.eval_inputs)
    assert "disjoint from the 12 test images" in desc


def test_flat_layout_with_labels_file_and_class_list(folder: Path) -> None:
    flat = folder / "flat"
    lines = ["ImageId,PredictionString"]  # a header, as in Kaggle's LOC_val_solution.csv
    for c, name in enumerate(("red", "green", "blue")):
        for i in range(5):
            _png(flat / f"val_{c}{i}.png", COLORS[c], 100 + 10 * c + i)
            lines.append(f"val_{c}{i},{name} 1 2 3 4")  # extension left out, extra words
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    (folder / "classes.txt").write_text("red  the first output\ngreen\nblue\n")
    sc = load_scenario(_scenario(folder, {
        "model": "mynets:colour_net", "input_shape": [3, 16, 16], "calibration_images": 3,
        "dataset": {"path": "flat", "labels": "labels.csv", "classes": "classes.txt",
                    "mean": [0, 0, 0], "std": [1, 1, 1]}}))
    wl = load_workload(sc)
    assert len(wl.eval_labels) == 12  # 15 images, 3 for calibration: the rest is tested
    pred = wl.traced.module(wl.eval_inputs).argmax(1)
    assert torch.equal(pred, wl.eval_labels)  # the class list maps red -> 0: all right
    files = workload_files(sc.workload, sc.base_dir)
    assert {folder / "flat", folder / "labels.csv", folder / "classes.txt",
            folder / "mynets.py"} == set(files)


def test_class_mapping_rules(folder: Path) -> None:
    data = folder / "data"
    with pytest.raises(WorkloadError, match="classes: file not found"):
        scan_dataset(data, None, "nope.txt", folder, None, 3)
    # auto: three classes for three outputs -> sorted; for ten outputs -> it asks
    assert "sorted" in scan_dataset(data, None, "auto", folder, None, 3).mapping
    with pytest.raises(WorkloadError, match="class-list file"):
        scan_dataset(data, None, "auto", folder, None, 10)
    # weights' category list (case and underscores ignored)
    got = scan_dataset(data, None, "auto", folder, ["x", "Blue", "RED", "green"], 4)
    assert set(zip(got.class_names, got.labels.tolist(), strict=True)) == {("blue", 1), ("red", 2),
                                                              ("green", 3)}
    with pytest.raises(WorkloadError, match="outside 0..1"):
        scan_dataset(data, None, "sorted", folder, None, 2)


def test_split_parts_disjoint_stratified_seeded() -> None:
    labels = np.repeat(np.arange(4), [10, 10, 10, 7])
    test, cal = split_parts(labels, 12, 8, seed=3)
    assert len(set(test) | set(cal)) == 20
    assert sorted(np.bincount(labels[test]).tolist()) == [3, 3, 3, 3]
    assert sorted(np.bincount(labels[cal]).tolist()) == [2, 2, 2, 2]
    again, _ = split_parts(labels, 12, 8, seed=3)
    other, _ = split_parts(labels, 12, 8, seed=4)
    assert np.array_equal(test, again) and not np.array_equal(test, other)
    # more test images do not move the calibration images: tuning never meets the test
    bigger, cal2 = split_parts(labels, 20, 8, seed=3)
    assert np.array_equal(cal, cal2) and set(test) <= set(bigger)
    with pytest.raises(WorkloadError, match="do not fit"):
        split_parts(labels, 30, 8, seed=0)


def test_dataset_not_for_digits_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scikit-learn's digits"):
        load_scenario(_scenario(tmp_path, {"model": "digits", "dataset": {"path": "."}}))


# -- custom factories: import path, input checks, BatchNorm --------------------------------

def test_factory_next_to_scenario_and_import_error(folder: Path) -> None:
    sc = load_scenario(_scenario(folder, {"model": "mynets:colour_net",
                                          "input_shape": [3, 8, 8]}))
    assert load_workload(sc).traced.input_shape == (3, 8, 8)
    sc = load_scenario(_scenario(folder, {"model": "not_there:net", "input_shape": [3, 8, 8]}))
    with pytest.raises(WorkloadError) as e:
        load_workload(sc)
    assert "\n" not in str(e.value) and str(folder.resolve()) in str(e.value)


def test_factory_input_shape_checks(folder: Path) -> None:
    sc = load_scenario(_scenario(folder, {"model": "mynets:gray_net"}))
    with pytest.raises(WorkloadError, match="input_shape .* is required"):
        load_workload(sc)
    sc = load_scenario(_scenario(folder, {"model": "mynets:gray_net",
                                          "input_shape": [3, 28, 28]}))
    with pytest.raises(WorkloadError) as e:
        load_workload(sc)
    msg = str(e.value)
    assert "\n" not in msg and "expects 1 input channels, gets 3" in msg and "'0'" in msg
    sc = load_scenario(_scenario(folder, {"model": "mynets:gray_net",
                                          "input_shape": [1, 32, 32]}))
    with pytest.raises(WorkloadError) as e:
        load_workload(sc)
    assert "'3' (Linear) expects 2704 input features, gets 3600" in str(e.value)


def test_factory_batchnorm_statistics_kept(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workloads.models as models

    calls = []
    real = models.calibrate_batchnorm
    monkeypatch.setattr(models, "calibrate_batchnorm",
                        lambda m, x: calls.append(len(x)) or real(m, x))
    wl = load_workload(load_scenario(_scenario(folder, {"model": "mynets:bn_net"})))
    assert calls == [] and "as the weights carry them" in wl.note
    assert wl.info["weights"] == "factory"
    load_workload(load_scenario(_scenario(folder, {"model": "mynets:bn_net",
                                                   "calibrate_batchnorm": True})))
    assert calls == [4]
    # random weights the tool initialises are calibrated under auto
    wl = load_workload(load_scenario(_scenario(folder, {"model": "resnet18",
                                                        "input_size": 32, "eval_images": 1})))
    assert calls == [4, 4] and wl.info["weights"] == "random"


# -- the paper's experiment scenario, on a miniature ImageNet in its Kaggle layout ----------

def test_imagenet_scenario_layout(torch_home: Path, tmp_path: Path) -> None:
    shipped = ROOT / "configs" / "scenarios" / "resnet18-imagenet.yaml"
    data = yaml.safe_load(shipped.read_text())
    assert data["workload"]["weights"] == "IMAGENET1K_V1"
    assert data["workload"]["accuracy_images"] == 1000
    # same relative layout as the repository: configs/scenarios, configs/hardware, data/
    (tmp_path / "configs" / "scenarios").mkdir(parents=True)
    (tmp_path / "configs" / "hardware").mkdir()
    for f in ("isaac8.yaml", "isaac.yaml"):
        src = ROOT / "configs" / "hardware" / f
        (tmp_path / "configs" / "hardware" / f).write_text(src.read_text())
    wnids = [f"n{i:08d}" for i in range(1000)]
    root = tmp_path / "data" / "imagenet"
    (root / "val").mkdir(parents=True)
    (root / "LOC_synset_mapping.txt").write_text(
        "".join(f"{w} class number {i}\n" for i, w in enumerate(wnids)))
    rows = ["ImageId,PredictionString"]
    for i in range(12):
        cls = (7 * i) % 1000
        img = Image.fromarray(np.full((40, 50, 3), 20 * i, dtype=np.uint8))
        img.save(root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", format="JPEG")
        rows.append(f"ILSVRC2012_val_{i:08d},{wnids[cls]} 10 20 30 40 {wnids[cls]} 1 2 3 4")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    data["workload"]["accuracy_images"] = 8
    data["workload"]["calibration_images"] = 4
    path = tmp_path / "configs" / "scenarios" / "resnet18-imagenet.yaml"
    path.write_text(yaml.safe_dump(data))
    ckpt = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(build_torchvision("resnet18", seed=1).state_dict(), ckpt)
    wl = load_workload(load_scenario(path))
    assert wl.eval_inputs.shape == (8, 3, 224, 224) and wl.calib_inputs.shape[0] == 4
    # one image per class: 8 distinct classes, each mapped by the synset list's order
    labels = wl.eval_labels.tolist()
    assert len(set(labels)) == 8 and set(labels) <= {(7 * i) % 1000 for i in range(12)}
    assert "LOC_synset_mapping.txt" in wl.note and "ImageClassification" in wl.note
    # the weights' preset: resize 256, centre crop 224, ImageNet normalization
    assert wl.info["weights"] == "pretrained"
