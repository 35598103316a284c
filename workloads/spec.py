"""The ``workload:`` section of a scenario: network, weights, data (validated by pydantic).

Everything that determines a workload — the model and its weights, the data, which images
calibrate and which are measured — sits in this section (and the files it names), so a
cache of traced graphs or captured activations can key on it
(:func:`workloads.loader.workload_files` lists the files). Relative paths are resolved
against the scenario file's folder.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_validator

from simulator.core.config_io import StrictModel
from workloads.pretrained import is_weights_name

__all__ = ["TRAINED_HERE", "DatasetSpec", "WorkloadSpec"]

#: models redysim trains on scikit-learn's digits (their data is the digits split)
TRAINED_HERE = ("digits", "resnet-digits")

#: tuning images of a labelled dataset when ``redysim tune --images`` is not given
DEFAULT_TUNE_IMAGES_DATASET = 256
#: tuning inputs of an unlabelled model when ``--images`` is not given
DEFAULT_TUNE_IMAGES_OTHER = 4
#: ``redysim tune``'s default search grids (:mod:`workloads.precision.tune`); here, with no
#: torch import, so that building the command line's parser stays cheap
K_GRID: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
EPS_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
MIN_BITS_GRID: tuple[int, ...] = (1, 2, 3, 4)


class DatasetSpec(StrictModel):
    """A labelled image folder (see workloads.datasets and docs/accuracy.md)."""

    path: str = Field(description="folder: one sub-folder per class, or flat images + labels")
    labels: str | None = Field(
        None, description="flat layout: file of '<image> <label>' lines (ImageNet val layout)")
    classes: str = Field(
        "auto", description="class → model output: auto | weights | sorted | class-list file")
    resize: int | None = Field(
        None, ge=1, description="shorter side before the centre crop (default: the weights' "
        "preset, else input × 256/224)")
    mean: list[float] | None = Field(None, description="per-channel mean (default ImageNet)")
    std: list[float] | None = Field(None, description="per-channel std (default ImageNet)")


class WorkloadSpec(StrictModel):
    """The network to simulate, its weights, and the inputs that drive it."""

    model: str = Field(description="torchvision name, 'digits', 'resnet-digits', "
                                   "'package.module:factory', or a path to an .onnx file")
    input_size: int = Field(224, ge=8, description="input height = width (torchvision models)")
    input_shape: tuple[StrictInt, StrictInt, StrictInt] | None = Field(
        None, strict=False, description="(C, H, W) of a custom factory or ONNX model "
        "(a YAML list)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random weights, photo crops, "
                      "dataset image selection (0 .. 2^32-1, numpy's range)")
    weights: str | None = Field(
        None, description="unset: trained here (digits models), random (torchvision), the "
        "factory's or ONNX file's own; 'random'; a torchvision weights name (DEFAULT, "
        "IMAGENET1K_V1, ...); or a state_dict file (relative to the scenario)")
    calibrate_batchnorm: Literal["auto"] | bool = Field(
        "auto", description="re-estimate BatchNorm statistics on the calibration images; "
        "auto: only for random weights that redysim initialised")
    dataset: DatasetSpec | None = Field(None, description="labelled image folder")
    calibration_images: int = Field(
        4, ge=1, description="images for activation scales (and BatchNorm statistics), from "
        "the calibration part of the data")
    eval_images: int = Field(
        16, ge=1, description="unlabelled models: images whose activations are measured; "
        "labelled: test images whose bit planes are kept for the simulation")
    accuracy_images: int = Field(
        0, ge=0, description="labelled test images measured (0: the whole test part)")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="where the activation capture and the exact crossbar mode run: "
        "cpu, cuda (an error without a GPU) or auto (cuda when there is one)")

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadSpec:
        w = self.weights
        onnx = self.model.lower().endswith(".onnx")
        if onnx and w is not None:
            raise ValueError("weights: an ONNX file carries its own weights; remove weights")
        if w is not None and w != "random" and is_weights_name(w):
            from workloads.models import TORCHVISION_MODELS
            from workloads.pretrained import resolve_weights

            if self.model not in TORCHVISION_MODELS:
                raise ValueError(f"weights: '{w}' names pretrained torchvision weights; only "
                                 f"torchvision models have them ({', '.join(TORCHVISION_MODELS)})")
            from workloads.errors import WorkloadError

            try:
                resolve_weights(self.model, w)
            except WorkloadError as e:
                raise ValueError(str(e).removeprefix("workload.weights: ")) from None
        if self.dataset is not None and self.model in TRAINED_HERE:
            raise ValueError(f"dataset: model '{self.model}' uses scikit-learn's digits "
                             "(its fixed train / calibration / test split); remove dataset")
        return self

    @property
    def is_onnx(self) -> bool:
        """The model is an ONNX file."""
        return self.model.lower().endswith(".onnx")

    @property
    def weights_by_name(self) -> bool:
        """``weights`` names pretrained torchvision weights."""
        return self.weights is not None and self.weights != "random" \
            and is_weights_name(self.weights)

    @property
    def weights_file(self) -> str | None:
        """``weights`` as a state_dict path, if it is one."""
        w = self.weights
        return w if w is not None and w != "random" and not is_weights_name(w) else None
