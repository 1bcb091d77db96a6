"""The box a detector returns, the `Detector` protocol, and how boxes from several passes are combined.

`boxes_from_arrays` turns a model's float corners into clipped pixel `Box` es; `non_maximum_suppression`
is the usual greedy suppression by score within one pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import cv2
import numpy as np

BoxKind = Literal["face", "plate"]


@dataclass(frozen=True, slots=True)
class Box:
    """One detected face or plate in pixel coordinates of the frame it was found in.

    ``x2`` and ``y2`` are exclusive, so ``image[y1:y2, x1:x2]`` is the region; all four are clipped to
    the frame.
    """

    kind: BoxKind
    x1: int
    y1: int
    x2: int
    y2: int
    score: float

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.y2 - self.y1

    def padded(self, fraction: float, frame_width: int, frame_height: int) -> Box:
        """This box grown by ``fraction`` of its width and height on every side, clipped to the frame.

        Fractional coordinates (a drop-in detector's) are rounded outwards, so the region never shrinks.
        """
        pad_x = round(self.width * fraction)
        pad_y = round(self.height * fraction)
        return Box(
            self.kind,
            max(0, math.floor(self.x1) - pad_x),
            max(0, math.floor(self.y1) - pad_y),
            min(frame_width, math.ceil(self.x2) + pad_x),
            min(frame_height, math.ceil(self.y2) + pad_y),
            self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        """``{kind, x1, y1, x2, y2, score}`` for JSON output."""
        return asdict(self)


class Detector(Protocol):
    """Finds faces and/or plates in a batch of BGR frames."""

    kinds: tuple[BoxKind, ...]

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return, for each frame in order, every box found in it."""
        ...


def boxes_from_arrays(
    kind: BoxKind, corners: np.ndarray, scores: np.ndarray, frame_width: int, frame_height: int
) -> list[Box]:
    """Round float ``(n, 4)`` corners outward to pixel boxes clipped to the frame; drop empty ones."""
    boxes = []
    for (x1, y1, x2, y2), score in zip(corners.tolist(), scores.tolist(), strict=True):
        box = Box(
            kind,
            max(0, int(np.floor(x1))),
            max(0, int(np.floor(y1))),
            min(frame_width, int(np.ceil(x2))),
            min(frame_height, int(np.ceil(y2))),
            round(float(score), 4),
        )
        if box.width > 0 and box.height > 0:
            boxes.append(box)
    return boxes


def non_maximum_suppression(corners: np.ndarray, scores: np.ndarray, overlap: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS at IoU ``overlap``."""
    if len(corners) == 0:
        return np.zeros(0, dtype=int)
    rects = [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in corners.tolist()]
    return np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, overlap), dtype=int).reshape(-1)
