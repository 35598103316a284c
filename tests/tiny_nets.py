"""Small networks the precision tests share (not a test module)."""

from __future__ import annotations

import torch
from torch import nn


def tiny_net() -> nn.Module:
    """Every layer kind the capture handles: a conv on a signed input, a depthwise, a
    grouped and a 1x1 conv, and a linear layer (module indices in the comments)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),                      # 0: signed input
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),            # 2: depthwise
        nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=4), nn.ReLU(),  # 4: grouped
        nn.Conv2d(12, 6, 1, bias=False), nn.ReLU(),                     # 6: 1x1
        nn.Flatten(), nn.Linear(6 * 4 * 4, 5))                          # 9: linear
