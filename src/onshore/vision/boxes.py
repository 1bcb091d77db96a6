"""The box a detector returns, the `Detector` protocol, and how boxes from several passes are combined.

`boxes_from_arrays` turns a model's float corners into clipped pixel `Box` es; `non_maximum_suppression`
is the usual greedy suppression by score within one pass; `merge_by_geometry` combines the boxes of
several passes over the same frame (at different input sizes) by clustering them by overlap;
`add_unmatched` joins a second detector's boxes to the first's (or widens those they duplicate), and `one_box_per_plate`
merges the EU finder's own boxes.
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


def overlaps(corners: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and containment (intersection over the smaller area) of every row of ``corners`` with ``seed``."""
    inter_w = np.clip(np.minimum(corners[:, 2], seed[2]) - np.maximum(corners[:, 0], seed[0]), 0, None)
    inter_h = np.clip(np.minimum(corners[:, 3], seed[3]) - np.maximum(corners[:, 1], seed[1]), 0, None)
    inter = inter_w * inter_h
    areas = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    seed_area = (seed[2] - seed[0]) * (seed[3] - seed[1])
    union = areas + seed_area - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    smaller = np.minimum(areas, seed_area)
    containment = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    return iou, containment


def merge_by_geometry(
    corners: np.ndarray, scores: np.ndarray, overlap: float = 0.3, containment: float = 0.7
) -> tuple[np.ndarray, np.ndarray]:
    """One box per object from the boxes of several passes: clusters by geometry, fused by score.

    Boxes are taken strongest first; each still unclaimed box seeds a cluster of every unclaimed box
    that overlaps it at IoU above ``overlap`` or lies at least ``containment`` inside it (or it inside
    them: a partial box within a whole one, a plate within a car). The cluster becomes one box: the
    score-weighted mean of the corners of the seed and the boxes that overlap it by IoU (contained
    boxes of another size are absorbed, not averaged, so a car-sized box cannot stretch a plate), with
    the seed's score. A detector's score swings with the input scale, so a
    shifted box from an enlarged pass can outscore the well-placed one; averaging the cluster keeps
    either from winning alone (plate recall frame_sizes 0.88 -> 0.93, bench/README.md).

    Args:
        corners: ``(n, 4)`` float ``x1, y1, x2, y2``.
        scores: ``(n,)`` confidences, higher is better.
        overlap: IoU above which two boxes are one object.
        containment: share of the smaller box inside the larger from which two boxes are one object.

    Returns:
        ``(m, 4)`` corners and ``(m,)`` scores, ``m <= n``, strongest first.
    """
    if len(corners) == 0:
        return corners.reshape(0, 4).astype(np.float32), scores.reshape(0).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    corners, scores = corners[order].astype(np.float64), scores[order].astype(np.float64)
    free = np.ones(len(corners), dtype=bool)
    merged_corners, merged_scores = [], []
    for seed in range(len(corners)):
        if not free[seed]:
            continue
        iou, inside = overlaps(corners, corners[seed])
        alike = free & (iou > overlap)
        alike[seed] = True
        free &= ~(alike | (inside >= containment))
        weights = scores[alike]
        merged_corners.append((corners[alike] * weights[:, None]).sum(axis=0) / max(weights.sum(), 1e-12))
        merged_scores.append(scores[seed])
    return np.asarray(merged_corners, dtype=np.float32), np.asarray(merged_scores, dtype=np.float32)


def add_unmatched(
    corners: np.ndarray,
    scores: np.ndarray,
    extra: np.ndarray,
    extra_scores: np.ndarray,
    duplicate: float = 0.6,
    *,
    widen: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``corners`` and ``scores`` with every ``extra`` box that none of them already is (IoU > ``duplicate``).

    How a second detector's boxes join the first's: the first's are kept as they are (not averaged with the
    second's, which would shift a well-placed box), and a box of the second that overlaps one of them only
    partly is kept beside it, since either may be the better-placed one; the mask covers both.

    With ``widen``, an ``extra`` box that one of ``corners`` already is widens that box (the one it overlaps
    most) to the union of the two instead of being dropped. How the EU finder's boxes join the SSD's: a tilted
    or cut EU plate's SSD box often hugs its characters while the band plate follows its ground and slope; the
    union keeps one box per plate (precision as before) and the mask covers both (bench/README.md).
    """
    corners, scores = corners.reshape(-1, 4).astype(np.float32), scores.reshape(-1).astype(np.float32)
    extra, extra_scores = extra.reshape(-1, 4).astype(np.float32), extra_scores.reshape(-1).astype(np.float32)
    kept = corners.copy() if widen else corners
    new = []
    for index, box in enumerate(extra):
        iou = overlaps(corners, box)[0] if len(corners) else np.zeros(0, np.float32)
        if not (iou > duplicate).any():
            new.append(index)
        elif widen:
            best = int(np.argmax(iou))
            kept[best, :2] = np.minimum(kept[best, :2], box[:2])
            kept[best, 2:] = np.maximum(kept[best, 2:], box[2:])
    return np.concatenate([kept, extra[new]]), np.concatenate([scores, extra_scores[new]])


# A box inside another (this share of it) is the same plate if the larger is at most this many times as
# large (eu_sizes recall 0.922 -> 0.930 against absorbing every contained box, bench/README.md).
CONTAINED, ALIKE_AREA = 0.7, 8.0


def one_box_per_plate(corners: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The EU finder's band, edge and bottom plates (`onshore.vision.euplates`) merged to one box per plate.

    Boxes of one plate overlap (IoU > 0.5: averaged) or lie one inside another of about its size (the
    earlier absorbs the later); a box much smaller than the one around it is another plate, kept (a light
    car body ran the larger one on over it).
    """
    corners, scores = _without_contained_alike(corners, scores)
    return merge_by_geometry(corners, scores, overlap=0.5, containment=1.01)


def _without_contained_alike(corners: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boxes less those lying (by `CONTAINED`) inside or around an earlier one at most `ALIKE_AREA`
    times as large or small, not overlapping it by IoU: the two are one plate, absorbed as `merge_by_geometry`
    would."""
    areas = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    keep = np.ones(len(corners), dtype=bool)
    for index in range(len(corners)):
        if keep[index]:
            iou, inside = overlaps(corners, corners[index])
            alike = np.maximum(areas, areas[index]) <= ALIKE_AREA * np.minimum(areas, areas[index])
            later = np.arange(len(corners)) > index
            # Those overlapping by IoU are averaged with it by the merge instead.
            keep &= ~(later & (inside >= CONTAINED) & (iou <= 0.5) & alike)
    return corners[keep], scores[keep]
