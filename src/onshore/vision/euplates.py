"""European plates found by their look, beside the plate SSD that was trained on Chinese plates only.

An EU plate is a light (white or yellow) rectangle about 4.7 times as wide as high, with dark characters,
and a reflex-blue band at its left end. `eu_plate_candidates` looks for that band (a small, upright,
saturated blue blob), grows the plate from it over the light pixels on its right and keeps the result only
if it is plate-shaped and reads like a row of characters (`_reads_like_text`); each band also gives
a plate grown to the rows of the light ground beside it (`_ground_rows`: a band found in part), and a
tilted plate's box follows the slope of its row of characters to its right end (`_tilted`). A plate cut
by the frame's left edge shows no band: it is found by its row of dark characters on a light ground
starting at the edge (`_left_edge_plates`), boxed by that row (a light car body around a light plate
hides the plate's own rows, and followed along its slope); so is one cut by the right edge whose band shows
no blue (the mirrored frame). A band cut by the top or bottom of a close-up may be taller than a third of the
frame.
A plate cut by the bottom with only its characters' tops showing is boxed over them beside its cut band
(`onshore.vision.eubottom`); the boxes are merged to one per plate (`one_box_per_plate`).
Nothing here is tuned to one exact blue or white: the colour tests are ranges (`BLUE_HUE`,
`BLUE_SATURATION`), brightness is judged against the band's own surroundings (Otsu's threshold in the
window beside it), and the shape tests are those of the EU standard plate (520x110 mm, band 40-50 mm
wide) seen at an angle.
"""

from __future__ import annotations

import cv2
import numpy as np

from onshore.vision.boxes import one_box_per_plate
from onshore.vision.eubottom import bottom_cut_plates
from onshore.vision.euedges import chained, characters, row_extent, text_lines

# OpenCV hue (0-180), saturation and value (0-255) of the band's reflex blue, widened for cameras' colour casts.
BLUE_HUE = (96, 132)
BLUE_SATURATION = 90
BLUE_VALUE = 35
# The band is 40-50 mm wide and 110 mm high; seen at an angle or blurred its box is 0.2-0.9 as wide as high.
BAND_ASPECT = (0.2, 0.95)
# Shortest band (px) worth a look: a plate ~30 px wide has a band ~6 px high.
MIN_BAND_HEIGHT = 6
# A band cut by the frame's top or bottom shows only part of its height: as little as this, at most this
# many times as wide as it is high.
CUT_BAND_HEIGHT, CUT_BAND_ASPECT = 4, 3.0
# A whole plate's box is 2.5-7 times as wide as high (4.7 seen square on; wider boxes are cut at the top).
PLATE_ASPECT = (2.5, 7.0)
# Light-to-dark transitions along the plate's middle rows that a registration of 4-8 characters gives.
MIN_TRANSITIONS = 6
# A plate cut by the frame's right edge (as little as EDGE_ASPECT times as wide as high, a character or two
# showing) needs fewer; one cut at the top or bottom has a shorter band, so the plate may be CUT_REACH
# times wider than the band's height suggests.
EDGE_ASPECT, EDGE_TRANSITIONS = 0.8, 2
CUT_REACH = 3.0
# An EU plate seen square on is this many times as wide as high (520x110 mm).
EU_ASPECT = 520 / 110
# Where the light ground beside a band runs on past the window (into a light car body), the plate ends
# this many times an EU plate's width for the band's height from the band's left (90 % of the plates
# matched to a band end within 1.12 times, bench/README.md).
RUN_ON_REACH = 1.1
# The strip along the left edge searched for plates whose band is cut off (px, or an eighth of the frame's
# width; for a line that runs on past that, half the frame's width at the left edge, where a large plate
# cut by it shows no band, and a fifth at the right, where its band shows) and the light/dark steps they need.
EDGE_STRIP = (96, 8)
WIDE_STRIP = {"left": 2, "right": 5}
EDGE_TEXT_TRANSITIONS = 4
EDGE_GROUND_SHARE = 0.3
# The plate's ground beyond a row of characters each way, as a share of the row's height (characters are
# about 70 % of the plate's height), and the tallest row as a share of the frame's height (taller rows are
# building windows; a plate that large is the SSD's, or is found by its light rows).
CHARACTER_MARGIN, MAX_ROW_SHARE = 0.3, 0.1
# Share of a row beside the band that is light for the row to be the plate's ground.
GROUND_ROW_SHARE = 0.5
# Grey levels by which the median ground is lighter than the median stroke (~150 in daylight, ~60 at dusk).
MIN_CONTRAST = 40
# Share of the plate crop that is characters (dark), and the most of them that may be blue.
MIN_DARK_SHARE, MAX_DARK_SHARE = 0.08, 0.5
MAX_BLUE_STROKES = 0.15
# Slopes (rows per column) a tilted plate's rows are tried at, and the share of light they must gain.
TILTS = tuple(step / 20 for step in range(-6, 7))
TILT_GAIN = 1.3
TILT_COLUMNS = 48
_TILT_ARRAY = np.asarray(TILTS)
# The score given to a plate found by its band (the SSD's boxes score 0.1-1).
EU_SCORE = 0.5

Band = tuple[int, int, int, int]
Corners = tuple[float, float, float, float]


def blue_mask(hsv: np.ndarray) -> np.ndarray:
    """Pixels of an HSV frame of the band's blue (`BLUE_HUE`, `BLUE_SATURATION`, `BLUE_VALUE`)."""
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (hue >= BLUE_HUE[0]) & (hue <= BLUE_HUE[1]) & (saturation >= BLUE_SATURATION) & (value >= BLUE_VALUE)


def _band_blobs(blue: np.ndarray) -> list[Band]:
    """``(x, y, w, h)`` of upright blue blobs shaped like an EU plate's band."""
    mask = cv2.morphologyEx(blue.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    frame_height = blue.shape[0]
    blobs = []
    for x, y, w, h, area in stats[1:count].tolist():
        # A band is 46 / 520 of its plate's width, and a plate cut at the top or bottom still fits the frame's
        # width: a wide blue blob there (the sky, a car's roof) is no band.
        touches = y <= 1 or y + h >= frame_height - 1
        cut = touches and w <= blue.shape[1] * 46 / 520
        upright = BAND_ASPECT[0] <= w / h <= (CUT_BAND_ASPECT if cut else BAND_ASPECT[1]) if h else False
        shortest = CUT_BAND_HEIGHT if cut else MIN_BAND_HEIGHT
        # A close-up plate cut by the top or bottom may have a band taller than a third of the frame.
        tallest = frame_height if touches and upright else frame_height / 3
        if shortest <= h <= tallest and upright and area >= 0.45 * w * h:
            blobs.append((x, y, w, h))
    return blobs


def _reads_like_text(gray: np.ndarray, light: np.ndarray, blue: np.ndarray, transitions: int) -> bool:
    """Whether the middle rows of a plate crop cross dark strokes on a light ground often enough.

    The strokes must not be blue: a Chinese blue plate's ground between its white characters would
    otherwise pass for a band beside a light plate.
    """
    height = gray.shape[0]
    if height < 3 or gray.shape[1] < 8:
        return False
    dark_share = 1.0 - float(light.mean())
    if not MIN_DARK_SHARE <= dark_share <= MAX_DARK_SHARE:
        return False
    if float(blue[~light].mean()) > MAX_BLUE_STROKES:
        return False
    rows = light[max(0, round(height * 0.35)) : max(1, round(height * 0.65))]
    steps = np.abs(np.diff(rows.astype(np.int8), axis=1)).sum(axis=1)
    return int(steps.max(initial=0)) >= transitions


def _light_run(rows: np.ndarray) -> int | None:
    """How many columns the light ground in ``rows`` (a light mask) runs from its left end, or ``None``.

    The run must start within a third of the rows' height and ends before a gap of half their height
    without light columns (at least 35 % light).
    """
    height = rows.shape[0]
    columns = np.flatnonzero(rows.mean(axis=0) >= 0.35)
    if columns.size == 0 or columns[0] > max(2, height * 0.3):
        return None
    breaks = np.flatnonzero(np.diff(columns) > max(2, height * 0.5))
    return int(columns[breaks[0]] if breaks.size else columns[-1]) + 1


def _plate_text(crop: np.ndarray, threshold: float, blue: np.ndarray, transitions: int) -> np.ndarray | None:
    """The light mask of a plate crop whose ground is `MIN_CONTRAST` above its strokes and that reads
    like text (`_reads_like_text`), else ``None``."""
    light = crop > threshold
    if not light.any() or light.all():
        return None
    if float(np.median(crop[light])) - float(np.median(crop[~light])) < MIN_CONTRAST:
        return None
    return light if _reads_like_text(crop, light, blue, transitions) else None


def _ground_rows(light: np.ndarray, y: int, h: int, width: int) -> tuple[int, int]:
    """The rows the plate's light ground spans beside a band found at rows ``y`` to ``y + h``.

    The band is often found only in part (the country code splits it; the stars ring can too), and a
    plate seen at an angle is taller than its band: the rows are grown up and down, up to the band's
    height each way, while at least `GROUND_ROW_SHARE` of a row is light, as long as the plate stays at
    least `PLATE_ASPECT` wide for its height (else the band's rows are kept: a light car body around it).
    """
    shares = light.mean(axis=1)
    top, bottom = y, y + h
    while top > max(0, y - h) and shares[top - 1] >= GROUND_ROW_SHARE:
        top -= 1
    while bottom < min(len(shares), y + 2 * h) and shares[bottom] >= GROUND_ROW_SHARE:
        bottom += 1
    if width / (bottom - top) < PLATE_ASPECT[0]:
        return y, y + h
    return top, bottom


def _plate_from_band(
    gray: np.ndarray, blue: np.ndarray, band: Band, tilts: dict[Band, Corners], *, grow: bool = False
) -> Corners | None:
    """The plate box grown from a band over the light pixels on its right, or ``None`` if none fits.

    ``tilts`` keeps each band's tilted box (`_tilted`), which its plate with and without grown rows share.
    """
    x, y, w, h = band
    frame_height, frame_width = gray.shape
    # A band cut by the frame's top or bottom is shorter than the plate is high: look further right.
    cut_rows = y <= 1 or y + h >= frame_height - 1
    expected = h * EU_ASPECT * (CUT_REACH if cut_rows else 1.0)
    left, right = x + w, min(frame_width, round(x + w + expected * 1.25))
    top, bottom = max(0, round(y - 0.25 * h)), min(frame_height, round(y + 1.25 * h))
    if right - left < 2 * h * 0.6 or bottom - top < 3:
        return None
    window = gray[top:bottom, left:right]
    threshold, _ = cv2.threshold(window, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light = window > threshold
    # Light columns next to the band, within the band's rows: the plate's ground reaches as far as they do.
    run = _light_run(light[y - top : y - top + h])
    if run is None:
        return None
    x2 = left + run if run < right - left else min(right, round(x + expected * RUN_ON_REACH))
    y1, y2 = _ground_rows(gray[:, left:x2] > threshold, y, h, x2 - x) if grow else (y, y + h)
    box = (float(x), float(y1), float(x2), float(y2))
    y, h = y1, y2 - y1
    aspect = (box[2] - box[0]) / h
    # A plate cut by the frame's right edge may be any width; one cut at the top or bottom any height.
    low = EDGE_ASPECT if x2 >= frame_width - 1 else PLATE_ASPECT[0]
    high = PLATE_ASPECT[1] * (CUT_REACH if cut_rows else 1.0)
    if not low <= aspect <= high:
        return None
    transitions = MIN_TRANSITIONS if aspect >= PLATE_ASPECT[0] else EDGE_TRANSITIONS
    if x2 >= frame_width - 1:
        # Cut by the right edge, it shows steps in proportion to the share of its width that shows.
        transitions = min(MIN_TRANSITIONS, max(EDGE_TRANSITIONS, round(MIN_TRANSITIONS * aspect / EU_ASPECT)))
    # The window's split may be plate | dark surroundings, taking faint characters for ground: the plate's
    # own split is tried too.
    crop = gray[y : y + h, left:x2]
    own, _ = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if all(_plate_text(crop, level, blue[y : y + h, left:x2], transitions) is None for level in (threshold, own)):
        return None
    # A tilted plate's rows follow its slope (both the band's and the grown rows give way to them).
    band_rows = (float(x), float(band[1]), float(x2), float(band[1] + band[3]))
    if band not in tilts:
        tilts[band] = _tilted(gray, threshold, band_rows, left)
    tilted = tilts[band]
    return box if tilted == band_rows else tilted


def _tilted(gray: np.ndarray, threshold: float, box: Corners, left: int) -> Corners:
    """``box`` grown to a tilted plate's extent: its rows follow the slope of its row of characters.

    The dark pixels beside the band, counted along rows sheared by the plate's slope, give the profile
    with the sharpest steps (the characters' row and the ground's edges line up); the slope is taken from
    `TILTS` where its steps are `TILT_GAIN` times stronger than the unsheared profile's, else the box stays.
    Only rows that every shear covers in full are compared, so an even background weighs alike in all.
    """
    x1, y1, x2, y2 = (round(v) for v in box)
    length = x2 - left
    reach = round(max(TILTS) * length) + 1
    top = y1 - 2 * reach
    if length < 8:
        return box
    # Every few columns are enough to line the characters up (at most `TILT_COLUMNS` of them). Rows beyond
    # the frame (a large plate near its edge) repeat its edge row, so that its background stays even.
    columns = np.arange(0, length, max(1, length // TILT_COLUMNS))
    rows_around = np.clip(np.arange(top, y2 + 2 * reach), 0, gray.shape[0] - 1)
    rows, picked = np.nonzero(gray[rows_around[:, None], left + columns] <= threshold)
    height = y2 - y1 + 4 * reach
    # The dark pixels' sheared rows for every slope at once, one profile of ``height`` bins per slope.
    sheared = rows[None, :] - np.round(_TILT_ARRAY[:, None] * columns[picked][None, :]).astype(np.intp)
    sheared += np.arange(len(TILTS))[:, None] * height
    profiles = np.bincount(sheared.ravel(), minlength=len(TILTS) * height).reshape(len(TILTS), height)
    steps = (np.diff(profiles[:, reach : height - reach].astype(np.float64), axis=1) ** 2).sum(axis=1)
    best = int(np.argmax(steps))
    flat = TILTS.index(0.0)
    if best == flat or steps[best] < steps[flat] * TILT_GAIN:
        return box
    rise = TILTS[best] * (x2 - x1)
    return (box[0], box[1] + min(0.0, rise), box[2], box[3] + max(0.0, rise))


def _left_edge_plates(gray: np.ndarray, blue: np.ndarray, wide_share: int) -> list[Corners]:
    """Plates cut by the frame's left edge, whose band is outside it: a row of dark characters at the edge.

    Run on the mirrored frame too, for plates cut by the right edge whose band does not show blue. A line
    that runs past the strip is looked at again up to ``1 / wide_share`` of the frame's width.

    Dark strokes on a lighter ground (a black-hat of the strip along the left edge) are joined into text
    lines; a line that starts at the edge gives a plate around its row of characters
    (`_by_character_row`), else around the rows of its light ground (`_by_ground`).
    """
    frame_height, frame_width = gray.shape
    narrow, wide = (min(frame_width, max(EDGE_STRIP[0], frame_width // share)) for share in (EDGE_STRIP[1], wide_share))
    pieces = text_lines(gray[:, :narrow], MIN_CONTRAST)
    plates = []
    for x, y, w, h in pieces.tolist():
        if x > max(2, h // 2) or h < MIN_BAND_HEIGHT or h > frame_height / 3:
            continue
        w = chained(pieces, x, y, w, h)
        if x + w >= narrow:
            # The line may go on past the strip: it is looked at again in a wider one, in its own rows.
            top = max(0, y - h)
            more = text_lines(gray[top : min(frame_height, y + 2 * h), :wide], MIN_CONTRAST) + np.array([0, top, 0, 0])
            same = np.flatnonzero(
                (more[:, 0] <= x) & (more[:, 1] <= y + h // 2) & (more[:, 1] + more[:, 3] > y + h // 2)
            )
            if same.size == 0:
                continue
            x, y, w, h = more[same[np.argmax(more[same, 2])]].tolist()
            w = chained(more, x, y, w, h)
            if x + w >= wide or h < MIN_BAND_HEIGHT:
                continue
        plate = _by_character_row(gray, blue, (x, y, w, h)) or _by_ground(gray, blue, (x, y, w, h))
        if plate is not None:
            plates.append(plate)
    return plates


def _edge_plate(gray: np.ndarray, blue: np.ndarray, rows: tuple[int, int], x2: int, threshold: float) -> Corners | None:
    """The plate ``(0, y1, x2, y2)`` at the left edge if it is plate-shaped, reads like text with the tests
    a band's plate passes (4 steps) and holds a row of two or more characters (`characters`).

    A tilted plate's rows are those the slope of its characters (`_tilted`) spreads about the row found,
    half its rise each way (eu_sizes seed 7: a 380 px plate cut at the left and bottom, IoU 0.48 -> 0.5+).
    """
    y1, y2 = rows
    if y2 - y1 < MIN_BAND_HEIGHT or not EDGE_ASPECT <= x2 / (y2 - y1) <= PLATE_ASPECT[1]:
        return None
    light = _plate_text(gray[y1:y2, :x2], threshold, blue[y1:y2, :x2], EDGE_TEXT_TRANSITIONS)
    if light is None or characters(light) < 2:
        return None
    box = (0.0, float(y1), float(x2), float(y2))
    tilted = _tilted(gray, threshold, box, 0)
    if tilted == box:
        return box
    # The row of characters lies about the middle of a tilted plate's rows: they spread both ways.
    rise = (tilted[3] - tilted[1]) - (y2 - y1)
    return (0.0, max(0.0, y1 - rise / 2), float(x2), min(float(gray.shape[0]), y2 + rise / 2))


def _by_ground(gray: np.ndarray, blue: np.ndarray, line: Band) -> Corners | None:
    """The plate around a text line at the left edge: the longest run of rows about it (a quarter of its
    height beyond it each way) that are mostly light, its ground (the line may hold its dark surroundings)."""
    x, y, w, h = line
    margin = round(h * 0.25)
    y1, y2, x2 = max(0, y - margin), min(gray.shape[0], y + h + margin), min(gray.shape[1], x + w + margin)
    window = gray[y1:y2, :x2]
    threshold, _ = cv2.threshold(window, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ground = np.concatenate([[False], (window > threshold).mean(axis=1) >= EDGE_GROUND_SHARE, [False]])
    edges = np.flatnonzero(np.diff(ground.astype(np.int8)))
    if edges.size == 0:
        return None
    starts, ends = edges[::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return _edge_plate(gray, blue, (y1 + int(starts[longest]), y1 + int(ends[longest])), x2, threshold)


def _by_character_row(gray: np.ndarray, blue: np.ndarray, line: Band) -> Corners | None:
    """The plate around the row of characters in a text line at the left edge, or ``None``.

    A plate's light rows run on into a light car body, and its text line may take in a dark one: the dark
    blobs of the line (Otsu's split) shaped like characters and sharing their top and height (`row_extent`)
    give the plate's rows, `CHARACTER_MARGIN` of their height beyond them each way, and its right end; a row
    more than `MAX_ROW_SHARE` of the frame high gives none.
    """
    x, y, w, h = line
    window = gray[y : y + h, : x + w]
    split, _ = cv2.threshold(window, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    extent = row_extent(window <= split)
    if extent is None:
        return None
    top, bottom, right = extent
    if bottom - top > gray.shape[0] * MAX_ROW_SHARE:
        return None
    margin = (bottom - top) * CHARACTER_MARGIN
    y1, y2 = max(0, round(y + top - margin)), min(gray.shape[0], round(y + bottom + margin))
    x2 = min(gray.shape[1], round(right + margin))
    threshold, _ = cv2.threshold(gray[y1:y2, :x2], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return _edge_plate(gray, blue, (y1, y2), x2, threshold)


def _edge_plates(gray: np.ndarray, blue: np.ndarray) -> list[Corners]:
    """The plates cut by the left edge (`_left_edge_plates`) and those cut by the right, on the mirrored frame."""
    width = gray.shape[1]
    mirrored = _left_edge_plates(gray[:, ::-1], blue[:, ::-1], WIDE_STRIP["right"])
    return _left_edge_plates(gray, blue, WIDE_STRIP["left"]) + [
        (width - x2, y1, width - x1, y2) for x1, y1, x2, y2 in mirrored
    ]


def eu_plate_candidates(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 4)`` corners and ``(n,)`` scores of EU-format plates found by their blue band in a BGR frame."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_BGR2HSV)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    blue = blue_mask(hsv)
    bands = _band_blobs(blue)
    tilts: dict[Band, Corners] = {}
    # A plate cut by the bottom is boxed over its character tops first: its band's own plate, a few columns
    # of light beside the band, would otherwise absorb it in the merge.
    boxes = bottom_cut_plates(gray, bands, MIN_CONTRAST)
    boxes += [
        box
        for band in bands
        for grow in (False, True)
        if (box := _plate_from_band(gray, blue, band, tilts, grow=grow)) is not None
    ]
    boxes += _edge_plates(gray, blue)
    corners = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.full(len(corners), EU_SCORE, dtype=np.float32)
    if len(corners) < 2:
        return corners, scores
    return one_box_per_plate(corners, scores)
