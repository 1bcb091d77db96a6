"""A second plate detector: HyperLPR's LBP cascade from the ``hyperlpr2`` wheel, joined to the SSD's plates.

The wheel ships, beside the SSD, the cascade its first versions found plates with
(``models/cascade/detector/detector_ch.xml``: 15 boosted stages of LBP features on a 64x16 window, trained on
Chinese plates). It is run here with OpenCV's ``CascadeClassifier`` on the grey frame; none of the wheel's
code is imported. Its boxes hug the row of characters (a quarter as high as wide), so each is grown about its
centre to the shape of a labelled plate (`CascadeSettings.grow`).

Measured on the eval sets (bench/README.md, "A second plate detector: the LBP cascade"): alone it finds no
plate under ~64 px wide (its window), a third to three quarters of the larger ones, almost no EU plate.
Joined to the SSD's plates it adds the few 65-115 px Chinese plates the SSD gives no box at all (street_small
seed 7 recall 0.966 -> 0.977, none on seed 21), at about the SSD's own cost per frame: an opt-in detector
(``plate-ssd-cascade``), not the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from onshore.errors import OnshoreError
from onshore.vision.boxes import overlaps
from onshore.vision.wheels import wheel_file

CASCADE_FILE = "models/cascade/detector/detector_ch.xml"


@dataclass(frozen=True, slots=True)
class CascadeSettings:
    """How the cascade is run and which of its boxes join the SSD's plates.

    Attributes:
        scale_factor: ``detectMultiScale``'s step between window sizes (1.1 costs twice as much as 1.2 and
            finds no more plates the SSD misses).
        min_neighbours: overlapping windows a box needs (``minNeighbors``).
        grow: ``(width, height)`` factors a box is grown by about its centre: the cascade's box covers the
            characters, a plate's label the whole plate (on the CCPD photos 1.2-1.8 times as high).
        separate: IoU with a found plate up to which a cascade box is another plate; one overlapping a found
            plate more is that plate seen twice (on the eval sets such boxes only cost precision).
        colour_share: the share of a box's pixels of a plate colour (`plate_colour_share`) it needs: a
            cascade box on a car's grille, a window or a sign is rarely blue, green or yellow.
        score: the confidence given to a cascade box (the cascade has none comparable with the SSD's).
    """

    scale_factor: float = 1.2
    min_neighbours: int = 3
    grow: tuple[float, float] = (1.1, 1.5)
    separate: float = 0.2
    colour_share: float = 0.4
    score: float = 0.3


class PlateCascade:
    """HyperLPR's LBP plate cascade (``hyperlpr2`` wheel) on OpenCV; not thread-safe, like the SSD.

    Raises:
        OnshoreError: the cascade file is missing from the wheel or does not load.
    """

    def __init__(self, settings: CascadeSettings | None = None) -> None:
        self.settings = settings or CascadeSettings()
        path = wheel_file("hyperlpr2", CASCADE_FILE)
        self._classifier = cv2.CascadeClassifier(str(path))
        if self._classifier.empty():
            raise OnshoreError(f"plate cascade {str(path)!r} does not load; reinstall hyperlpr2")
        width, height = self._classifier.getOriginalWindowSize()
        self.window = (int(width), int(height))

    def find(self, frame: np.ndarray) -> np.ndarray:
        """``(n, 4)`` float corners of the plates the cascade finds in a BGR frame, grown to a plate's shape."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        rects = self._classifier.detectMultiScale(
            grey, self.settings.scale_factor, self.settings.min_neighbours, minSize=self.window
        )
        return grow_boxes(np.asarray(rects, dtype=np.float32).reshape(-1, 4), self.settings.grow)


def grow_boxes(rects: np.ndarray, grow: tuple[float, float]) -> np.ndarray:
    """``(n, 4)`` corners of ``(n, 4)`` ``x, y, width, height`` rectangles grown by ``grow`` about their centres."""
    centres = rects[:, :2] + rects[:, 2:] / 2
    halves = rects[:, 2:] * np.array(grow, dtype=np.float32) / 2
    return np.concatenate([centres - halves, centres + halves], axis=1).astype(np.float32)


def confirmed_plates(
    frame: np.ndarray,
    found: np.ndarray,
    candidates: np.ndarray,
    settings: CascadeSettings,
    colour_share: Callable[[np.ndarray], float],
) -> tuple[np.ndarray, np.ndarray]:
    """``(m, 4)`` corners and ``(m,)`` scores of the cascade's ``candidates`` that are plates of their own.

    A candidate is kept when no ``found`` plate overlaps it by IoU above `CascadeSettings.separate` and at
    least `CascadeSettings.colour_share` of its pixels in ``frame`` are of a plate colour by ``colour_share``
    (`onshore.vision.plates.plate_colour_share`, which takes a BGR crop).
    """
    height, width = frame.shape[:2]
    found = found.reshape(-1, 4).astype(np.float32)
    kept = []
    for box in candidates.reshape(-1, 4):
        if len(found) and (overlaps(found, box)[0] > settings.separate).any():
            continue
        x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
        x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        if x2 > x1 and y2 > y1 and colour_share(frame[y1:y2, x1:x2]) >= settings.colour_share:
            kept.append(box)
    corners = np.asarray(kept, dtype=np.float32).reshape(-1, 4)
    return corners, np.full(len(corners), settings.score, dtype=np.float32)
