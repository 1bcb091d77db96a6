"""A second, closer look at small plates the SSD's passes saw only weakly.

The plate SSD finds a plate nine times in ten once it is 50-250 px wide in its input, but only four times
in ten at 30-40 px (bench/README.md), and the largest pass of a 1280x720 frame shows a 40 px plate at 50
px. Such a plate usually leaves a box scoring 0.01-0.1, below the SSD's threshold, among many weak boxes
that are nothing. `second_look` takes the weak boxes that are small and plate-shaped and not already a
found plate, crops the frame around each with some of the car around it, shows the crop to the SSD
enlarged so the plate is ~80 px wide (`ZoomSettings.input_size`), and keeps a box found there with a
clear score near the weak one. A crop costs one small SSD pass (~5 ms), and a frame rarely has more
than a few candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from onshore.vision.boxes import non_maximum_suppression, overlaps


@dataclass(frozen=True, slots=True)
class ZoomSettings:
    """Which weak boxes get a second look and how.

    Attributes:
        floor: weakest SSD score taken as a candidate (the passes keep boxes down to this).
        max_width: widest candidate (frame px); wider plates are in the SSD's range in some pass.
        aspect: a candidate's width over its height, a plate's seen at an angle or cut by an edge.
        context: the crop is this many times the candidate's width (at ``input_size``'s aspect), so the
            plate is about ``input_size[0] / context`` px wide in the zoomed pass.
        input_size: the zoomed pass's SSD input ``(width, height)``.
        accept: the score a box in the zoomed pass needs.
        near: IoU with the candidate that a zoomed box needs to be its plate.
        found: IoU with an already found plate from which a candidate is that plate.
        most: candidates per frame at most, strongest first (bounds the cost).
    """

    floor: float = 0.01
    max_width: float = 100.0
    aspect: tuple[float, float] = (1.2, 8.0)
    context: float = 2.8
    input_size: tuple[int, int] = (224, 128)
    accept: float = 0.3
    near: float = 0.2
    found: float = 0.3
    most: int = 3


def zoom_candidates(detections: np.ndarray, found: np.ndarray, settings: ZoomSettings) -> np.ndarray:
    """The ``(n, 5)`` corners and scores among weak ``detections`` that deserve a second look.

    Small (`ZoomSettings.max_width`), plate-shaped (`ZoomSettings.aspect`) boxes, one per place (NMS at
    IoU 0.3), none overlapping a ``found`` plate by IoU above `ZoomSettings.found`, strongest first.
    """
    detections = detections.reshape(-1, 5)
    widths = detections[:, 2] - detections[:, 0]
    heights = detections[:, 3] - detections[:, 1]
    aspect = np.divide(widths, heights, out=np.zeros_like(widths), where=heights > 0)
    shaped = (widths <= settings.max_width) & (heights >= 3) & (aspect >= settings.aspect[0])
    candidates = detections[shaped & (aspect <= settings.aspect[1])]
    candidates = candidates[non_maximum_suppression(candidates[:, :4], candidates[:, 4], 0.3)]
    if len(found):
        known = found.reshape(-1, 4).astype(np.float64)
        fresh = [not (overlaps(known, box[:4].astype(np.float64))[0] > settings.found).any() for box in candidates]
        candidates = candidates[np.asarray(fresh, dtype=bool)]
    return candidates[np.argsort(-candidates[:, 4], kind="stable")][: settings.most]


def zoom_window(frame_width: int, frame_height: int, box: np.ndarray, settings: ZoomSettings) -> tuple[int, ...]:
    """``(x1, y1, x2, y2)`` of the crop around a candidate ``box``: `ZoomSettings.context` times its width,
    at the zoomed input's aspect, centred on it and clipped to the frame."""
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    width = max(float(box[2] - box[0]), 8.0) * settings.context
    height = width * settings.input_size[1] / settings.input_size[0]
    return (
        max(0, int(centre_x - width / 2)),
        max(0, int(centre_y - height / 2)),
        min(frame_width, int(np.ceil(centre_x + width / 2))),
        min(frame_height, int(np.ceil(centre_y + height / 2))),
    )


def second_look(
    frame: np.ndarray,
    candidates: np.ndarray,
    detect_crop: Callable[[np.ndarray], np.ndarray],
    settings: ZoomSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """``(m, 4)`` corners and ``(m,)`` scores of the plates that a closer look confirms among ``candidates``.

    ``detect_crop`` runs the SSD on a crop (letterboxed into `ZoomSettings.input_size`) and returns its
    ``(k, 5)`` corners (crop px) and scores of at least `ZoomSettings.accept`; of those overlapping the
    candidate by IoU above `ZoomSettings.near`, the strongest is the plate.
    """
    frame_height, frame_width = frame.shape[:2]
    corners, scores = [], []
    for candidate in candidates:
        x1, y1, x2, y2 = zoom_window(frame_width, frame_height, candidate, settings)
        if x2 - x1 < 8 or y2 - y1 < 8:
            continue
        seen = detect_crop(frame[y1:y2, x1:x2]).reshape(-1, 5).astype(np.float64)
        seen[:, [0, 2]] += x1
        seen[:, [1, 3]] += y1
        seen = seen[overlaps(seen[:, :4], candidate[:4].astype(np.float64))[0] > settings.near]
        if len(seen):
            best = seen[int(np.argmax(seen[:, 4]))]
            corners.append(best[:4])
            scores.append(best[4])
    return (
        np.asarray(corners, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32).reshape(-1),
    )
