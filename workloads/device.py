"""Where the activation capture and the exact crossbar mode run (``workload.device``)."""

from __future__ import annotations

import torch

from workloads.errors import WorkloadError

#: values of ``workload.device``
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """``cpu``; ``cuda`` (the current CUDA GPU, an error when torch sees none); ``auto``
    (CUDA when torch sees a GPU, else the CPU)."""
    if name not in DEVICES:
        raise WorkloadError(f"workload.device: expected one of {', '.join(DEVICES)} "
                            f"(got {name!r})")
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if available else "cpu")
    if not available:
        built = torch.version.cuda
        why = (f"this torch ({torch.__version__}) is built without CUDA" if not built
               else f"this torch (CUDA {built}) finds no GPU")
        raise WorkloadError(f"workload.device: cuda was asked for, but {why}; use cpu or auto")
    return torch.device("cuda")
