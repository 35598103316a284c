"""redysim: discrete-event simulator of ReRAM PIM CNN accelerators (static 8-bit vs ReDy).

Python API::

    import simulator
    rr = simulator.run("configs/scenarios/digits.yaml")   # -> simulator.runner.flow.RunResult
    rr.pipelines["redy"].latency_ns

``simulator.run`` is imported lazily so that light modules (config loading, hardware
spec) do not pull in torch.
"""

from typing import Any

__all__ = ["run", "RunResult"]


def __getattr__(name: str) -> Any:
    if name in ("run", "RunResult"):
        from simulator.runner import flow

        return getattr(flow, name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
