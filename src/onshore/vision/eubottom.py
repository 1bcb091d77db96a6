"""EU plates cut by the frame's bottom edge with only their top rows showing (`onshore.vision.euplates`).

Such a plate shows a band only a few pixels high (cut too, `euplates` finds it as a cut band), its light
ground, and in the last rows the tops of its characters; the light columns beside the band that give a
whole plate its width are broken there by the characters' tops and the tilted plate's border. The plate
runs instead from the band over its row of character tops: dark blobs beside the band (Otsu's split)
that reach the frame's last row, narrow and a character's width or less apart, at least `MIN_TOPS` of
them; its rows from the band's (grown up over the light ground, a tilted plate's higher end) to the
bottom. It is kept if it is `MIN_ASPECT` wide for its height and its ground `contrast` lighter than its
strokes.
"""

from __future__ import annotations

import cv2
import numpy as np

# The band is 46 of the plate's 520 mm; the tops are looked for this many plate widths (by the band's
# width, which is blurred to a pixel or two) beside it.
BAND_SHARE, SEARCH_REACH = 46 / 520, 1.5
# Character tops a row needs, the widest top as a share of the searched width, and the widest gap
# between neighbours as a share of the widest top in the row (a space between groups is about one).
MIN_TOPS, TOP_WIDTH, TOP_GAP = 3, 0.25, 2.0
# The first top within this share of the searched width from the band.
FIRST_TOP = 0.3
# A plate cut this short is at least this many times as wide as high; the plate's ground beyond its last
# top as a share of the row's width; share of a row that is light for it to be the plate's ground, and how
# far above the band (a share of its height) a tilted plate's ground may rise (a light car body above the
# plate would otherwise be taken for it: 0.5 against 1.0 and 0, bench/README.md).
MIN_ASPECT, MARGIN_RIGHT, GROUND_SHARE, GROUND_REACH = 2.5, 0.05, 0.5, 0.5

Band = tuple[int, int, int, int]
Corners = tuple[float, float, float, float]


def bottom_cut_plates(gray: np.ndarray, bands: list[Band], contrast: float) -> list[Corners]:
    """``(x1, y1, x2, y2)`` of the plates of ``bands`` (``x, y, w, h``) cut by the grey frame's bottom."""
    frame_height = gray.shape[0]
    plates = []
    for band in bands:
        _, y, _, h = band
        if y + h < frame_height - 1:
            continue
        plate = _plate_over_tops(gray, band, contrast)
        if plate is not None:
            plates.append(plate)
    return plates


def _plate_over_tops(gray: np.ndarray, band: Band, contrast: float) -> Corners | None:
    """The plate beside a band cut by the bottom, over its row of character tops, or ``None``."""
    frame_height, frame_width = gray.shape
    x, y, w, h = band
    left = x + w
    right = min(frame_width, round(x + SEARCH_REACH * w / BAND_SHARE))
    if right - left < 3 * h:
        return None
    window = gray[y:, left:right]
    threshold, _ = cv2.threshold(window, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light = window > threshold
    end = _last_top(~light)
    if end is None:
        return None
    x2 = min(frame_width, round(left + end * (1 + MARGIN_RIGHT)))
    # A tilted plate's ground rises above its band at one end: the rows grow up while they are light.
    y1 = y
    reach = round(h * GROUND_REACH)
    while y1 > max(0, y - reach) and (gray[y1 - 1, left:x2] > threshold).mean() >= GROUND_SHARE:
        y1 -= 1
    if (x2 - x) / (frame_height - y1) < MIN_ASPECT:
        return None
    crop = gray[y1:, left:x2]
    bright = crop > threshold
    if bright.all() or not bright.any():
        return None
    if float(np.median(crop[bright])) - float(np.median(crop[~bright])) < contrast:
        return None
    return (float(x), float(y1), float(x2), float(frame_height))


def _last_top(dark: np.ndarray) -> int | None:
    """The right end of the row of character tops in a dark mask beside a band: blobs that reach its last
    row, narrow for it, the first near its left end and each `TOP_GAP` of the widest or less from the last."""
    height, width = dark.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(dark.astype(np.uint8), connectivity=8)
    tops = sorted(
        (bx, bx + bw) for bx, by, bw, bh, _ in stats[1:count].tolist() if by + bh >= height and bw <= TOP_WIDTH * width
    )
    if not tops or tops[0][0] > FIRST_TOP * width:
        return None
    widest = tops[0][1] - tops[0][0]
    end, found = tops[0][1], 1
    for start, stop in tops[1:]:
        widest = max(widest, stop - start)
        if start - end > TOP_GAP * widest:
            break
        end, found = max(end, stop), found + 1
    return end if found >= MIN_TOPS else None
