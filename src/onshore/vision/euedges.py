"""Text lines and rows of characters, for EU plates found without their band (`onshore.vision.euplates`).

A plate cut by the frame's edge is found by its registration: dark strokes on a light ground joined into
text lines (`text_lines`, `chained`), and in them a row of blobs shaped like characters that share their
top and height (`row_extent`, `characters`), which a face's eyes and mouth or a grille's slats do not.
"""

from __future__ import annotations

import cv2
import numpy as np

# The black-hat kernel (px) that finds the characters' strokes; lines are closed along their rows by as much.
STROKE_KERNEL = 11
# A character's height as a share of the plate's, and by how much of it a row's tops and heights may differ.
CHARACTER_HEIGHT = (0.3, 0.95)
CHARACTER_ROW = 0.15
# The shortest character (px) a row is looked for from.
MIN_CHARACTER = 4
# A text line split by a space goes on to a piece this much of its height away and of about its height.
LINE_GAP, LINE_HEIGHT = 0.8, (0.6, 1.5)


def text_lines(strip: np.ndarray, depth: float) -> np.ndarray:
    """``(n, 4)`` boxes ``x, y, w, h`` of the text lines in a strip: dark strokes on a lighter ground (a
    black-hat, at least ``depth`` grey levels deep) closed along the rows."""
    strip = np.ascontiguousarray(strip)
    strokes = cv2.morphologyEx(strip, cv2.MORPH_BLACKHAT, np.ones((STROKE_KERNEL, STROKE_KERNEL), np.uint8))
    lines = cv2.morphologyEx(
        (strokes >= depth).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, STROKE_KERNEL), np.uint8)
    )
    count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    return stats[1:count, :4]


def chained(pieces: np.ndarray, x: int, y: int, w: int, h: int) -> int:
    """The width of a text line ``(x, y, w, h)`` with the ``pieces`` (rows ``x, y, w, h``) that go on it.

    A space between groups of characters may split the line: a piece of about its height (`LINE_HEIGHT`)
    on the same rows (half its height shared) within `LINE_GAP` of its height to its right joins it.
    """
    px, py, pw, ph = pieces.T
    shared = np.minimum(y + h, py + ph) - np.maximum(y, py)
    alike = (shared >= 0.5 * h) & (ph >= LINE_HEIGHT[0] * h) & (ph <= LINE_HEIGHT[1] * h)
    while True:
        near = alike & (px > x + w) & (px <= x + w + LINE_GAP * h)
        if not near.any():
            return w
        w = int((px + pw)[near].max()) - x


def characters(light: np.ndarray) -> int:
    """The most dark blobs of a plate crop shaped like characters (tall for the crop, not wide) in one row.

    A row of characters shares its top and height (within `CHARACTER_ROW` of the crop's height); a
    face's eyes and mouth, a grille's slats do not.
    """
    height = light.shape[0]
    count, _, stats, _ = cv2.connectedComponentsWithStats((~light).astype(np.uint8), connectivity=8)
    shapes = np.array(
        [
            (y, h)
            for _, y, w, h, _ in stats[1:count].tolist()
            if CHARACTER_HEIGHT[0] * height <= h <= CHARACTER_HEIGHT[1] * height and w <= height
        ]
    ).reshape(-1, 2)
    if len(shapes) < 2:
        return len(shapes)
    alike = (np.abs(shapes[:, None, :] - shapes[None, :, :]) <= CHARACTER_ROW * height).all(axis=2)
    return int(alike.sum(axis=1).max())


def row_extent(dark: np.ndarray) -> tuple[int, int, int] | None:
    """``(top, bottom, right)`` of the largest row of two or more character-shaped blobs in a dark mask.

    Blobs at least `MIN_CHARACTER` px high and at most twice as wide as high (two characters blurred into
    one) belong to one row when their tops and heights differ by at most `CHARACTER_ROW` of the taller
    one's height; the row must start within a character's height of the left end.
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats(dark.astype(np.uint8), connectivity=8)
    blobs = np.array([s for s in stats[1:count, :4].tolist() if s[3] >= MIN_CHARACTER and s[2] <= 2 * s[3]])
    if len(blobs) < 2:
        return None
    tops, heights = blobs[:, 1], blobs[:, 3]
    tolerance = CHARACTER_ROW * np.maximum(heights[:, None], heights[None, :])
    alike = (np.abs(tops[:, None] - tops) <= tolerance) & (np.abs(heights[:, None] - heights) <= tolerance)
    seed = int(np.argmax(alike.sum(axis=1) * 1000 + heights))
    row = blobs[alike[seed]]
    if len(row) < 2 or row[:, 0].min() > row[:, 3].max():
        return None
    return int(row[:, 1].min()), int((row[:, 1] + row[:, 3]).max()), int((row[:, 0] + row[:, 2]).max())
