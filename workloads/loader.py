"""Build a scenario's workload: the model with its weights, the data, and the traced graph.

:func:`load_workload` is what ``redysim run``, ``map`` and ``tune`` use (through
``simulator.runner.flow.prepare``). The data always falls into three disjoint parts (DESIGN §5,
docs/accuracy.md): the part that trained a model (digits models only), the calibration and
tuning part (activation scales, BatchNorm statistics of random weights, ``redysim tune``),
and the test part (reported accuracy, precision statistics, the simulated images).

* digits models: scikit-learn's digits, fixed split (workloads.trained.digits.digits_split);
* ``workload.dataset``: a labelled image folder, split by workloads.datasets.split_parts;
* otherwise no labels: seeded crops of scikit-learn's sample photographs (3-channel
  square inputs) or seeded normal noise, the calibration crops first, then the measured
  ones; no accuracy is reported.

:func:`workload_files` lists the files a workload reads (for caches that fingerprint them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.core.config_io import ConfigError, path_is_file
from workloads.errors import WorkloadError
from workloads.spec import (
    DEFAULT_TUNE_IMAGES_DATASET,
    DEFAULT_TUNE_IMAGES_OTHER,
    TRAINED_HERE,
    WorkloadSpec,
)

__all__ = ["Workload", "load_workload", "missing_files", "workload_files"]

#: largest tensor of test images a dataset may load (accuracy_images: 0 on ImageNet's 50,000
#: validation images would need 28 GiB)
MAX_INPUT_GIB = 4.0

if TYPE_CHECKING:  # pragma: no cover - torch is imported where a workload is built, so
    # that the scenario's checks (missing_files) and the Workload type cost no torch import
    import torch
    from torch import nn

    from workloads.graph import TracedWorkload

    TuningSource = Callable[[int | None], tuple[torch.Tensor, torch.Tensor | None, str]]


@dataclass
class Workload:
    """The traced network and the inputs that drive it.

    ``eval_inputs`` are the measured images (the test part when there are labels,
    ``eval_labels``); the bit planes of the first ``keep_images`` of them are kept for the
    simulation. ``info`` says what the weights and the data were (summary.json
    ``workload_info``); ``note`` is the same as one paragraph. ``tuning(n)`` returns
    ``redysim tune``'s inputs: (images, labels or None, description), never test images.
    """

    traced: TracedWorkload
    calib_inputs: torch.Tensor
    eval_inputs: torch.Tensor
    eval_labels: torch.Tensor | None
    note: str
    info: dict[str, Any] = field(default_factory=dict)
    keep_images: int | None = None
    tuning: TuningSource | None = None

    @property
    def eval_count(self) -> int:
        """How many images are measured."""
        return len(self.eval_inputs)

    @property
    def has_labels(self) -> bool:
        """Whether the measured images have labels (an accuracy is reported)."""
        return self.eval_labels is not None


@dataclass
class _Built:
    model: nn.Module
    shape: tuple[int, ...]
    kind: str  # trained-here | file | pretrained | random | factory | onnx
    desc: str
    random_init: bool
    preset: Any = None  # the weights' transforms()
    categories: list[str] | None = None


def _resolve(base_dir: Path, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else base_dir / p


# ------------------------------------------------------------------------------ model


def _build(spec: WorkloadSpec, base_dir: Path) -> _Built:
    from workloads.models import TORCHVISION_MODELS, build_model, import_factory, load_weights

    name = spec.model
    wfile = _resolve(base_dir, spec.weights_file) if spec.weights_file else None
    if spec.is_onnx:
        from workloads.onnx_import import load_onnx

        path = _resolve(base_dir, name)
        model, file_shape = load_onnx(path)
        shape = tuple(spec.input_shape) if spec.input_shape else file_shape
        if shape is None:
            raise WorkloadError(f"model '{name}': the ONNX input has no static (C, H, W); set "
                                "workload.input_shape")
        if spec.input_shape and file_shape and tuple(spec.input_shape) != file_shape:
            raise WorkloadError(f"model '{name}': workload.input_shape {tuple(spec.input_shape)}"
                                f" differs from the ONNX file's input {file_shape}")
        return _Built(model, shape, "onnx", f"weights from the ONNX file {path}", False)
    if name in TORCHVISION_MODELS:
        return _build_torchvision(spec, wfile)
    if name in TRAINED_HERE:
        if spec.weights == "random":
            model, shape = _random_trained_here(name, spec.seed)
            return _Built(model, shape, "random", f"seeded random weights (seed {spec.seed})",
                          True)
        model, shape = build_model(name, spec.input_size, spec.seed, weights_path=wfile)
        if wfile:
            return _Built(model, shape, "file", f"weights from the user's file {wfile}", False)
        from workloads.trained import digits, resnet_digits
        from workloads.trained.store import expected_sha256

        fname = digits.WEIGHTS_FILE if name == "digits" else resnet_digits.WEIGHTS_FILE
        what = "the digits CNN" if name == "digits" else "the ResNet-20-style residual CNN"
        return _Built(model, shape, "trained-here",
                      f"{what} trained by redysim on the train part of scikit-learn's digits "
                      f"(seeded; committed weights workloads/trained/weights/{fname}, "
                      f"SHA-256 {expected_sha256(fname)[:12]}…)", False)
    if ":" in name:
        model, shape = import_factory(name, spec.seed, search=[base_dir])
        if spec.input_shape is not None:
            shape = tuple(spec.input_shape)
        elif not shape:
            raise WorkloadError(f"model '{name}': workload.input_shape (C, H, W) is required "
                                "for a custom factory (the factory returned only a module)")
        if wfile:
            load_weights(model, wfile)
            return _Built(model, shape, "file", f"weights from the user's file {wfile}", False)
        return _Built(model, shape, "factory",
                      f"the factory's own weights ({name}, torch seed {spec.seed})", False)
    raise WorkloadError(f"unknown model '{name}'; valid names: "
                        + ", ".join((*TORCHVISION_MODELS, *TRAINED_HERE))
                        + ", 'package.module:factory', or a path to an .onnx file")


def _random_trained_here(name: str, seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    import torch

    torch.manual_seed(seed)
    if name == "digits":
        from workloads.trained.digits import DigitsCNN

        return DigitsCNN().eval(), (1, 8, 8)
    from workloads.trained.resnet_digits import INPUT_SHAPE, ResNetDigits

    return ResNetDigits().eval(), INPUT_SHAPE


def _build_torchvision(spec: WorkloadSpec, wfile: Path | None) -> _Built:
    from workloads.models import build_torchvision, load_weights

    name = spec.model
    size = spec.input_size
    if spec.weights_by_name:
        from workloads.pretrained import cache_file, load_pretrained_state, resolve_weights

        w = resolve_weights(name, spec.weights or "")
        state = load_pretrained_state(w)
        cats = list(w.meta.get("categories") or [])
        model = build_torchvision(name, spec.seed, len(cats) or 1000, state)
        preset = w.transforms()
        crop = int(preset.crop_size[0])
        if "input_size" in spec.model_fields_set and size != crop:
            resize = round(size * int(preset.resize_size[0]) / crop)
            preset = w.transforms(crop_size=size, resize_size=resize)
        else:
            size = crop
        if name == "googlenet":  # its transform_input, folded into the preprocessing
            preset = w.transforms(crop_size=size, resize_size=int(preset.resize_size[0]),
                                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        desc = f"pretrained torchvision weights {w} by name (file {cache_file(w)})"
        return _Built(model, (3, size, size), "pretrained", desc, False, preset, cats)
    model = build_torchvision(name, spec.seed)
    if wfile:
        load_weights(model, wfile)
        return _Built(model, (3, size, size), "file", f"weights from the user's file {wfile}",
                      False)
    return _Built(model, (3, size, size), "random", f"seeded random weights (seed {spec.seed})",
                  True)


# ------------------------------------------------------------------------------- data


@dataclass
class _Data:
    calib: torch.Tensor
    test: torch.Tensor
    labels: torch.Tensor | None
    calib_desc: str
    test_desc: str
    tuning: TuningSource


def _digits_data(spec: WorkloadSpec) -> _Data:
    from workloads.trained.digits import digits_split

    split = digits_split()
    xc, yc = split.calibration
    xt, yt = split.test
    if spec.model == "resnet-digits":
        from workloads.trained.resnet_digits import upsample_digits

        xc, xt = upsample_digits(xc), upsample_digits(xt)
        how = "upsampled to 16x16 (bilinear)"
    else:
        how = "8x8"
    if spec.calibration_images > len(yc):
        raise WorkloadError(f"workload.calibration_images: {spec.calibration_images} exceeds the "
                            f"digits calibration part ({len(yc)} images)")
    if spec.accuracy_images > len(yt):
        raise WorkloadError(f"workload.accuracy_images: {spec.accuracy_images} exceeds the "
                            f"digits test part ({len(yt)} images)")
    n_test = spec.accuracy_images or len(yt)
    ncal = spec.calibration_images

    return _Data(xc[:ncal], xt[:n_test], yt[:n_test],
                 f"the first {ncal} of the {len(yc)} images of the digits calibration part",
                 f"{n_test} of the {len(yt)} images of the digits test part ({how}; scikit-"
                 "learn's digits, split 987 train / 360 calibration / 450 test, disjoint)",
                 _DigitsTuning(xc, yc, how))


def _dataset_data(spec: WorkloadSpec, base_dir: Path, built: _Built, outputs: int) -> _Data:
    import torch

    from workloads.datasets import default_transform, load_images, scan_dataset, split_parts

    ds = spec.dataset
    assert ds is not None
    root = _resolve(base_dir, ds.path)
    labels_file = _resolve(base_dir, ds.labels) if ds.labels else None
    files = scan_dataset(root, labels_file, ds.classes, base_dir, built.categories, outputs)
    shape = built.shape
    if built.preset is not None and ds.resize is None and ds.mean is None and ds.std is None:
        transform = built.preset
        prep = f"the weights' preset {built.preset!r}".replace("\n", " ")
    else:
        transform = default_transform(shape, ds.resize, ds.mean, ds.std)
        prep = (f"resize {ds.resize or round(shape[1] * 256 / 224)}, centre crop "
                f"{shape[1]}x{shape[2]}, normalize")
    n_test = spec.accuracy_images or len(files.files) - spec.calibration_images
    gib = n_test * math.prod(shape) * 4 / 2**30
    if gib > MAX_INPUT_GIB:
        raise WorkloadError(
            f"workload.accuracy_images: {n_test} test images of {shape} would hold {gib:.1f} "
            f"GiB of inputs (the dataset has {len(files.files)} images); set "
            f"workload.accuracy_images to at most {int(n_test * MAX_INPUT_GIB / gib)}")
    test_ix, cal_ix = split_parts(files.labels, spec.accuracy_images, spec.calibration_images,
                                  spec.seed)
    x_te = load_images([files.files[i] for i in test_ix], shape[0], transform)
    x_ca = load_images([files.files[i] for i in cal_ix], shape[0], transform)
    y_te = torch.as_tensor(files.labels[test_ix])
    n_classes = len(set(files.labels.tolist()))
    where = f"{root} ({files.layout}, {len(files.files)} labelled images, {n_classes} classes)"

    return _Data(x_ca, x_te, y_te,
                 f"{len(cal_ix)} images of the calibration/tuning part of {where}",
                 f"{len(test_ix)} test images of {where}, stratified and seeded (seed "
                 f"{spec.seed}); classes → outputs: {files.mapping}; preprocessing: {prep}",
                 _DatasetTuning(files.files, files.labels, len(test_ix), spec.seed, shape[0],
                                transform, where))


def _unlabelled_data(spec: WorkloadSpec, shape: tuple[int, ...], preset: Any = None) -> _Data:
    ncal, nev = spec.calibration_images, spec.eval_images
    imgs, kind = _stream(spec, shape, preset, ncal + nev)

    return _Data(imgs[:ncal], imgs[ncal:], None,
                 f"{ncal} {kind} (seed {spec.seed})",
                 f"{nev} {kind} (seed {spec.seed}, after the calibration ones); no labels, so "
                 "no accuracy", _StreamTuning(spec, shape, preset, ncal + nev, kind))


def _stream(spec: WorkloadSpec, shape: tuple[int, ...], preset: Any,
            n: int) -> tuple[torch.Tensor, str]:
    """The first *n* seeded inputs of an unlabelled model, and what they are."""
    import torch

    if len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2]:
        from workloads.inputs import IMAGENET_MEAN, IMAGENET_STD, sample_images

        kind = "crops of scikit-learn's sample photographs"
        x = sample_images(n, shape[1], spec.seed)
        if preset is not None and hasattr(preset, "mean"):  # the weights' normalization
            m0, s0 = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
            m1, s1 = (torch.tensor(list(v)).view(1, 3, 1, 1)
                      for v in (preset.mean, preset.std))
            x = (x * s0 + m0 - m1) / s1
        return x, kind
    g = torch.Generator().manual_seed(spec.seed)
    return torch.randn((n, *shape), generator=g), "seeded normal noise"


# Tuning sources (``Workload.tuning``): plain picklable objects, because a workload is
# stored in the artifact cache.


@dataclass
class _DigitsTuning:
    """The first *n* images of the digits calibration part."""

    x: torch.Tensor
    y: torch.Tensor
    how: str

    def __call__(self, n: int | None) -> tuple[torch.Tensor, torch.Tensor, str]:
        k = min(n or len(self.y), len(self.y))
        return self.x[:k], self.y[:k], (
            f"{k} images of the digits calibration part ({self.how}; never the train or "
            "test part), top-1 accuracy")


@dataclass
class _DatasetTuning:
    """*n* images of a labelled folder's calibration/tuning part."""

    files: list[Any]
    labels: Any
    n_test: int
    seed: int
    channels: int
    transform: Any
    where: str

    def __call__(self, n: int | None) -> tuple[torch.Tensor, torch.Tensor, str]:
        import torch

        from workloads.datasets import load_images, split_parts

        k = n or DEFAULT_TUNE_IMAGES_DATASET
        _, ix = split_parts(self.labels, self.n_test, k, self.seed)
        x = load_images([self.files[i] for i in ix], self.channels, self.transform)
        return x, torch.as_tensor(self.labels[ix]), (
            f"{k} images of the calibration/tuning part of {self.where} (disjoint from the "
            f"{self.n_test} test images), top-1 accuracy")


@dataclass
class _StreamTuning:
    """*n* inputs of an unlabelled model after its calibration and measured ones."""

    spec: WorkloadSpec
    shape: tuple[int, ...]
    preset: Any
    skip: int
    kind: str

    def __call__(self, n: int | None) -> tuple[torch.Tensor, None, str]:
        k = n or DEFAULT_TUNE_IMAGES_OTHER
        x, _ = _stream(self.spec, self.shape, self.preset, self.skip + k)
        return x[self.skip:], None, (
            f"{k} {self.kind} distinct from the calibration and measured inputs; no labels: "
            "accuracy = top-1 agreement with the static pipeline")


# ------------------------------------------------------------------------------- entry


def load_workload(spec: WorkloadSpec, base_dir: Path) -> Workload:
    """Build the model with its weights, check its input, load the data, trace it."""
    from torch import nn

    from workloads.graph import trace_model
    from workloads.models import calibrate_batchnorm, check_input

    base_dir = Path(base_dir)
    built = _build(spec, base_dir)
    model = built.model.eval()
    outputs = check_input(model, built.shape, spec.model)
    if spec.model in TRAINED_HERE:
        data = _digits_data(spec)
    elif spec.dataset is not None:
        data = _dataset_data(spec, base_dir, built, outputs)
    else:
        data = _unlabelled_data(spec, built.shape, built.preset)
    calibrate = (spec.calibrate_batchnorm if spec.calibrate_batchnorm != "auto"
                 else built.random_init)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    bn = "none in the network"
    if has_bn:
        if calibrate:
            calibrate_batchnorm(model, data.calib)
            bn = f"re-estimated on the {len(data.calib)} calibration images"
        else:
            bn = "as the weights carry them"
    model.eval()
    traced = trace_model(model, built.shape, spec.model)
    info = {"model": spec.model, "input_shape": list(built.shape), "weights": built.kind,
            "weights_detail": built.desc, "batchnorm_statistics": bn,
            "calibration_data": data.calib_desc, "test_data": data.test_desc,
            "labelled": data.labels is not None, "measured_images": len(data.test),
            "kept_images": min(spec.eval_images, len(data.test))}
    note = (f"{spec.model}: {built.desc}; BatchNorm statistics {bn}. Calibration: "
            f"{data.calib_desc}. Measured: {data.test_desc}.")
    return Workload(traced, data.calib, data.test, data.labels, note, info,
                    min(spec.eval_images, len(data.test)), data.tuning)


def workload_files(spec: WorkloadSpec, base_dir: Path) -> list[Path]:
    """Every file or folder the workload reads, for caches that fingerprint them.

    The weights file, the ONNX file, the dataset folder with its labels and class-list
    files, a factory's module source, the cache file of pretrained weights (by name; it
    may not exist yet, created on first use, and its name carries the weights' hash) and
    the committed weights of the models trained here.
    """
    base_dir = Path(base_dir)
    out: list[Path] = []
    if spec.weights_file:
        out.append(_resolve(base_dir, spec.weights_file))
    if spec.is_onnx:
        out.append(_resolve(base_dir, spec.model))
    if spec.weights_by_name:
        from workloads.pretrained import cache_file, resolve_weights

        out.append(cache_file(resolve_weights(spec.model, spec.weights or "")))
    if spec.model in TRAINED_HERE and spec.weights is None:
        from workloads.trained import digits, resnet_digits

        out.append(digits.weights_path() if spec.model == "digits"
                   else resnet_digits.weights_path())
    if ":" in spec.model and not spec.is_onnx:
        from workloads.models import module_origin

        src = module_origin(spec.model.partition(":")[0], [base_dir])
        if src is not None:
            out.append(Path(src))
    ds = spec.dataset
    if ds is not None:
        out.append(_resolve(base_dir, ds.path))
        if ds.labels:
            out.append(_resolve(base_dir, ds.labels))
        if ds.classes not in ("auto", "weights", "sorted"):
            out.append(_resolve(base_dir, ds.classes))
    return out


def missing_files(spec: WorkloadSpec, base_dir: Path) -> list[tuple[str, Path]]:
    """(key, path) of every file or folder the scenario names that does not exist.

    A path that cannot even be checked (a NUL byte, too long, no permission) raises a
    ConfigError naming its key.
    """
    base_dir = Path(base_dir)
    wanted: list[tuple[str, Path, bool]] = []  # (key, path, is a folder)
    if spec.weights_file:
        wanted.append(("weights", _resolve(base_dir, spec.weights_file), False))
    if spec.is_onnx:
        wanted.append(("model", _resolve(base_dir, spec.model), False))
    ds = spec.dataset
    if ds is not None:
        wanted.append(("dataset.path", _resolve(base_dir, ds.path), True))
        if ds.labels:
            wanted.append(("dataset.labels", _resolve(base_dir, ds.labels), False))
        if ds.classes not in ("auto", "weights", "sorted"):
            wanted.append(("dataset.classes", _resolve(base_dir, ds.classes), False))
    out = []
    for key, p, folder in wanted:
        try:
            present = p.is_dir() if folder else path_is_file(p, "a file")
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"workload.{key}: cannot use this path ({reason})") from None
        except ConfigError as exc:
            raise ConfigError(f"workload.{key}: {exc}") from None
        if not present:
            out.append((key, p))
    return out
