"""A trained residual CNN (ResNet-20 style, BatchNorm, skip connections) on upsampled digits.

The best trained stand-in for a modern CNN that can be built without a download: the
CIFAR ResNet-20 of He et al. (2016, §4.2: a 3x3 stem, three stages of three basic blocks
with 16, 32 and 64 channels, stride-2 stage entries, global average pooling, one linear
layer) with 1x1 conv + BatchNorm projection shortcuts where the shape changes, trained on
scikit-learn's 8x8 digits upsampled to 16x16 (bilinear). It has 19 3x3 convolutions, 2
projection shortcuts, 9 residual additions and BatchNorm after every convolution, like the
ImageNet ResNets.

Training uses only the train part of :func:`workloads.trained.digits.digits_split`; it is
seeded, single-threaded and deterministic and takes about a minute on one core. The
weights every figure comes from are committed (``weights/resnet_digits.pt``, SHA-256 in
``weights/SHA256SUMS``), since another CPU trains other weights; ``python -m
workloads.trained.train resnet-digits -o FILE`` retrains them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from workloads.trained.digits import digits_split, evaluate, fit_epochs
from workloads.trained.store import WEIGHTS_DIR, deterministic, load_committed

__all__ = [
    "INPUT_SHAPE",
    "WEIGHTS_FILE",
    "ResNetDigits",
    "load_resnet_digits",
    "train_resnet_digits",
    "upsample_digits",
    "weights_path",
]

#: the committed state dict (in workloads/trained/weights/); retrain and re-commit it when
#: the architecture, the input size or the training recipe changes
WEIGHTS_FILE = "resnet_digits.pt"
TRAIN_SEED = 0
SIZE = 16
INPUT_SHAPE = (1, SIZE, SIZE)


def upsample_digits(x: torch.Tensor) -> torch.Tensor:
    """8x8 digits (N, 1, 8, 8) in [0, 1] → (N, 1, 16, 16), bilinear (half-pixel centres)."""
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN, ReLU between; identity or 1x1 conv + BN shortcut; ReLU after add."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNetDigits(nn.Module):
    """ResNet-20 (3 stages × 3 basic blocks, 16/32/64 channels) for (N, 1, 16, 16) inputs."""

    def __init__(self, num_classes: int = 10, width: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        cin = width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            layers = [BasicBlock(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1)
                      for j in range(blocks)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def train_resnet_digits(seed: int = TRAIN_SEED, epochs: int = 15, verbose: bool = False,
                        images: int | None = None) -> ResNetDigits:
    """Train ResNetDigits on the digits train part, deterministically on one CPU thread.

    SGD (Nesterov momentum 0.9, weight decay 5e-4), one-cycle learning rate peaking at 0.1,
    batch 64, 15 epochs; augmentation: random ±1-pixel shifts of the 8x8 image before
    upsampling. *images* limits the training set to its first N images (tests). Returns the
    model in eval mode.
    """
    (x_tr, y_tr), _, (x_te, y_te) = digits_split()
    if images is not None:
        x_tr, y_tr = x_tr[:images], y_tr[:images]
    with deterministic():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = ResNetDigits()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                              nesterov=True)
        bs = 64
        steps = (len(y_tr) + bs - 1) // bs
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * steps)
        fit_epochs(model, opt, sched, x_tr, y_tr, bs, epochs, gen, prepare=upsample_digits,
                   report=(lambda e: print(f"epoch {e}: test "
                                           f"{evaluate(model, upsample_digits(x_te), y_te):.2f}%"))
                   if verbose else None)
    return model.eval()


def weights_path(weights_dir: Path | None = None) -> Path:
    """The committed weights file (``workloads/trained/weights/resnet_digits.pt``)."""
    return (WEIGHTS_DIR if weights_dir is None else Path(weights_dir)) / WEIGHTS_FILE


def load_resnet_digits(weights_dir: Path | None = None) -> ResNetDigits:
    """The trained residual CNN from the committed weights (SHA-256 checked)."""
    model = load_committed(WEIGHTS_FILE, ResNetDigits, weights_dir)
    assert isinstance(model, ResNetDigits)
    return model
