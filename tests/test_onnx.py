"""ONNX in: a small residual CNN exported inside the test, imported through onnx2torch,
simulated; its counts equal those of the same network given as a Python factory."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from simulator.runner.flow import load_workload, run
from simulator.runner.scenario import load_scenario
from workloads.errors import WorkloadError
from workloads.graph import count_kinds

pytest.importorskip("onnx")
pytest.importorskip("onnx2torch")

ROOT = Path(__file__).resolve().parents[1]
HW = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
SHAPE = (3, 16, 16)

NET = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn0 = nn.BatchNorm2d(8)
            self.a = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.b = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(2)
            self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.fc = nn.Linear(16, 5)

        def forward(self, x):
            x = F.relu(self.bn0(self.stem(x)))
            y = self.bn2(self.b(F.relu(self.bn1(self.a(x)))))
            x = self.pool(F.relu(x + y))
            x = F.relu(self.down(x))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def net():
        torch.manual_seed(0)
        m = Net()
        g = torch.Generator().manual_seed(1)
        for bn in (m.bn0, m.bn1, m.bn2):  # trained-looking statistics, so folding matters
            bn.running_mean.copy_(torch.randn(8, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
        return m.eval()
''')


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("onnx")
    (tmp / "onnx_net.py").write_text(NET)
    sys.path.insert(0, str(tmp))
    try:
        import onnx_net
    finally:
        sys.path.remove(str(tmp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(onnx_net.net(), (torch.zeros(1, *SHAPE),), str(tmp / "net.onnx"),
                          dynamo=False, opset_version=17)
    del sys.modules["onnx_net"]
    return tmp


def _scenario(folder: Path, model: str, name: str, **workload) -> Path:
    data = {"name": name, "hardware": HW,
            "workload": {"model": model, "calibration_images": 2, "eval_images": 2, **workload},
            "pipelines": {"static": {"policy": "static"}, "msb-trim": {"policy": "msb-trim"}},
            "simulation": {"fidelity": "analytic", "images": 2, "workers": 1}}
    p = folder / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_onnx_counts_equal_native(folder: Path) -> None:
    onnx_rr = run(load_scenario(_scenario(folder, "net.onnx", "from-onnx")))
    native = run(load_scenario(_scenario(folder, "onnx_net:net", "native",
                                         input_shape=list(SHAPE))))
    assert onnx_rr.workload.info["weights"] == "onnx"
    assert onnx_rr.workload.traced.input_shape == SHAPE  # read from the file
    assert count_kinds(onnx_rr.workload.traced.graph) == count_kinds(native.workload.traced.graph)
    assert onnx_rr.mapping.crossbars_used == native.mapping.crossbars_used
    a, b = onnx_rr.pipelines["static"].counts(), native.pipelines["static"].counts()
    assert a == b and a["groups"] > 0
    # msb-trim depends on activation values: the exporter folded BatchNorm itself, so the
    # float rounding may differ in the last bit; the bit planes agree to 1e-3
    ta, tb = onnx_rr.pipelines["msb-trim"].counts(), native.pipelines["msb-trim"].counts()
    assert ta["groups"] == tb["groups"]
    assert ta["bit_planes"] == pytest.approx(tb["bit_planes"], rel=1e-3)


def test_onnx_of_the_default_exporter(folder: Path) -> None:
    """torch's default (dynamo) exporter writes opset 18: converted down and normalized."""
    pytest.importorskip("onnxscript")
    sys.path.insert(0, str(folder))
    try:
        import onnx_net
    finally:
        sys.path.remove(str(folder))
    path = folder / "net18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(onnx_net.net(), (torch.zeros(1, *SHAPE),), str(path), dynamo=True,
                          verbose=False)
    del sys.modules["onnx_net"]
    wl = load_workload(load_scenario(_scenario(folder, "net18.onnx", "dynamo")))
    x = torch.rand(2, *SHAPE)
    with torch.no_grad():
        import importlib

        sys.path.insert(0, str(folder))
        try:
            ref = importlib.import_module("onnx_net").net()(x)
        finally:
            sys.path.remove(str(folder))
            sys.modules.pop("onnx_net", None)
        assert torch.allclose(wl.traced.module(x), ref, atol=1e-4)


def test_onnx_errors(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = load_scenario(_scenario(folder, "net.onnx", "x"))
    monkeypatch.setitem(sys.modules, "onnx2torch", None)  # not installed
    with pytest.raises(WorkloadError, match=r"redysim\[onnx\]"):
        load_workload(sc)
    monkeypatch.undo()
    (folder / "bad.onnx").write_text("not a model")
    with pytest.raises(WorkloadError, match="not a readable ONNX file"):
        load_workload(load_scenario(_scenario(folder, "bad.onnx", "y")))
    with pytest.raises(Exception, match="model: not found"):
        load_scenario(_scenario(folder, "missing.onnx", "z"))
