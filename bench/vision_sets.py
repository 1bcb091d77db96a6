"""Evaluation sets of every frame size and of European plates, built at run time (bench/README.md).

Nothing here is written to disk: every frame is built in memory from ``../shared/data/images`` with a
seeded generator, so the same seed gives the same pixels and labels on every machine.

- `build_size_frames`: frames 320-1920 px wide (landscape, square and portrait) cropped and scaled out of
  large street scenes and the labelled photos, each around one anchor object whose width is drawn from a
  plate band (30-50, 50-100, 100-200, 200-500 px) or a face band (10-24, 24-64, 64-160, 160-300 px).
- `europeanise`: the CCPD photos with their Chinese plate covered by a synthesised EU plate warped onto
  the plate's own corners; with `build_street_scenes` and `build_size_frames` they give the EU sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


@dataclass
class LabelledFrame:
    """A BGR image and its ground-truth boxes ``(kind, x1, y1, x2, y2)`` in pixels."""

    name: str
    image: np.ndarray
    labels: list[tuple[str, float, float, float, float]] = field(default_factory=list)


PLATE_BANDS = ((30.0, 50.0), (50.0, 100.0), (100.0, 200.0), (200.0, 500.0))
FACE_BANDS = ((10.0, 24.0), (24.0, 64.0), (64.0, 160.0), (160.0, 300.0))
ASPECTS = (16 / 9, 16 / 9, 4 / 3, 3 / 2, 1.0, 3 / 4)
MIN_LABEL_WIDTH = {"plate": 30.0, "face": 10.0}  # smaller incidental objects are not counted
MAX_ENLARGEMENT = 2.5  # close-ups never enlarge a source photo more than this


def _crop_scaled(
    source: LabelledFrame, x0: int, y0: int, crop_w: int, crop_h: int, width: int, height: int, name: str
) -> LabelledFrame:
    """The window ``(x0, y0, crop_w, crop_h)`` of ``source`` resized to ``width x height``, labels with it.

    A label keeps its visible part if at least 30 % of its area shows and it is at least
    `MIN_LABEL_WIDTH` wide at the new scale.
    """
    crop = source.image[y0 : y0 + crop_h, x0 : x0 + crop_w]
    scale_x, scale_y = width / crop_w, height / crop_h
    interpolation = cv2.INTER_AREA if scale_x < 1 else cv2.INTER_LINEAR
    image = cv2.resize(crop, (width, height), interpolation=interpolation)
    labels = []
    for kind, x1, y1, x2, y2 in source.labels:
        full = ((x1 - x0) * scale_x, (y1 - y0) * scale_y, (x2 - x0) * scale_x, (y2 - y0) * scale_y)
        seen = (max(0.0, full[0]), max(0.0, full[1]), min(float(width), full[2]), min(float(height), full[3]))
        if seen[2] <= seen[0] or seen[3] <= seen[1] or full[2] - full[0] < MIN_LABEL_WIDTH[kind]:
            continue
        if (seen[2] - seen[0]) * (seen[3] - seen[1]) >= 0.3 * (full[2] - full[0]) * (full[3] - full[1]):
            labels.append((kind, *seen))
    return LabelledFrame(name, image, labels)


def build_size_frames(sources: list[LabelledFrame], count: int, seed: int, prefix: str) -> list[LabelledFrame]:
    """``count`` frames 320-1920 px wide, alternately around a plate and a face of a chosen width band.

    For each frame: a width log-uniform in 320-1920, an aspect from 16:9, 4:3, 3:2, 1:1 and 3:4; a band
    (round-robin) and an anchor width log-uniform in it (at most 85 % of the frame width for plates and
    70 % of the shorter side for faces); then a random anchor object of ``sources`` for which the window
    fits inside its source and the enlargement is at most `MAX_ENLARGEMENT`, the window placed at random
    around it. Draws that fit no source are redrawn (so the largest frames hold fewer of the smallest
    plates than a uniform draw would).
    """
    rng = np.random.default_rng(seed)
    frames: list[LabelledFrame] = []
    for index in range(count):
        kind = "plate" if index % 2 == 0 else "face"
        bands = PLATE_BANDS if kind == "plate" else FACE_BANDS
        low, high = bands[(index // 2) % len(bands)]
        for _ in range(200):
            width = round(float(np.exp(rng.uniform(np.log(320), np.log(1920)))))
            height = round(width / ASPECTS[int(rng.integers(len(ASPECTS)))])
            cap = 0.85 * width if kind == "plate" else 0.7 * min(width, height)
            target = float(np.exp(rng.uniform(np.log(low), np.log(min(high, cap))))) if cap > low else 0.0
            candidates = []
            for source in sources:
                src_h, src_w = source.image.shape[:2]
                for label in source.labels:
                    if label[0] != kind or target == 0.0:
                        continue
                    scale = target / (label[3] - label[1])
                    if scale <= MAX_ENLARGEMENT and width / scale <= src_w and height / scale <= src_h:
                        candidates.append((source, label, scale))
            if candidates:
                break
        else:
            continue
        source, (_, x1, y1, x2, y2), scale = candidates[int(rng.integers(len(candidates)))]
        src_h, src_w = source.image.shape[:2]
        crop_w, crop_h = min(src_w, round(width / scale)), min(src_h, round(height / scale))
        x_low, x_high = max(0, int(np.ceil(x2)) - crop_w), min(int(x1), src_w - crop_w)
        y_low, y_high = max(0, int(np.ceil(y2)) - crop_h), min(int(y1), src_h - crop_h)
        x0 = int(rng.integers(x_low, x_high + 1)) if x_high >= x_low else max(0, min(int(x1), src_w - crop_w))
        y0 = int(rng.integers(y_low, y_high + 1)) if y_high >= y_low else max(0, min(int(y1), src_h - crop_h))
        frames.append(_crop_scaled(source, x0, y0, crop_w, crop_h, width, height, f"{prefix}_{index:03d}"))
    return frames


# ---------------------------------------------------------------- European plates

_EU_BLUE_BGR = (153, 51, 0)  # the EU band's reflex blue
_EU_YELLOW_BGR = (0, 204, 255)
_PLATE_W, _PLATE_H, _BAND_W = 520, 110, 46  # millimetres of the EU standard plate, 1 px per mm
_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"


def _plate_text(rng: np.random.Generator) -> tuple[str, str]:
    """A random registration in one of four national layouts (no real plate), and its country code."""

    def letters(n: int) -> str:
        return "".join(_LETTERS[int(i)] for i in rng.integers(len(_LETTERS), size=n))

    def digits(n: int) -> str:
        return "".join(str(int(i)) for i in rng.integers(10, size=n))

    layouts = (
        (lambda: f"{letters(2)}-{digits(3)}-{letters(2)}", "F"),
        (lambda: f"{letters(1)} {letters(2)} {digits(4)}", "D"),
        (lambda: f"{digits(2)}-{letters(3)}-{digits(1)}", "NL"),
        (lambda: f"{letters(2)}{digits(2)} {letters(3)}", "GB"),
    )
    make, country = layouts[int(rng.integers(len(layouts)))]
    return make(), country


def render_eu_plate(rng: np.random.Generator, yellow: bool) -> np.ndarray:
    """A 520x110 px EU-format plate: white or yellow, a blue band with the star ring and country code.

    The registration is drawn in black with OpenCV's Hershey fonts (simplex or duplex, random), scaled to
    about 70 % of the plate's height, inside a thin black border.
    """
    plate = np.full((_PLATE_H, _PLATE_W, 3), _EU_YELLOW_BGR if yellow else (235, 235, 235), dtype=np.uint8)
    plate[:, :_BAND_W] = _EU_BLUE_BGR
    for step in range(12):  # the ring of twelve stars, as dots
        angle = step * np.pi / 6
        centre = (round(_BAND_W / 2 + 13 * np.cos(angle)), round(34 + 13 * np.sin(angle)))
        cv2.circle(plate, centre, 2, _EU_YELLOW_BGR, -1, cv2.LINE_AA)
    text, country = _plate_text(rng)
    code_scale = 0.9 if len(country) == 1 else 0.6
    (code_w, _), _ = cv2.getTextSize(country, cv2.FONT_HERSHEY_SIMPLEX, code_scale, 2)
    cv2.putText(
        plate,
        country,
        ((_BAND_W - code_w) // 2, 95),
        cv2.FONT_HERSHEY_SIMPLEX,
        code_scale,
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)[int(rng.integers(2))]
    thickness = int(rng.integers(6, 9))
    (text_w, text_h), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(0.70 * _PLATE_H / text_h, (_PLATE_W - _BAND_W - 24) / text_w)
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (_BAND_W + (_PLATE_W - _BAND_W - text_w) // 2, (_PLATE_H + text_h) // 2)
    cv2.putText(plate, text, origin, font, scale, (20, 20, 20), thickness, cv2.LINE_AA)
    cv2.rectangle(plate, (1, 1), (_PLATE_W - 2, _PLATE_H - 2), (30, 30, 30), 2, cv2.LINE_AA)
    return plate


def _eu_quad(poly: np.ndarray) -> np.ndarray:
    """The CCPD plate corners (TL, TR, BR, BL) widened to the EU aspect and grown 10 % in height."""
    tl, tr, br, bl = poly
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    grow = max(0.0, (_PLATE_W / _PLATE_H * height * 1.1 / width - 1) / 2)
    top, bottom = (tr - tl) * grow, (br - bl) * grow
    quad = np.array([tl - top, tr + top, br + bottom, bl - bottom], dtype=np.float32)
    centre = quad.mean(axis=0)
    middle_left, middle_right = (quad[0] + quad[3]) / 2, (quad[1] + quad[2]) / 2
    for i, middle in ((0, middle_left), (3, middle_left), (1, middle_right), (2, middle_right)):
        quad[i] = middle + (quad[i] - middle) * 1.1
    return quad if np.isfinite(centre).all() else poly


def europeanise(photo: LabelledFrame, poly: np.ndarray, rng: np.random.Generator) -> LabelledFrame:
    """``photo`` with the plate whose corners are ``poly`` (TL, TR, BR, BL) covered by an EU plate.

    The synthesised plate (yellow one time in three) is warped onto the plate's corners widened to the
    EU aspect, dimmed to the local light of the photo, softened by a 0.6 px Gaussian and blended with a
    1 px feathered edge; its label is the bounding box of the warped corners.
    """
    plate = render_eu_plate(rng, yellow=rng.random() < 1 / 3)
    quad = _eu_quad(poly)
    height, width = photo.image.shape[:2]
    source = np.array([[0, 0], [_PLATE_W, 0], [_PLATE_W, _PLATE_H], [0, _PLATE_H]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(source, quad)
    warped = cv2.warpPerspective(plate, warp, (width, height), flags=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.warpPerspective(np.ones((_PLATE_H, _PLATE_W), np.float32), warp, (width, height))
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)[..., np.newaxis]
    x1, y1 = np.floor(quad.min(axis=0)).astype(int)
    x2, y2 = np.ceil(quad.max(axis=0)).astype(int)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    around = photo.image[max(0, y1 - 40) : y2 + 40, max(0, x1 - 40) : x2 + 40]
    light = float(np.clip(cv2.cvtColor(around, cv2.COLOR_BGR2GRAY).mean() / 120, 0.55, 1.0))
    warped = cv2.GaussianBlur(warped * light, (0, 0), 0.6)
    image = (alpha * warped + (1 - alpha) * photo.image.astype(np.float32)).clip(0, 255).astype(np.uint8)
    return LabelledFrame(Path(photo.name).stem + "_eu", image, [("plate", float(x1), float(y1), float(x2), float(y2))])


def eu_photos(corners: dict[str, np.ndarray], photos: list[LabelledFrame], seed: int) -> list[LabelledFrame]:
    """Every CCPD photo of ``photos`` whose plate corners are in ``corners``, with an EU plate instead."""
    rng = np.random.default_rng(seed)
    return [europeanise(photo, corners[photo.name], rng) for photo in photos if photo.name in corners]
