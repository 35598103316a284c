"""Natural input images for ImageNet-sized models, from photographs bundled with scikit-learn."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "sample_images"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.cache
def _photos() -> tuple[torch.Tensor, ...]:
    """scikit-learn's sample photographs (china.jpg, flower.jpg) as float (3, H, W) in [0, 1].

    Read as ``sklearn.datasets.load_sample_images`` reads them (the package's ``*.jpg``
    files in name order, decoded by PIL) but without importing scikit-learn, whose import
    took 3.4 s of the quick start.
    """
    import importlib.util
    from pathlib import Path

    import numpy as np
    from PIL import Image

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-learn (its sample photographs) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    out = []
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            arr = np.asarray(img)
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
                   .contiguous())
    return tuple(out)


def sample_images(
    n: int,
    size: int,
    seed: int = 0,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """``n`` ImageNet-normalized ``size``x``size`` random crops of real photographs.

    Each image picks one of the bundled photographs, a random-resized crop (area fraction
    in ``scale``, aspect ratio in ``ratio``, as torchvision's RandomResizedCrop), a random
    horizontal flip, and is resized with antialiased bilinear interpolation. Deterministic
    for a given ``seed``. Returns a float tensor (n, 3, size, size).
    """
    photos = _photos()
    gen = torch.Generator().manual_seed(seed)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = torch.empty(n, 3, size, size)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for i in range(n):
        u = torch.rand(6, generator=gen).tolist()
        img = photos[int(u[0] * len(photos)) % len(photos)]
        _, h, w = img.shape
        area = h * w * (scale[0] + (scale[1] - scale[0]) * u[1])
        aspect = math.exp(log_r[0] + (log_r[1] - log_r[0]) * u[2])
        cw = min(w, max(1, round(math.sqrt(area * aspect))))
        ch = min(h, max(1, round(math.sqrt(area / aspect))))
        top = int(u[3] * (h - ch + 1))
        left = int(u[4] * (w - cw + 1))
        crop = img[:, top : top + ch, left : left + cw]
        if u[5] < 0.5:
            crop = crop.flip(-1)
        crop = F.interpolate(
            crop.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False,
            antialias=True,
        )[0]  # fmt: skip
        out[i] = (crop.clamp_(0.0, 1.0) - mean) / std
    return out
