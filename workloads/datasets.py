"""Labelled image folders: layouts, the class → model-output mapping, deterministic parts.

Two layouts (``workload.dataset``, docs/accuracy.md):

* **image folder** — one sub-folder per class holding its images (torchvision's
  ``ImageFolder``); the class name is the sub-folder's name;
* **flat with a labels file** — the images in one folder (ImageNet's validation layout)
  and ``labels:``, a text file with one ``<image file> <label>`` line per image
  (separated by white space or a comma; the extension may be left out; a header line
  such as Kaggle's ``ImageId,PredictionString`` is skipped; only the first word of the
  label is used, so ``LOC_val_solution.csv`` works as is).

The class of an image maps to a model output by ``classes:``: ``weights`` (the pretrained
weights' category list), ``sorted`` (sorted class names → 0, 1, … as ImageFolder does), or
a class-list file (one class per line in the model's output order; the first word of
each line is the class, so ``LOC_synset_mapping.txt`` works). ``auto`` takes, in order:
labels that are integers (the output index itself), the weights' category list when
every class is in it, ``sorted`` when there are exactly as many classes as outputs; else
it stops and asks. The choice is reported.

Images are split deterministically: each class's images are shuffled with the seed and
the classes are put in a seeded order; test images are drawn round-robin over the classes
from the front of those lists, calibration/tuning images round-robin from the other end
(last image of the last class first), so both are stratified and never overlap while the
dataset can hold both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workloads.errors import WorkloadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "LabelledFiles",
    "default_transform",
    "load_images",
    "scan_dataset",
    "split_parts",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class LabelledFiles:
    """Images of a dataset with their model-output labels."""

    files: list[Path]
    labels: np.ndarray  # int64 model output index per file
    class_names: list[str]  # the dataset's own class name per file
    layout: str  # "image folder" | "flat folder + labels file"
    mapping: str  # how class names became output indices


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS


def _scan_image_folder(root: Path) -> tuple[list[Path], list[str]]:
    files, names = [], []
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in classes:
        for f in sorted(p for p in d.rglob("*") if _is_image(p)):
            files.append(f)
            names.append(d.name)
    return files, names


_SPLIT = re.compile(r"[,\s]+")


def _scan_flat(root: Path, labels_file: Path) -> tuple[list[Path], list[str]]:
    images = {p.name: p for p in root.iterdir() if _is_image(p)}
    stems: dict[str, Path] = {}
    for p in images.values():
        stems.setdefault(p.stem, p)
    files, names = [], []
    lines = labels_file.read_text().splitlines()
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = _SPLIT.split(text, maxsplit=1)
        if len(parts) < 2 or not parts[1].strip():
            raise WorkloadError(f"{labels_file}:{no}: expected '<image file> <label>' "
                                f"(got {text[:60]!r})")
        key, label = parts[0], _SPLIT.split(parts[1].strip())[0]
        path = images.get(key) or stems.get(key) or stems.get(Path(key).stem)
        if path is None:
            if not files and no == next(i for i, s in enumerate(lines, 1) if s.strip()):
                continue  # a header line
            raise WorkloadError(f"{labels_file}:{no}: image '{key}' not found in {root}")
        files.append(path)
        names.append(label)
    return files, names


def _read_class_list(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        t = line.strip()
        if t and not t.startswith("#"):
            out.append(_SPLIT.split(t, maxsplit=1)[0])
    if not out:
        raise WorkloadError(f"{path}: class list is empty (one class per line, in the "
                            "model's output order)")
    return out


def _norm(name: str) -> str:
    return name.replace("_", " ").strip().lower()


def _map_classes(names: list[str], classes: str, base_dir: Path,
                 categories: Sequence[str] | None, num_outputs: int) -> tuple[np.ndarray, str]:
    distinct = sorted(set(names))
    if classes == "auto" and all(re.fullmatch(r"\d+", n) for n in distinct):
        idx = {n: int(n) for n in distinct}
        how = "integer labels are the model's output indices"
    elif classes == "weights" or (
            classes == "auto" and categories
            and all(_norm(n) in {_norm(c) for c in categories} for n in distinct)):
        if not categories:
            raise WorkloadError("workload.dataset.classes: 'weights' needs pretrained weights "
                                "with a category list (workload.weights: DEFAULT or a name)")
        pos = {_norm(c): i for i, c in enumerate(categories)}
        missing = [n for n in distinct if _norm(n) not in pos]
        if missing:
            raise WorkloadError(f"workload.dataset: classes {missing[:5]} are not in the "
                                "weights' category list; give workload.dataset.classes: "
                                "a class-list file in the model's output order")
        idx = {n: pos[_norm(n)] for n in distinct}
        how = "class names looked up in the weights' category list"
    elif classes == "sorted" or (classes == "auto" and len(distinct) == num_outputs):
        idx = {n: i for i, n in enumerate(distinct)}
        how = f"sorted class names → outputs 0..{len(distinct) - 1} (ImageFolder convention)"
    elif classes != "auto":
        path = Path(classes) if Path(classes).is_absolute() else base_dir / classes
        if not path.is_file():
            raise WorkloadError(f"workload.dataset.classes: file not found: {path} (expected "
                                "auto, weights, sorted or a class-list file)")
        order = _read_class_list(path)
        pos = {c: i for i, c in enumerate(order)}
        missing = [n for n in distinct if n not in pos and not re.fullmatch(r"\d+", n)]
        if missing:
            raise WorkloadError(f"workload.dataset: classes {missing[:5]} are not in the "
                                f"class list {path}")
        idx = {n: pos[n] if n in pos else int(n) for n in distinct}
        how = f"class names looked up in the class list {path}"
    else:
        raise WorkloadError(
            f"workload.dataset: cannot map the {len(distinct)} class names (e.g. "
            f"{distinct[:3]}) to the model's {num_outputs} outputs: they are not integers, not "
            "in the weights' category list, and not one per output; set "
            "workload.dataset.classes to a class-list file (one class per line, in the "
            "model's output order) or to 'sorted'")
    bad = sorted({n for n in distinct if not 0 <= idx[n] < num_outputs})
    if bad:
        raise WorkloadError(f"workload.dataset: classes {bad[:5]} map to outputs outside "
                            f"0..{num_outputs - 1}")
    return np.array([idx[n] for n in names], dtype=np.int64), how


def scan_dataset(path: Path, labels_file: Path | None, classes: str, base_dir: Path,
                 categories: Sequence[str] | None, num_outputs: int) -> LabelledFiles:
    """Find a dataset's images and map their classes to model outputs (module docstring)."""
    if not path.is_dir():
        raise WorkloadError(f"workload.dataset.path: folder not found: {path}")
    if labels_file is not None:
        if not labels_file.is_file():
            raise WorkloadError(f"workload.dataset.labels: file not found: {labels_file}")
        files, names = _scan_flat(path, labels_file)
        layout = "flat folder + labels file"
    else:
        files, names = _scan_image_folder(path)
        layout = "image folder (one sub-folder per class)"
        if not files:
            flat = [p for p in path.iterdir() if _is_image(p)]
            hint = (f"; it holds {len(flat)} images directly: give workload.dataset.labels"
                    if flat else "")
            raise WorkloadError(f"workload.dataset.path: {path} has no class sub-folders with "
                                f"images{hint}")
    if not files:
        raise WorkloadError(f"workload.dataset: no labelled images found in {path}")
    labels, how = _map_classes(names, classes, base_dir, categories, num_outputs)
    return LabelledFiles(files, labels, names, layout, how)


def split_parts(labels: np.ndarray, n_test: int, n_calib: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint, stratified, seeded (test, calibration) index arrays (module docstring).

    *n_test* = 0 takes every image not needed for calibration. Raises WorkloadError when
    the dataset cannot hold both.
    """
    total = len(labels)
    if n_test == 0:
        n_test = total - n_calib
    if n_test < 1 or n_test + n_calib > total:
        raise WorkloadError(
            f"workload: the dataset has {total} images; {n_test} test + {n_calib} "
            "calibration/tuning images do not fit (lower accuracy_images or "
            "calibration_images)")
    rng = np.random.default_rng(seed)
    per_class = []
    for c in np.unique(labels):
        ix = np.flatnonzero(labels == c)
        per_class.append(ix[rng.permutation(len(ix))])
    order = rng.permutation(len(per_class))
    lists = [per_class[i] for i in order]

    def round_robin(seqs: list[np.ndarray], n: int) -> np.ndarray:
        out: list[int] = []
        depth = 0
        while len(out) < n:
            for s in seqs:
                if depth < len(s) and len(out) < n:
                    out.append(int(s[depth]))
            depth += 1
        return np.array(out, dtype=np.int64)

    test = round_robin(lists, n_test)
    # from the other end: last images first, classes in reverse order
    calib = round_robin([s[::-1] for s in lists[::-1]], n_calib)
    if np.intersect1d(test, calib).size:
        raise WorkloadError(
            f"workload: {n_test} test + {n_calib} calibration/tuning images overlap in this "
            "dataset's smallest classes; lower accuracy_images or calibration_images")
    return test, calib


def default_transform(shape: tuple[int, int, int], resize: int | None,
                      mean: Sequence[float] | None,
                      std: Sequence[float] | None) -> Callable[[object], torch.Tensor]:
    """Resize the shorter side (default ``H × 256/224``), centre-crop to (H, W), scale to
    [0, 1], normalize (default ImageNet mean/std for 3 channels, none otherwise)."""
    from torchvision.transforms.v2 import functional as TF

    c, h, w = shape
    size = resize or round(h * 256 / 224)
    if mean is None:
        mean = (0.485, 0.456, 0.406) if c == 3 else (0.0,) * c
    if std is None:
        std = (0.229, 0.224, 0.225) if c == 3 else (1.0,) * c
    if len(mean) != c or len(std) != c:
        raise WorkloadError(f"workload.dataset: mean/std need {c} values (one per channel)")
    m = torch.tensor(mean, dtype=torch.float32).view(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(c, 1, 1)

    def tf(img: object) -> torch.Tensor:
        t = TF.pil_to_tensor(img)
        t = TF.resize(t, [size], antialias=True)
        t = TF.center_crop(t, [h, w])
        return (t.float() / 255.0 - m) / s

    return tf


def load_images(files: Sequence[Path], channels: int,
                transform: Callable[[object], torch.Tensor]) -> torch.Tensor:
    """Open, convert (RGB or L) and transform *files* into one (N, C, H, W) tensor."""
    from PIL import Image

    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                img = im.convert("RGB" if channels == 3 else "L")
        except Exception as e:  # noqa: BLE001 - any decoding problem, named
            raise WorkloadError(f"image {f} cannot be read ({type(e).__name__}: {e})") from None
        out.append(transform(img))
    return torch.stack(out) if out else torch.zeros(0)
