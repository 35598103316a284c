"""A small trained CNN on scikit-learn's bundled 8x8 digits: a real accuracy reference.

The data is split once, with a fixed seed, into three disjoint stratified parts used the
same way by every command (docs/accuracy.md):

* ``train`` (987 images) — trains the models redysim builds on digits;
* ``calibration`` (360) — activation scales, BatchNorm statistics of random-weight
  variants, and ``redysim tune``;
* ``test`` (450) — the reported accuracy (and the images the simulation streams).

The model is trained deterministically on CPU in seconds; the weights every figure
comes from are committed (``weights/digits_cnn.pt``, with its SHA-256 in
``weights/SHA256SUMS``; :mod:`workloads.trained.store`), since another CPU trains other
weights. ``python -m workloads.trained.train digits -o FILE`` retrains them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workloads.trained.store import WEIGHTS_DIR, deterministic, load_committed

__all__ = [
    "WEIGHTS_FILE",
    "DigitsCNN",
    "DigitsSplit",
    "digits_indices",
    "digits_split",
    "evaluate",
    "load_digits_model",
    "shift_augment",
    "train_digits_cnn",
    "weights_path",
]

#: the committed state dict (in workloads/trained/weights/); retrain and re-commit it when
#: the architecture, the data split or the training recipe changes
WEIGHTS_FILE = "digits_cnn.pt"
TRAIN_SEED = 0
#: the split is fixed: the committed models are trained on its train part
SPLIT_SEED = 0
TEST_SIZE = 450
CALIBRATION_SIZE = 360


class DigitsSplit(NamedTuple):
    """The three disjoint parts of scikit-learn's digits, each ``(x, y)``: inputs float
    ``(N, 1, 8, 8)`` in [0, 1], labels int64."""

    train: tuple[torch.Tensor, torch.Tensor]
    calibration: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def digits_indices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into ``sklearn.datasets.load_digits()`` of the (train, calibration, test)
    parts: stratified, fixed seed, disjoint, together every image."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    idx = np.arange(len(target))
    rest, te = train_test_split(idx, test_size=TEST_SIZE, random_state=SPLIT_SEED,
                                stratify=target)
    tr, ca = train_test_split(rest, test_size=CALIBRATION_SIZE, random_state=SPLIT_SEED,
                              stratify=target[rest])
    return tr, ca, te


def digits_split() -> DigitsSplit:
    """The fixed stratified train / calibration / test split (987 / 360 / 450 images).

    Independent of any scenario seed, so the test part never meets the images a committed
    model was trained on, nor the ones ``redysim tune`` scores on.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)

    def part(ix: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(ix)
        return x[t], y[t]

    return DigitsSplit(*(part(ix) for ix in digits_indices()))


class DigitsCNN(nn.Module):
    """conv(1->16)+BN+ReLU, conv(16->32)+BN+ReLU, maxpool 2, conv(32->64)+ReLU, maxpool 2,
    flatten, linear 256->10. Input (N, 1, 8, 8)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool1 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(64 * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool1(F.relu(self.bn2(self.conv2(x))))
        x = self.pool2(F.relu(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on (x, y), in percent (model put in eval mode)."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return 100.0 * correct / max(1, len(y))


def train_digits_cnn(seed: int = TRAIN_SEED, epochs: int = 30, verbose: bool = False) -> DigitsCNN:
    """Train DigitsCNN on the train part of the digits, deterministically on CPU (seconds).

    Adam (lr 3e-3, one-cycle cosine), batch 32, light augmentation (random 1-pixel shifts).
    Returns the model in eval mode.
    """
    (x_tr, y_tr), _, (x_te, y_te) = digits_split()
    with deterministic():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = DigitsCNN()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
        steps_per_epoch = (len(y_tr) + 31) // 32
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=3e-3, total_steps=epochs * steps_per_epoch
        )
        fit_epochs(model, opt, sched, x_tr, y_tr, 32, epochs, gen,
                   report=(lambda e: print(f"epoch {e}: test {evaluate(model, x_te, y_te):.2f}%"))
                   if verbose else None)
    model.eval()
    return model


def fit_epochs(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, x: torch.Tensor,
               y: torch.Tensor, batch: int, epochs: int, gen: torch.Generator,
               prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
               report: Callable[[int], None] | None = None) -> None:
    """Train *model* for *epochs* on shuffled batches of random ±1-pixel shifts of the 8x8
    images *x* (``prepare`` applied after the shift, e.g. upsampling), one scheduler step
    per batch; ``report(epoch)`` after each epoch. Draws from *gen* only (reproducible)."""
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch):
            idx = perm[i : i + batch]
            xb = shift_augment(x[idx], gen)
            if prepare is not None:
                xb = prepare(xb)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if report is not None:
            report(epoch)


def shift_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each 8x8 image by -1, 0 or +1 pixel in each direction (zero fill)."""
    pad = F.pad(x, (1, 1, 1, 1))
    d = torch.randint(0, 3, (x.shape[0], 2), generator=gen)
    out = torch.empty_like(x)
    for k in range(x.shape[0]):
        dy, dx = int(d[k, 0]), int(d[k, 1])
        out[k] = pad[k, :, dy : dy + 8, dx : dx + 8]
    return out


def weights_path(weights_dir: Path | None = None) -> Path:
    """The committed weights file (``workloads/trained/weights/digits_cnn.pt``)."""
    return (WEIGHTS_DIR if weights_dir is None else Path(weights_dir)) / WEIGHTS_FILE


def load_digits_model(weights_dir: Path | None = None) -> DigitsCNN:
    """The trained digits CNN from the committed weights (SHA-256 checked)."""
    model = load_committed(WEIGHTS_FILE, DigitsCNN, weights_dir)
    assert isinstance(model, DigitsCNN)
    return model
