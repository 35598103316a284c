"""A small trained CNN on scikit-learn's bundled 8x8 digits: a real accuracy reference.

The model is trained deterministically on CPU in seconds and cached outside the repository
(``$REDYSIM_CACHE`` or ``~/.cache/redysim/``), so accuracy under quantization can be
measured on trained weights without any download.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CACHE_VERSION",
    "DigitsCNN",
    "cache_path",
    "digits_split",
    "evaluate",
    "load_digits_model",
    "train_digits_cnn",
]

#: Bump when the architecture or the training recipe changes (invalidates cached weights).
CACHE_VERSION = "v1"
TRAIN_SEED = 0


def digits_split(
    seed: int = 0, test_size: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed stratified train/test split of sklearn's digits: ``(x_train, y_train, x_test,
    y_test)``, inputs float (N, 1, 8, 8) in [0, 1], labels int64."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)
    idx = torch.arange(len(y)).numpy()
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=d.target)
    tr_t, te_t = torch.from_numpy(tr), torch.from_numpy(te)
    return x[tr_t], y[tr_t], x[te_t], y[te_t]


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


@contextlib.contextmanager
def _deterministic(threads: int = 2) -> Iterator[None]:
    """Deterministic CPU settings for the duration of the block (restored afterwards)."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on (x, y), in percent (model put in eval mode)."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    return 100.0 * correct / max(1, len(y))


def train_digits_cnn(seed: int = TRAIN_SEED, epochs: int = 30, verbose: bool = False) -> DigitsCNN:
    """Train DigitsCNN on the digits train split, deterministically on CPU (a few seconds).

    Adam (lr 3e-3, one-cycle cosine), batch 32, light augmentation (random 1-pixel shifts).
    Returns the model in eval mode.
    """
    x_tr, y_tr, x_te, y_te = digits_split(seed=0)
    with _deterministic():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = DigitsCNN()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
        steps_per_epoch = (len(y_tr) + 31) // 32
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=3e-3, total_steps=epochs * steps_per_epoch
        )
        for epoch in range(epochs):
            model.train()
            perm = torch.randperm(len(y_tr), generator=gen)
            for i in range(0, len(y_tr), 32):
                idx = perm[i : i + 32]
                xb = _shift(x_tr[idx], gen)
                loss = F.cross_entropy(model(xb), y_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if verbose:
                print(f"epoch {epoch}: test {evaluate(model, x_te, y_te):.2f}%")
    model.eval()
    return model


def _shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by -1, 0 or +1 pixel in each direction (zero fill)."""
    pad = F.pad(x, (1, 1, 1, 1))
    d = torch.randint(0, 3, (x.shape[0], 2), generator=gen)
    out = torch.empty_like(x)
    for k in range(x.shape[0]):
        dy, dx = int(d[k, 0]), int(d[k, 1])
        out[k] = pad[k, :, dy : dy + 8, dx : dx + 8]
    return out


def cache_path(cache_dir: str | os.PathLike[str] | None = None, seed: int = TRAIN_SEED) -> Path:
    """Where the trained weights are cached (outside the repository)."""
    if cache_dir is None:
        cache_dir = os.environ.get("REDYSIM_CACHE") or Path.home() / ".cache" / "redysim"
    return Path(cache_dir) / f"digits_cnn_{CACHE_VERSION}_seed{seed}.pt"


def load_digits_model(
    cache_dir: str | os.PathLike[str] | None = None, seed: int = TRAIN_SEED
) -> DigitsCNN:
    """The trained digits CNN: loaded from the cache, or trained and saved when missing."""
    path = cache_path(cache_dir, seed)
    model = DigitsCNN()
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except Exception:  # corrupt or stale cache: retrain below
            pass
    model = train_digits_cnn(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(model.state_dict(), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model
