"""Bad weights files and tune outputs: one line that says what was expected."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import yaml

from simulator.cli.main import main
from workloads.errors import WorkloadError
from workloads.models import load_weights
from workloads.trained.digits import DigitsCNN

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.faults
EXPECTED = "expected a state_dict saved with torch.save(model.state_dict(), path)"


def _files(tmp: Path) -> dict[str, Path]:
    good = tmp / "good.pt"
    torch.save(DigitsCNN().state_dict(), good)
    files = {
        "garbage": bytes(range(256)) * 20,
        "text": b"not a model\n",
        "empty": b"",
        "truncated": good.read_bytes()[: len(good.read_bytes()) // 2],
        "plain pickle": pickle.dumps({"a": 1}),
    }
    out = {}
    for name, data in files.items():
        p = tmp / f"{name.replace(' ', '_')}.pt"
        p.write_bytes(data)
        out[name] = p
    torch.save(DigitsCNN(), tmp / "whole.pt")
    out["whole model"] = tmp / "whole.pt"
    torch.save(torch.zeros(3), tmp / "tensor.pt")
    out["a tensor"] = tmp / "tensor.pt"
    torch.save({k: "x" for k in DigitsCNN().state_dict()}, tmp / "strings.pt")
    out["non-tensor values"] = tmp / "strings.pt"
    return out


@pytest.mark.parametrize("kind", ["garbage", "text", "empty", "truncated", "plain pickle",
                                  "whole model", "a tensor", "non-tensor values"])
def test_broken_weights_say_what_was_expected(kind: str, tmp_path: Path) -> None:
    path = _files(tmp_path)[kind]
    with pytest.raises(WorkloadError) as exc:
        load_weights(DigitsCNN(), path)
    msg = str(exc.value)
    assert msg.startswith(f"weights file '{path}'") and EXPECTED in msg, msg
    assert "\n" not in msg and "\x1b" not in msg and len(msg) < 400, msg
    if kind == "whole model":
        assert "workloads.trained.digits.DigitsCNN, a whole model?" in msg


def test_good_weights_still_load(tmp_path: Path) -> None:
    sd = DigitsCNN().state_dict()
    torch.save(sd, tmp_path / "w.pt")
    m = load_weights(DigitsCNN(), tmp_path / "w.pt")
    assert all(torch.equal(m.state_dict()[k], v) for k, v in sd.items())


def test_garbage_weights_through_the_cli(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "w.pt").write_bytes(b"\x80\x04garbage" * 100)
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["workload"]["weights"] = "w.pt"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    assert main(["map", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and EXPECTED in err and "Traceback" not in err


# ------------------------------------------------------------------ tune's output file
@pytest.fixture()
def scenario_copy(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "my.yaml").write_text(yaml.safe_dump(data))
    return folder / "my.yaml"


def test_tune_writes_beside_the_scenario(scenario_copy: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Without -o the policy goes next to the scenario (not under the current folder),
    and the command says where, and how to include it."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rc = main(["tune", str(scenario_copy), "--images", "16", "--k-grid", "3",
               "--eps-grid", "0", "--min-bits-grid", "1", "--quiet"])
    out = capsys.readouterr().out
    written = scenario_copy.with_name("my-redy.yaml")
    assert rc == 0 and written.is_file() and list(elsewhere.iterdir()) == []
    assert f"wrote {written.resolve()}" in out and "include: my-redy.yaml" in out
    assert yaml.safe_load(written.read_text())["policy"] == "redy"


def test_tune_output_checked_before_work(scenario_copy: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import simulator.runner.flow as flow

    def forbidden(*a, **k):
        raise AssertionError("the tuning started")

    monkeypatch.setattr(flow, "prepare", forbidden)
    (tmp_path / "afile.txt").write_text("x")
    assert main(["tune", str(scenario_copy), "-o", str(tmp_path / "afile.txt" / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert "afile.txt is a file, not a folder" in err and err.count("\n") == 1
    scenario_copy.with_name("my-redy.yaml").write_text("mine")
    assert main(["tune", str(scenario_copy)]) == 2  # the default file exists: no --force
    assert "--force" in capsys.readouterr().err
    assert scenario_copy.with_name("my-redy.yaml").read_text() == "mine"


# ------------------------------------------------- issue 19: inputs that were not clean
def _one_line(err: str) -> str:
    """The single line the CLI printed (progress lines start with '[')."""
    lines = [ln for ln in err.splitlines() if not ln.startswith("[")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("redysim: error: "), err
    return lines[0]


def _forbid_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.runner.flow as flow

    def forbidden(*a, **k):
        raise AssertionError("the run started its work")

    monkeypatch.setattr(flow, "prepare", forbidden)


FACTORIES = '''
import torch.nn as nn

def build():
    raise ValueError("layer width must be positive")

def fine():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (3, 8, 8)
'''


def _factory_scenario(tmp_path: Path, model: str) -> Path:
    (tmp_path / "mymod.py").write_text(FACTORIES)
    (tmp_path / "brokenmod.py").write_text("import torch\nraise RuntimeError('bad import')\n")
    data = {"name": "f", "hardware": str(ROOT / "configs" / "hardware" / "isaac8.yaml"),
            "workload": {"model": model},
            "pipelines": {"static": {"policy": "static"}}}
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "f.yaml"


@pytest.mark.parametrize(("model", "expected"), [
    ("mymod:build", "model 'mymod:build': the factory mymod.build() raised ValueError: "
                    "layer width must be positive at {dir}/mymod.py:5"),
    ("brokenmod:net", "model 'brokenmod:net': importing module 'brokenmod' raised "
                      "RuntimeError: bad import at {dir}/brokenmod.py:2"),
])
def test_factory_that_raises_is_one_line(model: str, expected: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 8: exit 1 and a 31-line traceback before."""
    sc = _factory_scenario(tmp_path, model)
    assert main(["map", str(sc)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == "redysim: error: " + expected.format(dir=tmp_path.resolve()), line


def test_min_bits_above_the_activation_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 10: min_bits 12 with 8-bit activations ran, exit 0."""
    _forbid_work(monkeypatch)
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["pipelines"]["redy"]["min_bits"] = 12
    data["pipelines"]["redy"]["layers"] = {"conv2": {"min_bits": 9}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    assert main(["run", str(p), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"redysim: error: {p}: pipelines.redy.min_bits: must be at most quantization.bits "
        "(8): a group has 8 bit planes to stream (got 12)",
        f"{p}: pipelines.redy.layers.conv2.min_bits: must be at most quantization.bits (8): "
        "a group has 8 bit planes to stream (got 9)"]
    assert not (tmp_path / "o").exists()
    data["pipelines"]["redy"]["min_bits"] = 8  # every plane: allowed
    data["pipelines"]["redy"]["layers"] = {}
    p.write_text(yaml.safe_dump(data))
    assert main(["tune", str(p), "--min-bits-grid", "2,12", "-o", str(tmp_path / "t.yaml")]) == 2
    assert _one_line(capsys.readouterr().err).endswith(
        "--min-bits-grid: values must be at most quantization.bits (8) (got 12)")


@pytest.mark.parametrize(("images", "warmup", "cli_images"), [(2, 5, None), (4, 1, 2)])
def test_warmup_that_leaves_nothing_to_measure(images: int, warmup: int,
                                               cli_images: int | None, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 10: warmup_images 5 with images 2 silently became 0."""
    _forbid_work(monkeypatch)
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["simulation"].update(images=images, warmup_images=warmup)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    argv = ["run", str(p), "-o", str(tmp_path / "o")]
    if cli_images is not None:
        argv += ["--images", str(cli_images)]
    assert main(argv) == 2
    n = cli_images or images
    assert _one_line(capsys.readouterr().err) == (
        f"redysim: error: {p}: simulation.warmup_images: {warmup} warm-up image(s) leave no "
        f"interval to measure with {n} image(s) streamed: the measured throughput needs "
        f"images >= warmup_images + 2 = {warmup + 2}; raise simulation.images (or --images) "
        "or lower warmup_images")


def test_default_warmup_and_single_image_are_not_refused() -> None:
    from simulator.runner.scenario import Scenario, check_warmup

    base = {"name": "w", "hardware": "x.yaml", "workload": {"model": "digits"}}
    check_warmup(Scenario.model_validate({**base, "simulation": {"images": 2}}))  # default
    check_warmup(Scenario.model_validate(
        {**base, "simulation": {"images": 1, "warmup_images": 3}}))  # no throughput at all
    check_warmup(Scenario.model_validate(
        {**base, "simulation": {"images": 5, "warmup_images": 3}}))  # 5 >= 3 + 2


def test_results_under_proc(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19 item 12: '-o /proc/x' said '/proc: No such file or directory'."""
    if not Path("/proc/self/mounts").is_file():
        pytest.skip("no /proc")
    _forbid_work(monkeypatch)
    sc = ROOT / "configs" / "scenarios" / "digits.yaml"
    assert main(["run", str(sc), "-o", "/proc/x"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("redysim: error: /proc/x: cannot write results there: /proc is on "
                           "a proc file system (mounted at /proc), a kernel interface that "
                           "holds no files"), line


def test_pretrained_weights_offline_print_one_line(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 12: offline, torch.hub's 'Downloading: ...' came before the error."""
    import urllib.error

    import torch.hub

    from workloads.pretrained import OFFLINE_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(OFFLINE_ENV, "0")  # the download is attempted ...

    def no_network(*a, **k):  # ... and fails as it does without a network
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    data = {"name": "p", "hardware": str(ROOT / "configs" / "hardware" / "isaac8.yaml"),
            "workload": {"model": "resnet18", "weights": "DEFAULT", "input_size": 32},
            "pipelines": {"static": {"policy": "static"}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    assert main(["map", str(tmp_path / "p.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out == "", out
    line = _one_line(err)
    assert "could not be downloaded (URLError" in line and "resnet18-f37072fd.pth" in line


def test_plot_default_format_agrees_with_the_docs(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 12: --help said 'default: png svg', docs/outputs.md PNG only."""
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: png," in help_text and "svg;" not in help_text
    outputs = (ROOT / "docs" / "outputs.md").read_text()
    assert "`redysim plot DIR` redraws them as PNG" in outputs
