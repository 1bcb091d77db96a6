"""Licence plates with HyperLPR's mininet SSD from the ``hyperlpr2`` wheel, run with OpenCV DNN.

HyperLPR's own Python code is not used: it does not import under OpenCV 5, returns at most one plate per
image and its boxes drift with the input size. Here every box above the threshold is kept and frames are
letterboxed to fixed input sizes.
"""

from __future__ import annotations

import cv2
import numpy as np

from onshore.vision.boxes import Box, BoxKind, boxes_from_arrays, non_maximum_suppression
from onshore.vision.conditions import (
    BLURRED_INDEX,
    LOW_LIGHT_LUMA,
    NOISY_SIGMA,
    blur_index,
    mean_luma,
    noise_sigma,
    unsharp,
)
from onshore.vision.wheels import wheel_file

# ImageNet statistics in RGB order, which the plate SSD was trained with (HyperLPR's detect_ssd).
_PLATE_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_PLATE_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class PlateSSDDetector:
    """Licence plates with HyperLPR's mininet SSD (``hyperlpr2/models/dnn/mininet_ssd_v1``) on OpenCV DNN.

    Each frame is letterboxed (aspect kept, neutral padding) into fixed input sizes, so boxes keep the
    same scale behaviour whatever the frame size. The SSD's confidence swings with scale (a plate scored
    0.6 at one size can score 0.1 at the next), so by default two sizes are searched and their boxes
    merged: 1600x928 (a 1280x720 frame enlarged 1.25x, for small plates) and 800x448 (for large, near
    plates). Its smallest anchors are ~50 px in input pixels: plates narrower than ~45 px in a 1280x720
    frame are often missed.

    Args:
        threshold: minimum SSD confidence (0-1); every box above it is kept.
        input_sizes: the ``(width, height)`` sizes every frame is letterboxed into, one SSD pass each.
        box_padding: fraction of width/height added on every side, because the SSD's boxes sit slightly
            inside the plate and drift with scale.
        nms_overlap: IoU above which the weaker of two overlapping plates is dropped.
        low_light_luma: frames whose mean luma (0-255) is below this get local contrast equalisation
            (CLAHE) before inference, which brings dark plates back into the range the SSD knows; if
            their `noise_sigma` is at least ``noisy_sigma`` they are smoothed (sigma 1 px) first
            (street_night recall 0.85 -> 0.87 with the smoothing and sharpening).
        sharpen: ``(amount, sigma)`` of the unsharp mask applied to other frames: the SSD finds small
            plates more often when their characters' edges are crisper (street_small recall 0.93 -> 0.95).
        blurred_sharpen: the stronger unsharp mask for frames whose `blur_index` is at least
            ``blurred_index`` (motion blur: plate recall 0.34 -> 0.73 on street_motion).
        blurred_index: the `blur_index` from which a frame counts as blurred (sharp street frames score
            0.25-0.50, motion-blurred ones 0.45-0.70).
    """

    kinds: tuple[BoxKind, ...] = ("plate",)

    def __init__(
        self,
        threshold: float = 0.1,
        input_sizes: tuple[tuple[int, int], ...] = ((1600, 928), (800, 448)),
        box_padding: float = 0.05,
        nms_overlap: float = 0.3,
        low_light_luma: float = LOW_LIGHT_LUMA,
        sharpen: tuple[float, float] | None = (1.5, 2.0),
        blurred_sharpen: tuple[float, float] | None = (3.0, 4.0),
        blurred_index: float = BLURRED_INDEX,
        noisy_sigma: float = NOISY_SIGMA,
    ) -> None:
        self.threshold = threshold
        self.low_light_luma = low_light_luma
        self.noisy_sigma = noisy_sigma
        self.sharpen = sharpen
        self.blurred_sharpen = blurred_sharpen
        self.blurred_index = blurred_index
        self._equaliser = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self.input_sizes = input_sizes
        self.box_padding = box_padding
        self.nms_overlap = nms_overlap
        # One net per input size: OpenCV DNN reallocates every layer when the input shape changes.
        self._nets = {
            size: cv2.dnn.readNetFromCaffe(
                str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.prototxt")),
                str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.caffemodel")),
            )
            for size in input_sizes
        }
        self._padding_bgr = tuple(float(v) * 255 for v in _PLATE_MEAN_RGB[::-1])
        self._blob_params = cv2.dnn.Image2BlobParams()
        self._blob_params.scalefactor = (*(1 / (255 * _PLATE_STD_RGB)).tolist(), 0.0)
        self._blob_params.mean = (*(255 * _PLATE_MEAN_RGB).tolist(), 0.0)
        self._blob_params.swapRB = True

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return the plates in each BGR frame."""
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Box]:
        frame_height, frame_width = frame.shape[:2]
        blurred = self.blurred_sharpen is not None and blur_index(frame) >= self.blurred_index
        if mean_luma(frame) < self.low_light_luma:
            # Smooth visible sensor noise first, or equalisation and sharpening amplify it.
            if noise_sigma(frame) >= self.noisy_sigma:
                frame = cv2.GaussianBlur(frame, (0, 0), 1.0)
            lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)
            lab[:, :, 0] = self._equaliser.apply(lab[:, :, 0])
            frame = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        mask = self.blurred_sharpen if blurred else self.sharpen
        if mask is not None:
            frame = unsharp(frame, *mask)
        detections = np.concatenate([self._detect_letterboxed(frame, size) for size in self.input_sizes])
        corners, scores = detections[:, :4], detections[:, 4]
        keep = non_maximum_suppression(corners, scores, self.nms_overlap)
        corners = corners[keep]
        sizes = np.concatenate([corners[:, 2:] - corners[:, :2]] * 2, axis=1)
        corners = corners + sizes * self.box_padding * np.array([-1, -1, 1, 1], dtype=np.float32)
        return boxes_from_arrays("plate", corners, scores[keep], frame_width, frame_height)

    def _detect_letterboxed(self, frame: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
        """``(n, 5)`` corners and scores of the plates found with ``frame`` letterboxed into ``input_size``."""
        input_width, input_height = input_size
        frame_height, frame_width = frame.shape[:2]
        scale = min(input_width / frame_width, input_height / frame_height)
        resized_width = max(1, round(frame_width * scale))
        resized_height = max(1, round(frame_height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas = np.empty((input_height, input_width, 3), dtype=np.uint8)
        canvas[:] = self._padding_bgr
        canvas[:resized_height, :resized_width] = cv2.resize(
            frame, (resized_width, resized_height), interpolation=interpolation
        )
        net = self._nets[input_size]
        net.setInput(cv2.dnn.blobFromImageWithParams(canvas, self._blob_params))
        detections = net.forward()[0, 0]
        detections = detections[detections[:, 2] > self.threshold]
        corners = detections[:, 3:7] * np.array([input_width, input_height] * 2, dtype=np.float32) / scale
        return np.concatenate([corners, detections[:, 2:3]], axis=1).astype(np.float32)
