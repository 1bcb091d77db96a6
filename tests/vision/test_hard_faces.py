"""Hard frames for the face detector: motion blur undone, night frames smoothed and searched again enlarged."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from onshore.vision.conditions import NIGHT_BILATERAL, equalise_luma, mean_luma, noise_sigma
from onshore.vision.deblur import undo_motion_blur
from onshore.vision.faces import CenterFaceDetector
from tests.vision.test_detectors import IMAGES, iou, labelled_images
from tests.vision.test_hard_frames import blur_along, street_like


def darken(frame: np.ndarray, seed: int) -> np.ndarray:
    """``frame`` at a third of its light with sensor noise of sigma 8: a night frame."""
    noise = np.random.default_rng(seed).normal(0, 8, frame.shape)
    return np.clip(frame * 0.3 + noise, 0, 255).astype(np.uint8)


class Counting(CenterFaceDetector):
    """A CenterFace detector that records the input size of every search."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.sizes: list[tuple[int, int]] = []

    def _search(self, frame, input_size, threshold):  # type: ignore[no-untyped-def]
        self.sizes.append(input_size)
        return super()._search(frame, input_size, threshold)


@pytest.fixture(scope="module")
def faces():
    return Counting()


@pytest.fixture(scope="module")
def before():
    return CenterFaceDetector(deblur=None, small_face_scale=None)


def test_a_blurred_frame_is_deblurred_only_where_its_blur_is_one_line():
    sharp = street_like(6)
    assert undo_motion_blur(sharp, 0.03) is None
    restored = undo_motion_blur(blur_along(sharp, 13, 15.0), 0.03)
    assert restored is not None and restored.shape == sharp.shape and restored.dtype == np.uint8


def test_a_clean_or_merely_dark_frame_takes_the_old_path_with_one_search(faces, before):
    sharp = street_like(7)
    dim = (sharp * 0.3).astype(np.uint8)  # dark but without visible noise: not a night frame
    for frame in (sharp, dim):
        prepared, threshold, night = faces._prepare(frame)
        old_prepared, old_threshold, _ = before._prepare(frame)
        assert night is False and threshold == old_threshold == faces.threshold
        assert np.array_equal(prepared, old_prepared)
        faces.sizes.clear()
        faces.detect([frame])
        assert faces.sizes == [(1280, 736)]
    assert np.array_equal(faces._prepare(sharp)[0], sharp)


def test_a_night_frame_is_smoothed_equalised_and_searched_again_at_twice_the_size_capped(faces):
    night = darken(street_like(8), 9)
    prepared, threshold, is_night = faces._prepare(night)
    assert is_night is True and threshold == faces.threshold
    equaliser = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    assert np.array_equal(prepared, equalise_luma(cv2.bilateralFilter(night, *NIGHT_BILATERAL), equaliser))
    assert mean_luma(prepared) > mean_luma(night) + 10
    assert noise_sigma(prepared) < 0.5 * noise_sigma(equalise_luma(night, equaliser))  # smoothed first
    faces.sizes.clear()
    faces.detect([night, darken(street_like(8, (1080, 1920)), 9)])
    assert faces.sizes == [(1280, 736), (2560, 1440), (1920, 1088), (2560, 1440)]


def test_a_motion_blurred_frame_is_deblurred_and_searched_at_the_lower_threshold(faces):
    prepared, threshold, night = faces._prepare(blur_along(street_like(10), 15, 10.0))
    assert threshold == faces.blurred_threshold and night is False


def paste_faces(width: float) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """A 1280x720 grey frame with the first three dlib photos side by side, scaled so faces are ``width`` px."""
    labels = labelled_images("dlib_faces")
    frame = np.full((720, 1280, 3), 100, dtype=np.uint8)
    boxes, left = [], 0
    for name in sorted(labels)[:3]:
        mean_width = float(np.mean([x2 - x1 for x1, _, x2, _ in labels[name]]))
        scale = width / mean_width
        photo = cv2.imread(str(IMAGES / "dlib_faces" / name))
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:720, : 1280 - left]
        frame[: photo.shape[0], left : left + photo.shape[1]] = photo
        boxes += [
            (x1 * scale + left, y1 * scale, x2 * scale + left, y2 * scale)
            for x1, y1, x2, y2 in labels[name]
            if x2 * scale + left < 1280 and y2 * scale < 720
        ]
        left += photo.shape[1]
        if left >= 1280:
            break
    return frame, boxes


def found(detector: CenterFaceDetector, frame: np.ndarray, labels: list) -> int:
    boxes = detector.detect([frame])[0]
    return sum(any(iou(label, box) >= 0.5 for box in boxes) for label in labels)


def mean_best_iou(detector: CenterFaceDetector, frame: np.ndarray, labels: list) -> float:
    boxes = detector.detect([frame])[0]
    return float(np.mean([max([iou(label, box) for box in boxes] + [0.0]) for label in labels]))


def test_motion_blurred_faces_get_boxes_as_well_placed_as_sharp_ones_after_deblurring(faces, before):
    # Blur stretches a face's box along the motion; the dlib labels then overlap it less.
    frame, labels = paste_faces(40)
    blurred = blur_along(frame, 15, 10.0)
    assert len(labels) >= 10
    deblurred = mean_best_iou(faces, blurred, labels)
    assert deblurred >= mean_best_iou(before, blurred, labels) + 0.025
    assert deblurred >= mean_best_iou(before, frame, labels) - 0.01


def test_small_faces_at_night_are_found_more_often_with_the_second_search(faces, before):
    frame, labels = paste_faces(12)
    night = darken(frame, 11)
    assert len(labels) >= 10
    assert found(faces, night, labels) >= found(before, night, labels) + 3


def test_a_small_clean_frame_is_searched_again_enlarged_up_to_1280_px(faces):
    for (height, width), second in (((480, 640), (1280, 960)), ((540, 960), (1280, 736)), ((240, 320), (640, 480))):
        faces.sizes.clear()
        faces.detect([street_like(7, (height, width))])
        assert faces.sizes[1:] == [second], (width, height)
    faces.sizes.clear()
    faces.detect([street_like(7, (720, 1280))])
    assert len(faces.sizes) == 1  # a 1280x720 frame is not small


def test_tiny_faces_in_a_small_frame_are_found_more_often_with_the_second_search(faces):
    frame, labels = paste_faces(20)
    small = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)  # faces of about 10 px
    halved = [tuple(v / 2 for v in label) for label in labels]
    assert len(halved) >= 10
    one_search = CenterFaceDetector(small_frame_side=0)
    assert found(faces, small, halved) >= found(one_search, small, halved) + 4  # measured 12 against 6
