"""Licence plates with HyperLPR's mininet SSD from the ``hyperlpr2`` wheel, run with onnxruntime.

HyperLPR's own Python code is not used: it does not import under OpenCV 5, returns at most one plate per
image and its boxes drift with the input size. Here every box above the threshold is kept, frames are
letterboxed into input sizes chosen from their own size (`plate_input_sizes`) and the boxes of the passes
are merged by geometry (`onshore.vision.boxes.merge_by_geometry`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from onshore.vision.boxes import (
    Box,
    BoxKind,
    add_unmatched,
    boxes_from_arrays,
    merge_by_geometry,
    non_maximum_suppression,
)
from onshore.vision.conditions import (
    BLURRED_INDEX,
    LOW_LIGHT_LUMA,
    NIGHT_BILATERAL,
    NOISY_SIGMA,
    blur_index,
    equalise_luma,
    mean_luma,
    noise_sigma,
    unsharp,
)
from onshore.vision.deblur import undo_motion_blur
from onshore.vision.euplates import eu_plate_candidates
from onshore.vision.platecascade import CascadeSettings, PlateCascade, confirmed_plates
from onshore.vision.platezoom import ZoomSettings, second_look, zoom_candidates
from onshore.vision.sessions import normalised_blob
from onshore.vision.ssdnet import PlateSSDNet
from onshore.vision.wheels import wheel_file

# ImageNet statistics in RGB order, which the plate SSD was trained with (HyperLPR's detect_ssd).
_PLATE_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_PLATE_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Plate widths, in input pixels, that the SSD finds at IoU >= 0.5 nine times in ten or more on the
# Chinese-plate sets (measured per pass over 0.22-2.5x, bench/README.md); EU plates from ~100 px.
SSD_PLATE_WIDTHS = (80.0, 300.0)
# A whole plate's box (HyperLPR's SSD, unpadded) is 2-6 times as wide as high: Chinese plates are 440x140 mm,
# EU ones 520x110, seen at an angle or cut off at the top or bottom.
PLATE_ASPECT = (2.0, 6.0)
# A box at the frame's edge may be a plate cut by it, of any aspect from 0.8 (cut left or right) up: only a
# small one mostly of a plate colour (`plate_colour_share`) is kept from a hard frame's weaker boxes. The
# SSD's own spurious boxes at the letterbox border are much larger (18-50 % of the frame width, near-square).
EDGE_PLATE_WIDTH_SHARE = 0.1
EDGE_PLATE_COLOUR_SHARE = 0.5


def plate_input_sizes(
    frame_width: int,
    frame_height: int,
    *,
    smallest_plate: float = 30.0,
    largest_share: float = 0.9,
    max_enlargement: float = 2.5,
    max_input_area: float = 1600 * 900,
    plate_widths: tuple[float, float] = SSD_PLATE_WIDTHS,
    step: float = 0.5,
    min_side: int = 96,
) -> tuple[tuple[int, int], ...]:
    """The SSD input sizes, largest first, that together cover every plate width a frame can hold.

    The first pass enlarges the frame just enough for a ``smallest_plate`` wide plate to reach the
    SSD's range (``plate_widths[0]`` input px), but never more than ``max_enlargement`` times (enlarged
    small frames give shifted boxes) nor past ``max_input_area`` pixels (1280x720 at 1.25x). Each
    further pass is ``step`` times the previous one, until a plate ``largest_share`` of the frame wide
    (a close-up) fits inside the range (``plate_widths[1]``), while its shorter side stays at least
    ``min_side`` px. Sides are rounded up to multiples of 32.

    Raises:
        ValueError: a frame side is not positive.
    """
    if frame_width <= 0 or frame_height <= 0:
        raise ValueError(f"frame size {frame_width}x{frame_height} has a side that is not positive")
    scale = min(
        max_enlargement,
        plate_widths[0] / smallest_plate,
        math.sqrt(max_input_area / (frame_width * frame_height)),
    )
    scales = [scale]
    while largest_share * frame_width * scales[-1] > plate_widths[1]:
        following = scales[-1] * step
        if min(frame_width, frame_height) * following < min_side:
            break
        scales.append(following)
    sizes = []
    for value in scales:
        size = (
            max(32, math.ceil(frame_width * value / 32) * 32),
            max(32, math.ceil(frame_height * value / 32) * 32),
        )
        if size not in sizes:
            sizes.append(size)
    return tuple(sizes)


class PlateSSDDetector:
    """Licence plates with HyperLPR's mininet SSD (``hyperlpr2/models/dnn/mininet_ssd_v1``) on onnxruntime.

    Each frame is letterboxed (aspect kept, neutral padding) into several input sizes, one SSD pass
    each. The SSD finds plates reliably only when they are ~80-300 px wide in its input, so by default
    the sizes are chosen from the frame's own size (`plate_input_sizes`: for 1280x720, 1600x928,
    800x480, 416x256 and 224x128; a small frame is enlarged at most 2.5x). The SSD's confidence swings
    with scale (a plate scored 0.6 at one size can score 0.1 at the next, and an enlarged pass can score a
    shifted box ~1.0), so the passes' boxes are merged by geometry (`merge_by_geometry`), not by score.
    Only hard frames pay more: a blurred one is deblurred (`onshore.vision.deblur`), a dark, noisy one
    smoothed, and both keep plate-shaped weaker boxes (bench/README.md, "Night and motion").

    Args:
        threshold: minimum SSD confidence (0-1); every box above it is kept.
        input_sizes: fixed ``(width, height)`` sizes every frame is letterboxed into, one pass each;
            ``None`` (the default) chooses them per frame with `plate_input_sizes`.
        box_padding: fraction of width/height added on every side, because the SSD's boxes sit slightly
            inside the plate and drift with scale.
        nms_overlap: IoU above which two boxes of the passes are one plate (with fixed ``input_sizes``
            the weaker is dropped, as before; chosen sizes merge them by geometry).
        low_light_luma: frames whose mean luma (0-255) is below this get local contrast equalisation
            (CLAHE) before inference, which brings dark plates back into the range the SSD knows; if
            their `noise_sigma` is at least ``noisy_sigma`` they are smoothed first by an edge-keeping
            bilateral filter (`NIGHT_BILATERAL`; street_night recall 0.85 -> 0.87 with a 1 px Gaussian and
            the sharpening, 0.90 -> 0.92 with the bilateral filter instead of the Gaussian).
        sharpen: ``(amount, sigma)`` of the unsharp mask applied to other frames: the SSD finds small
            plates more often when their characters' edges are crisper (street_small recall 0.93 -> 0.95).
        blurred_sharpen: the stronger unsharp mask for frames whose `blur_index` is at least
            ``blurred_index`` and that are not deblurred (motion blur: plate recall 0.34 -> 0.73 on
            street_motion before deblurring); ``None`` also turns deblurring off.
        blurred_index: the `blur_index` from which a frame counts as blurred (sharp street frames score
            0.25-0.50, motion-blurred ones 0.45-0.70).
        deblur: on a blurred frame whose blur is one clear line (`estimate_motion_blur`), undo it with a
            Wiener filter (``deblur`` is its noise-to-signal ratio) and apply ``sharpen`` instead of
            ``blurred_sharpen`` (street_motion plate recall 0.76 -> 0.90 with it, 0.92 with
            ``hard_threshold`` too); ``None`` never deblurs.
        hard_threshold: on a hard frame (deblurred, or dark and noisy as `hard_conditions` says) boxes down
            to this confidence are kept too, if they pass `plausible_plates` (plate aspect, or at the
            frame's edge small and of a plate colour); ``None`` keeps ``threshold`` everywhere.
        european: also look for EU-format plates by their blue band (`onshore.vision.euplates`, which the
            SSD, trained on Chinese plates, misses below ~100 input px) and add those the SSD did not
            find (eu_street plate recall 0.713 -> 0.835, bench/README.md); one the SSD already found widens
            its box to both (`add_unmatched` with ``widen``).
        cascade: also run HyperLPR's LBP plate cascade (`onshore.vision.platecascade`) on frames that are not
            dark and add its plate-coloured boxes that no found plate overlaps (street_small seed 7 recall
            0.966 -> 0.977, seed 21 unchanged, at ~60 % more plate-detection time); ``None`` (the default)
            does not run it.
        night_gamma: on a dark, noisy frame, look again at the two largest input sizes with the frame's
            shadows lifted by this gamma before equalisation (`_lifted_plates`); ``None`` does not.
        threads: onnxruntime intra-op threads for this instance (`onshore.vision.ssdnet.PlateSSDNet`).
    """

    kinds: tuple[BoxKind, ...] = ("plate",)

    def __init__(
        self,
        threshold: float = 0.1,
        input_sizes: tuple[tuple[int, int], ...] | None = None,
        box_padding: float = 0.05,
        nms_overlap: float = 0.3,
        low_light_luma: float = LOW_LIGHT_LUMA,
        sharpen: tuple[float, float] | None = (1.5, 2.0),
        blurred_sharpen: tuple[float, float] | None = (3.0, 4.0),
        blurred_index: float = BLURRED_INDEX,
        noisy_sigma: float = NOISY_SIGMA,
        deblur: float | None = 0.01,
        hard_threshold: float | None = 0.05,
        european: bool = True,
        zoom: ZoomSettings | None = ZoomSettings(),  # noqa: B008 (frozen, so one shared default is safe)
        cascade: CascadeSettings | None = None,
        night_gamma: float | None = 0.5,
        threads: int = 1,
    ) -> None:
        # Lifts the shadows of a dark frame (v -> 255 (v / 255) ** gamma) for `_lifted_plates`.
        self._night_lift = (
            None if night_gamma is None else (255 * (np.arange(256) / 255) ** night_gamma).astype(np.uint8)
        )
        self._cascade = PlateCascade(cascade) if cascade is not None else None
        self.threshold = threshold
        self.zoom = zoom
        self.european = european
        self.deblur = deblur
        self.hard_threshold = hard_threshold
        self.low_light_luma = low_light_luma
        self.noisy_sigma = noisy_sigma
        self.sharpen = sharpen
        self.blurred_sharpen = blurred_sharpen
        self.blurred_index = blurred_index
        self._equaliser = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self.input_sizes = input_sizes
        self.box_padding = box_padding
        self.nms_overlap = nms_overlap
        self._ssd = PlateSSDNet(
            str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.prototxt")),
            str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.caffemodel")),
            threads,
        )
        # The mean colour, truncated to whole grey levels as the letterbox always had it.
        self._padding_bgr = tuple(int(v * 255) for v in _PLATE_MEAN_RGB[::-1].tolist())
        self._blob_mean = tuple((255 * _PLATE_MEAN_RGB).tolist())
        self._blob_scale = tuple((1 / (255 * _PLATE_STD_RGB)).tolist())

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return the plates in each BGR frame."""
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Box]:
        frame_height, frame_width = frame.shape[:2]
        original = frame
        frame, hard, night = self._prepare(frame)
        threshold = self.hard_threshold if hard and self.hard_threshold is not None else self.threshold
        sizes = self.input_sizes or plate_input_sizes(frame_width, frame_height)
        floor = min(threshold, self.zoom.floor) if self.zoom is not None else threshold
        detections = self._passes(frame, sizes, floor)
        weak = detections[detections[:, 4] <= threshold]
        detections = detections[detections[:, 4] > threshold]
        corners, scores = detections[:, :4], detections[:, 4]
        if self.input_sizes is None:
            corners, scores = merge_by_geometry(corners, scores, self.nms_overlap)
        else:
            keep = non_maximum_suppression(corners, scores, self.nms_overlap)
            corners, scores = corners[keep], scores[keep]
        if threshold < self.threshold:
            keep = (scores > self.threshold) | plausible_plates(original, corners)
            corners, scores = corners[keep], scores[keep]
        corners = self._padded(corners)
        if self.zoom is not None:
            zoom = self.zoom
            closer = second_look(
                frame,
                zoom_candidates(weak, corners, zoom),
                lambda crop: self._detect_letterboxed(crop, zoom.input_size, zoom.accept)[0],
                zoom,
            )
            corners, scores = add_unmatched(corners, scores, *closer)
        if self.european:
            corners, scores = add_unmatched(corners, scores, *eu_plate_candidates(original), widen=True)
        # Not on dark frames: there its boxes that pass the colour check were never plates (bench/README.md).
        if self._cascade is not None and mean_luma(original) >= self.low_light_luma:
            cascade = self._cascade
            found = confirmed_plates(original, corners, cascade.find(original), cascade.settings, plate_colour_share)
            corners, scores = add_unmatched(corners, scores, *found)
        if night and self._night_lift is not None:
            lifted = self._lifted_plates(original, sizes, self._night_lift)
            corners, scores = add_unmatched(corners, scores, *lifted)
        return boxes_from_arrays("plate", corners, scores, frame_width, frame_height)

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, bool, bool]:
        """The frame as the SSD is shown it, whether it is a hard one (deblurred, or dark and noisy), and
        whether it is dark and noisy (a night shot)."""
        hard = night = False
        mask = self.sharpen
        if self.blurred_sharpen is not None and blur_index(frame) >= self.blurred_index:
            restored = undo_motion_blur(frame, self.deblur) if self.deblur is not None else None
            if restored is None:
                mask = self.blurred_sharpen
            else:
                frame, hard = restored, True
        if mean_luma(frame) < self.low_light_luma:
            # Smooth visible sensor noise first, or equalisation and sharpening amplify it.
            if noise_sigma(frame) >= self.noisy_sigma:
                frame = cv2.bilateralFilter(frame, *NIGHT_BILATERAL)
                hard = night = True
            frame = equalise_luma(frame, self._equaliser)
        if mask is not None:
            frame = unsharp(frame, *mask)
        return frame, hard, night

    def _lifted_plates(
        self, frame: np.ndarray, sizes: tuple[tuple[int, int], ...], lift: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n, 4)`` padded corners and scores of the plates in a night shot seen with its shadows lifted.

        A blue plate in a night shot is 5-15 grey levels under sensor noise of 6-10: equalisation alone
        leaves it too dark for the SSD. Here the smoothed frame is lifted by ``lift`` (a lookup table) first, then
        equalised and sharpened as usual, and shown to the SSD at the two largest input sizes; boxes above
        ``threshold`` are kept (street_night recall seed 21 0.883 -> 0.903, bench/README.md).
        """
        lifted = equalise_luma(cv2.LUT(cv2.bilateralFilter(frame, *NIGHT_BILATERAL), lift), self._equaliser)
        if self.sharpen is not None:
            lifted = unsharp(lifted, *self.sharpen)
        detections = self._passes(lifted, sizes[:2], self.threshold)
        detections = detections[non_maximum_suppression(detections[:, :4], detections[:, 4], self.nms_overlap)]
        return self._padded(detections[:, :4]), detections[:, 4]

    def _padded(self, corners: np.ndarray) -> np.ndarray:
        """``(n, 4)`` SSD corners grown by ``box_padding`` of their width and height on every side."""
        extent = np.concatenate([corners[:, 2:] - corners[:, :2]] * 2, axis=1)
        return corners + extent * self.box_padding * np.array([-1, -1, 1, 1], dtype=np.float32)

    def _passes(self, frame: np.ndarray, sizes: tuple[tuple[int, int], ...], threshold: float) -> np.ndarray:
        """``(n, 5)`` corners and scores of the SSD's passes over ``frame`` at ``sizes`` (largest first).

        Each smaller input is resized from the last one shrunk from the frame, not from the frame itself: an
        area resize from 1280x720 to 416x234 costs 3.6 ms, from 800x450 a third of that (bench/README.md).
        """
        passes, source = [], frame
        for size in sizes:
            found, resized = self._detect_letterboxed(frame, size, threshold, source)
            passes.append(found)
            if resized.shape[1] < source.shape[1]:
                source = resized
        return np.concatenate(passes)

    def _detect_letterboxed(
        self, frame: np.ndarray, input_size: tuple[int, int], threshold: float, source: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n, 5)`` corners and scores of the plates found with ``frame`` letterboxed into ``input_size``, and
        the frame as resized for it; ``source``: ``frame`` already shrunk, to resize from instead."""
        input_width, input_height = input_size
        frame_height, frame_width = frame.shape[:2]
        scale = min(input_width / frame_width, input_height / frame_height)
        resized_width = max(1, round(frame_width * scale))
        resized_height = max(1, round(frame_height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        source = frame if source is None or scale >= 1 else source
        resized = cv2.resize(source, (resized_width, resized_height), interpolation=interpolation)
        # Padding only the strips right and below costs ~1/50 of filling a whole canvas and copying into it.
        canvas = cv2.copyMakeBorder(
            resized,
            0,
            input_height - resized_height,
            0,
            input_width - resized_width,
            cv2.BORDER_CONSTANT,
            value=self._padding_bgr,
        )
        detections = self._ssd.forward(normalised_blob(canvas, self._blob_mean, self._blob_scale), threshold)
        corners = detections[:, 3:7] * np.array([input_width, input_height] * 2, dtype=np.float32) / scale
        return np.concatenate([corners, detections[:, 2:3]], axis=1).astype(np.float32), resized


def plate_colour_share(crop: np.ndarray) -> float:
    """The share of a BGR crop's pixels of a saturated plate background colour: blue, green or yellow.

    Blue and yellow are the Chinese plates' (and the EU band's) backgrounds, green the new-energy plates'.
    """
    if crop.size == 0:
        return 0.0
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    hue, saturation = hsv[..., 0], hsv[..., 1]
    blue = (hue >= 95) & (hue <= 130) & (saturation >= 80)
    green = (hue >= 35) & (hue < 95) & (saturation >= 60)
    yellow = (hue >= 15) & (hue < 35) & (saturation >= 80)
    return float((blue | green | yellow).mean())


def plausible_plates(frame: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Which ``(n, 4)`` boxes of a BGR frame are shaped like a plate: the check for a hard frame's weak boxes.

    A box inside the frame must be `PLATE_ASPECT` wide for its height. One that touches the frame's
    edge may be a plate cut by it, of any aspect from 0.8: it must be at most `EDGE_PLATE_WIDTH_SHARE`
    of the frame wide and mostly (`EDGE_PLATE_COLOUR_SHARE`) of a plate colour (`plate_colour_share`).
    On street_night and street_motion this drops 90-94 % of the boxes scoring 0.05-0.1 and keeps all
    those that are plates (bench/README.md).
    """
    height, width = frame.shape[:2]
    result = np.zeros(len(corners), dtype=bool)
    for index, (x1, y1, x2, y2) in enumerate(corners.tolist()):
        box_width, box_height = x2 - x1, y2 - y1
        if box_width <= 0 or box_height <= 0:
            continue
        aspect = box_width / box_height
        if x1 > 2 and y1 > 2 and x2 < width - 2 and y2 < height - 2:
            result[index] = PLATE_ASPECT[0] <= aspect <= PLATE_ASPECT[1]
        elif aspect >= 0.8 and box_width <= EDGE_PLATE_WIDTH_SHARE * width:
            crop = frame[max(0, int(y1)) : max(0, math.ceil(y2)), max(0, int(x1)) : max(0, math.ceil(x2))]
            result[index] = plate_colour_share(crop) >= EDGE_PLATE_COLOUR_SHARE
    return result
