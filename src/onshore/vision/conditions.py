"""Frame conditions that change how well detection works: blur, low light, sensor noise.

Cheap no-reference measures, used both to adapt preprocessing per frame and to flag the frames that
detection handles less well (`hard_conditions`, bench/README.md).
"""

from __future__ import annotations

import cv2
import numpy as np


def blur_index(frame: np.ndarray) -> float:
    """How blurred a BGR frame is, 0 (sharp) to 1, by the no-reference measure of Crete-Roffet et al. (2007).

    The frame (as 640 px grey) is blurred again along each axis; a sharp frame loses much of its neighbour
    differences by that, an already blurred one little. The larger of the two axes' scores is returned, so
    motion blur in any direction counts. About 3 ms at 1280x720.
    """
    height, width = frame.shape[:2]
    scale = min(1.0, 640 / max(height, width))
    grey = cv2.cvtColor(
        cv2.resize(frame, (max(2, round(width * scale)), max(2, round(height * scale))), interpolation=cv2.INTER_AREA),
        cv2.COLOR_BGR2GRAY,
    ).astype(np.float32)
    scores = []
    for axis, kernel in ((1, np.full((1, 9), 1 / 9, np.float32)), (0, np.full((9, 1), 1 / 9, np.float32))):
        reblurred = cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)
        variation = np.abs(np.diff(grey, axis=axis))
        kept = np.maximum(0, variation - np.abs(np.diff(reblurred, axis=axis))).sum()
        total = float(variation.sum())
        scores.append((total - float(kept)) / total if total > 0 else 1.0)
    return max(scores)


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_sigma(frame: np.ndarray) -> float:
    """Standard deviation of a BGR frame's sensor noise (grey levels), by Immerkaer's fast estimator (1996)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    response = np.abs(cv2.filter2D(grey, -1, _NOISE_KERNEL))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6) if response.size else 0.0


def unsharp(frame: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """``frame`` with its detail above a Gaussian of ``sigma`` px boosted ``1 + amount`` times (a new array)."""
    return cv2.addWeighted(frame, 1 + amount, cv2.GaussianBlur(frame, (0, 0), sigma), -amount, 0)


def equalise_luma(frame: np.ndarray, equaliser: cv2.CLAHE) -> np.ndarray:
    """A BGR frame with its luma (L of Lab) equalised by ``equaliser`` (a new array); dark frames' preparation."""
    lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = equaliser.apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


BLURRED_INDEX = 0.45  # sharp street frames score 0.25-0.50 by `blur_index`, motion-blurred ones 0.45-0.70
LOW_LIGHT_LUMA = 60.0
NOISY_SIGMA = 1.5
# Diameter, colour sigma (grey levels) and space sigma (px) of the bilateral filter that smooths a dark,
# noisy frame before equalisation, for plates and faces: it flattens sensor noise (sigma 6-10 on
# street_night) but keeps the edges of a plate's characters. Colour sigmas 30-60 gave street_night plate
# recall 0.91-0.92 (20: 0.90, 80: 0.90; a 1.5 px Gaussian 0.83, non-local means 0.87 at six times the cost).
NIGHT_BILATERAL = (5, 45.0, 3.0)


def hard_conditions(frame: np.ndarray) -> tuple[str, ...]:
    """The conditions of a BGR frame under which detection is measurably weaker (bench/README.md).

    ``blurred``: `blur_index` at least `BLURRED_INDEX` (motion blur). ``low_light``: mean luma under
    `LOW_LIGHT_LUMA` with visible sensor noise (`noise_sigma` at least `NOISY_SIGMA`): a night shot.
    """
    conditions = []
    if blur_index(frame) >= BLURRED_INDEX:
        conditions.append("blurred")
    if mean_luma(frame) < LOW_LIGHT_LUMA and noise_sigma(frame) >= NOISY_SIGMA:
        conditions.append("low_light")
    return tuple(conditions)


def mean_luma(frame: np.ndarray) -> float:
    """Mean brightness (0-255) of a BGR frame, from a thumbnail so that it costs well under a millisecond."""
    height, width = frame.shape[:2]
    scale = min(1.0, 160 / max(height, width))
    thumbnail = cv2.resize(
        frame, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    return float(cv2.cvtColor(thumbnail, cv2.COLOR_BGR2GRAY).mean())
