"""End to end: a real frame with a known plate and a known face comes out with both unrecognisable.

The frame is built in memory from the shared evaluation images (a CCPD photo and a dlib face pasted into
it); nothing is written to disk.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from onshore.vision.anonymize import AnonymizationSettings
from onshore.vision.codec import decode_frame, encode_frame
from onshore.vision.frames import FrameProcessor

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "images"
PLATE_PHOTO = (
    "zhijucen_00723180076628-90_91-349&464_520&519-518&521_346&524_344&470_516&467-0_0_22_31_30_30_3-112-14.jpg"
)
FACE_PHOTO = "2008_002079.jpg"


def first_label(set_name: str, file_name: str) -> tuple[int, int, int, int]:
    labels = IMAGES / set_name / "labels.csv"
    if not labels.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared evaluation images missing in CI: {labels}")
        pytest.skip(f"shared evaluation images not present: {labels}")
    with open(labels, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["file"] == file_name:
                return tuple(int(float(row[key])) for key in ("x1", "y1", "x2", "y2"))
    raise AssertionError(f"{file_name} has no label in {set_name}")


@pytest.fixture(scope="module")
def street_frame() -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    return build_street_frame()


def build_street_frame() -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """A CCPD photo (known plate) with a dlib face pasted above the car (known face box)."""
    plate = first_label("ccpd_samples", PLATE_PHOTO)
    frame = cv2.imread(str(IMAGES / "ccpd_samples" / PLATE_PHOTO))
    fx1, fy1, fx2, fy2 = first_label("dlib_faces", FACE_PHOTO)
    source = cv2.imread(str(IMAGES / "dlib_faces" / FACE_PHOTO))
    margin = (fx2 - fx1) // 2
    crop = source[max(0, fy1 - margin) : fy2 + margin, max(0, fx1 - margin) : fx2 + margin]
    top, left = 120, 80
    frame[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    face_x1, face_y1 = left + fx1 - max(0, fx1 - margin), top + fy1 - max(0, fy1 - margin)
    face = (face_x1, face_y1, face_x1 + fx2 - fx1, face_y1 + fy2 - fy1)
    return frame, {"plate": plate, "face": face}


def ssim(first: np.ndarray, second: np.ndarray) -> float:
    """Mean structural similarity of two grey images (Wang et al. 2004, Gaussian window)."""
    a, b = first.astype(np.float64), second.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5)

    mean_a, mean_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mean_a**2, blur(b * b) - mean_b**2
    covariance = blur(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def assert_hidden_and_rest_kept(
    before_bgr: np.ndarray, after_bgr: np.ndarray, known: dict[str, tuple[int, int, int, int]]
) -> None:
    """Each known box is changed beyond recognition; away from the boxes the frame is close to unchanged."""
    before = cv2.cvtColor(before_bgr, cv2.COLOR_BGR2GRAY)
    after = cv2.cvtColor(after_bgr, cv2.COLOR_BGR2GRAY)
    for kind, (x1, y1, x2, y2) in known.items():
        inside_before, inside_after = before[y1:y2, x1:x2], after[y1:y2, x1:x2]
        assert ssim(inside_before, inside_after) < 0.4, kind
        assert np.abs(inside_before.astype(int) - inside_after.astype(int)).mean() > 8, kind
    outside = np.ones(before.shape, dtype=bool)
    for x1, y1, x2, y2 in known.values():
        pad_x, pad_y = (x2 - x1) // 2, (y2 - y1) // 2
        outside[max(0, y1 - pad_y) : y2 + pad_y, max(0, x1 - pad_x) : x2 + pad_x] = False
    changed = np.abs(before.astype(int) - after.astype(int))[outside] > 2
    assert changed.mean() < 0.05


@pytest.mark.parametrize("method", ["blur", "pixelate", "mask"])
def test_known_plate_and_face_are_unrecognisable_and_the_rest_is_kept(street_frame, method):
    frame, known = street_frame
    with FrameProcessor(anonymization=AnonymizationSettings(method=method), workers=2) as processor:
        [result] = processor.process([encode_frame(frame, "image/png")])
    assert result.faces >= 1 and result.plates >= 1
    assert_hidden_and_rest_kept(frame, decode_frame(result.image)[0], known)
