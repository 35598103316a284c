"""The accuracy of the committed networks does not depend on the CPU's vector kernels.

torch picks its CPU kernels by the CPU's instruction set (``ATEN_CPU_CAPABILITY`` forces
one: ``default`` is the scalar path). Training on another path gives other weights, hence
the committed ones (workloads/trained/weights/); inference on those fixed weights rounds a
little differently on each path too, which must not move a top-1 figure. The digits
scenario's pipelines (static, msb-trim, ReDy and tuned ReDy) run here in two fresh
processes, one on the machine's own path and one on the scalar path, and report the same
top-1 and top-5 on the 450 test images. (CI runs the accuracy tests a second time under
``ATEN_CPU_CAPABILITY=default``; .ci/run.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
from simulator.runner.flow import run
from simulator.runner.scenario import load_scenario
sc = load_scenario(sys.argv[1], {"simulation.fidelity": "analytic", "simulation.images": 1,
                                 "simulation.workers": 1,
                                 "pipelines.redy-tuned": {"include":
                                                          "../policies/digits-redy.yaml"}})
rr = run(sc)
print(json.dumps({n: [p.accuracy, p.top5, p.images] for n, p in rr.precision.items()}))
"""


def _top1(capability: str | None) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if capability is not None:
        env["ATEN_CPU_CAPABILITY"] = capability
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", SCRIPT,
                          str(ROOT / "configs" / "scenarios" / "digits.yaml")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_digits_accuracy_is_the_same_on_the_scalar_path() -> None:
    here, scalar = _top1(None), _top1("default")
    assert set(here) == {"static", "msb-trim", "redy", "redy-tuned"}
    assert all(v[2] == 450 for v in here.values())
    assert here == scalar
