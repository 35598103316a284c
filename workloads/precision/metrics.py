"""Accuracy of logits against labels, and the float model's logits."""

from __future__ import annotations

import torch
from torch import nn


def topk(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Top-k accuracy in percent (k is capped at the number of outputs)."""
    k = min(k, logits.shape[-1])
    hits = (logits.topk(k, dim=-1).indices == labels.to(logits.device)[:, None]).any(dim=-1)
    return float(hits.float().mean() * 100)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(dim=-1) == labels.to(logits.device)).float().mean() * 100)


@torch.no_grad()
def float_logits(model: nn.Module, inputs: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Logits of the unquantized model."""
    model.eval()
    return torch.cat([model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])


@torch.no_grad()
def float_accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                   batch_size: int = 64) -> float:
    """Top-1 accuracy (%) of the unquantized model."""
    return top1(float_logits(model, inputs, batch_size), labels)
