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
