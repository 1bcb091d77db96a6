"""Operators that make detected faces and plates unrecognisable, chosen by name.

Every operator replaces a rectangle of a BGR frame in place. None of them keeps enough of the original
to undo it: ``blur`` and ``pixelate`` first reduce the region to a handful of cells (a plain Gaussian blur
of a plate can be partly reversed by deconvolution), ``mask`` fills it with one colour.

`anonymize_frame` pads each box (detectors' boxes hug the object; hair, chins and plate frames stick out)
and applies the operator to every padded box.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from onshore.errors import InputError
from onshore.vision.choices import DEFAULT_METHOD, METHOD_NAMES
from onshore.vision.detectors import Box, BoxKind

# Cells kept along the longer side of a region: at 5-6 cells a face or a 7-character plate is unreadable.
_BLUR_CELLS = 5
_PIXELATE_CELLS = 6

DEFAULT_PADDING: Mapping[BoxKind, float] = {"face": 0.2, "plate": 0.15}


def _region_cells(width: int, height: int, cells_on_long_side: int) -> tuple[int, int]:
    long_side = max(width, height)
    return (
        max(1, round(width * cells_on_long_side / long_side)),
        max(1, round(height * cells_on_long_side / long_side)),
    )


def gaussian_blur(region: np.ndarray) -> None:
    """Replace ``region`` (a view into the frame) with a smooth blend of a few average colours."""
    height, width = region.shape[:2]
    cells = _region_cells(width, height, _BLUR_CELLS)
    small = cv2.resize(region, cells, interpolation=cv2.INTER_AREA)
    # Smoothing the few cells, not the full-size region, keeps the cost independent of the box size.
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=0.7, borderType=cv2.BORDER_REPLICATE)
    region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def pixelate(region: np.ndarray) -> None:
    """Replace ``region`` with a mosaic of six cells along its longer side."""
    height, width = region.shape[:2]
    cells = _region_cells(width, height, _PIXELATE_CELLS)
    small = cv2.resize(region, cells, interpolation=cv2.INTER_AREA)
    region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def solid_mask(region: np.ndarray) -> None:
    """Fill ``region`` with black."""
    region[:] = 0


AnonymizeOperator = Callable[[np.ndarray], None]

ANONYMIZERS: dict[str, AnonymizeOperator] = {
    "blur": gaussian_blur,
    "pixelate": pixelate,
    "mask": solid_mask,
}


def get_anonymizer(name: str) -> AnonymizeOperator:
    """The operator registered under ``name``.

    Raises:
        InputError: unknown ``name``; the message lists the valid names.
    """
    try:
        return ANONYMIZERS[name]
    except KeyError:
        valid = ", ".join(METHOD_NAMES)
        raise InputError(f"unknown anonymisation method {name!r}; choose one of: {valid}") from None


@dataclass(frozen=True)
class AnonymizationSettings:
    """How found boxes are hidden.

    Attributes:
        method: name of the operator in `ANONYMIZERS`.
        padding: fraction of a box's width and height added on every side, per kind.
    """

    method: str = DEFAULT_METHOD
    padding: Mapping[BoxKind, float] = field(default_factory=lambda: dict(DEFAULT_PADDING))

    def __post_init__(self) -> None:
        get_anonymizer(self.method)
        for kind, fraction in self.padding.items():
            if not 0 <= fraction <= 2:
                raise InputError(f"padding for {kind!r} is {fraction}; use a fraction between 0 and 2")


def masked_regions(
    boxes: Iterable[Box], frame_width: int, frame_height: int, padding: Mapping[BoxKind, float]
) -> list[Box]:
    """The padded, frame-clipped rectangles that anonymisation replaces for ``boxes``."""
    regions = []
    for box in boxes:
        region = box.padded(padding.get(box.kind, 0.0), frame_width, frame_height)
        if region.width > 0 and region.height > 0:
            regions.append(region)
    return regions


def anonymize_frame(
    frame: np.ndarray, boxes: Iterable[Box], settings: AnonymizationSettings | None = None
) -> np.ndarray:
    """Hide every box of ``frame`` in place (padded per `AnonymizationSettings`) and return the frame.

    Raises:
        InputError: the settings name an unknown method.
    """
    settings = settings or AnonymizationSettings()
    operator = get_anonymizer(settings.method)
    frame_height, frame_width = frame.shape[:2]
    regions = masked_regions(boxes, frame_width, frame_height, settings.padding)
    for region in regions:
        operator(frame[region.y1 : region.y2, region.x1 : region.x2])
    return frame
