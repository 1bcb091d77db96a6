"""Linear motion blur: its length and direction estimated from the frame, and Wiener deconvolution.

A frame shot while the camera moves is the sharp frame convolved with a short line (the path of the
motion during the exposure). Such a line's spectrum has regularly spaced zeros across the motion
direction, which show in the cepstrum of the frame (the inverse Fourier transform of its log power
spectrum) as a strong negative peak at the offset ``(dx, dy)`` that the line spans (Rom 1975; Cannon 1976).
`estimate_motion_blur` averages the power spectrum over overlapping tiles, so that the scene's own
structure averages out and the blur's signature stays, and reads the peak; `wiener_deconvolve` undoes
the blur it found. Frames whose blur is not a single line (defocus, a turning camera, moving objects
in a still frame) give no clear peak and are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_TILE = 128
# Cepstral peaks of sharp, dark and noisy frames stand 1-3.5 standard deviations below the mean of the
# search ring, those of motion-blurred ones 7.5-14 (street_motion and street_small, bench/README.md).
MIN_CONFIDENCE = 5.0


@dataclass(frozen=True, slots=True)
class MotionBlur:
    """A linear motion blur: ``length`` px along ``angle`` degrees (image axes: x right, y down; 0-180)."""

    length: float
    angle: float
    confidence: float


def estimate_motion_blur(
    frame: np.ndarray, *, min_length: float = 3.0, max_length: float = 32.0, min_confidence: float = MIN_CONFIDENCE
) -> MotionBlur | None:
    """The linear motion blur of a BGR frame, or ``None`` where there is no clear one.

    The log power spectrum is averaged over 128 px tiles overlapping by half (each mean-free and
    Hann-windowed); its cepstrum's most negative value between ``min_length`` and ``max_length`` px
    from the origin is the blur's extent. ``confidence`` is how many standard deviations that value lies
    below the mean of the search ring; under ``min_confidence`` the frame counts as not linearly blurred.
    The peak's position is refined to a fraction of a pixel by a parabola through its neighbours.
    About 0.1 s at 1280x720.
    """
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    height, width = grey.shape
    if height < _TILE or width < _TILE:
        return None
    step = _TILE // 2
    window = cv2.createHanningWindow((_TILE, _TILE), cv2.CV_32F)
    power = np.zeros((_TILE, _TILE), dtype=np.float32)
    for y in range(0, height - _TILE + 1, step):
        for x in range(0, width - _TILE + 1, step):
            tile = grey[y : y + _TILE, x : x + _TILE]
            spectrum = cv2.dft((tile - tile.mean()) * window, flags=cv2.DFT_COMPLEX_OUTPUT)
            power += cv2.magnitude(spectrum[..., 0], spectrum[..., 1]) ** 2
    log_power = np.log(power + 1e-3)
    cepstrum = cv2.idft(
        np.stack([log_power, np.zeros_like(log_power)], axis=-1), flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT
    )
    cepstrum = np.fft.fftshift(cepstrum)
    offsets_y, offsets_x = np.mgrid[-_TILE // 2 : _TILE // 2, -_TILE // 2 : _TILE // 2]
    radius = np.hypot(offsets_x, offsets_y)
    # The cepstrum of a real frame is point-symmetric: search one half plane.
    ring = (radius >= min_length) & (radius <= max_length) & ((offsets_y > 0) | ((offsets_y == 0) & (offsets_x > 0)))
    values = cepstrum[ring]
    spread = float(values.std())
    if spread == 0:
        return None
    peak = int(np.argmin(values))
    confidence = (float(values.mean()) - float(values[peak])) / spread
    if confidence < min_confidence:
        return None
    row, col = np.argwhere(ring)[peak]
    dx = float(offsets_x[row, col]) + _vertex(cepstrum[row, col - 1], cepstrum[row, col], cepstrum[row, col + 1])
    dy = float(offsets_y[row, col]) + _vertex(cepstrum[row - 1, col], cepstrum[row, col], cepstrum[row + 1, col])
    return MotionBlur(math.hypot(dx, dy), math.degrees(math.atan2(dy, dx)) % 180, round(confidence, 2))


def _vertex(before: float, at: float, after: float) -> float:
    """The offset (-0.5..0.5) of the extremum of the parabola through three neighbouring samples."""
    curvature = before - 2 * at + after
    return float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5)) if curvature != 0 else 0.0


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised anti-aliased line ``length`` px long through the centre at ``angle`` degrees (odd square)."""
    size = 2 * math.ceil(length / 2) + 3
    centre = size // 2
    scale = 16  # cv2.line draws at 1/16 px with shift=4
    # A drawn line covers its end pixels whole: ``length`` px of coverage span ``length - 1`` between ends.
    span = max(0.0, length - 1) / 2
    half_x = span * math.cos(math.radians(angle))
    half_y = span * math.sin(math.radians(angle))
    kernel = np.zeros((size, size), dtype=np.float32)
    start = (round((centre - half_x) * scale), round((centre - half_y) * scale))
    end = (round((centre + half_x) * scale), round((centre + half_y) * scale))
    cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA, 4)
    return kernel / kernel.sum()


def wiener_deconvolve(frame: np.ndarray, kernel: np.ndarray, noise_to_signal: float = 0.01) -> np.ndarray:
    """``frame`` (uint8, any channels) deconvolved by ``kernel`` with a Wiener filter; a new uint8 array.

    The frame is padded by reflection first so that its borders do not ring; ``noise_to_signal`` is the
    filter's constant noise-to-signal power ratio (larger: smoother, less restored).
    """
    pad = kernel.shape[0]
    rows = cv2.getOptimalDFTSize(frame.shape[0] + 2 * pad)
    cols = cv2.getOptimalDFTSize(frame.shape[1] + 2 * pad)
    padded = cv2.copyMakeBorder(
        frame, pad, rows - frame.shape[0] - pad, pad, cols - frame.shape[1] - pad, cv2.BORDER_REFLECT
    ).astype(np.float32)
    spread = np.zeros((rows, cols), dtype=np.float32)
    spread[: kernel.shape[0], : kernel.shape[1]] = kernel
    spread = np.roll(spread, (-(kernel.shape[0] // 2), -(kernel.shape[1] // 2)), axis=(0, 1))
    transfer = cv2.dft(spread, flags=cv2.DFT_COMPLEX_OUTPUT)
    gain = transfer[..., 0] ** 2 + transfer[..., 1] ** 2 + noise_to_signal
    inverse = np.stack([transfer[..., 0] / gain, -transfer[..., 1] / gain], axis=-1)  # conj(H) / (|H|^2 + k)
    channels = padded.reshape(rows, cols, -1)
    restored = np.stack(
        [
            cv2.idft(
                cv2.mulSpectrums(
                    cv2.dft(np.ascontiguousarray(channels[..., c]), flags=cv2.DFT_COMPLEX_OUTPUT), inverse, 0
                ),
                flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT,
            )
            for c in range(channels.shape[2])
        ],
        axis=-1,
    )
    restored = restored[pad : pad + frame.shape[0], pad : pad + frame.shape[1]]
    return np.clip(restored, 0, 255).astype(np.uint8).reshape(frame.shape)


def undo_motion_blur(frame: np.ndarray, noise_to_signal: float) -> np.ndarray | None:
    """``frame`` with its linear motion blur (`estimate_motion_blur`) undone by `wiener_deconvolve`, or ``None``.

    ``None`` where the frame shows no clear blur line; the preparation the face and plate detectors share
    for blurred frames. About 0.2 s at 1280x720 where a line is found.
    """
    blur = estimate_motion_blur(frame)
    if blur is None:
        return None
    return wiener_deconvolve(frame, motion_kernel(blur.length, blur.angle), noise_to_signal)
