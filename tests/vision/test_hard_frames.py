"""Hard frames: motion blur estimated and undone, and a hard frame's weak plate boxes checked by shape and colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from onshore.vision.deblur import estimate_motion_blur, motion_kernel, wiener_deconvolve
from onshore.vision.plates import PlateSSDDetector, plate_colour_share, plausible_plates
from tests.vision.test_detectors import IMAGES, iou, labelled_images


def street_like(seed: int, size: tuple[int, int] = (720, 1280)) -> np.ndarray:
    """A frame of random rectangles and strokes in random colours (edges in every direction)."""
    rng = np.random.default_rng(seed)
    frame = np.full((*size, 3), 110, dtype=np.uint8)
    for _ in range(400):
        x, y = int(rng.integers(0, size[1])), int(rng.integers(0, size[0]))
        w, h = int(rng.integers(4, 80)), int(rng.integers(4, 80))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(frame, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.line(frame, (x, y), (x + w, y + h - 40), colour, int(rng.integers(1, 4)))
    return frame


def blur_along(frame: np.ndarray, length: int, degrees: float) -> np.ndarray:
    """``frame`` convolved with a row of ``length`` ones turned to ``degrees`` (image axes, y down)."""
    size = length + 4
    kernel = np.zeros((size, size), dtype=np.float32)
    kernel[size // 2, 2 : 2 + length] = 1
    # OpenCV turns counter-clockwise as seen on screen, i.e. towards -y: the negative angle points along +y.
    kernel = cv2.warpAffine(
        kernel, cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), -degrees, 1.0), (size, size)
    )
    return cv2.filter2D(frame, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


@pytest.mark.parametrize(("length", "degrees"), [(9, 0.0), (13, 20.0), (17, 160.0), (12, 95.0)])
def test_the_length_and_direction_of_a_linear_motion_blur_are_read_from_the_frame(length, degrees):
    blur = estimate_motion_blur(blur_along(street_like(length), length, degrees))
    assert blur is not None
    assert abs(blur.length - length) <= 1.0
    assert min(abs(blur.angle - degrees), 180 - abs(blur.angle - degrees)) <= 6.0


def test_a_sharp_a_noisy_and_a_tiny_frame_have_no_motion_blur():
    sharp = street_like(1)
    noisy = np.clip(sharp * 0.35 + np.random.default_rng(2).normal(0, 8, sharp.shape), 0, 255).astype(np.uint8)
    assert estimate_motion_blur(sharp) is None
    assert estimate_motion_blur(noisy) is None
    assert estimate_motion_blur(sharp[:100, :100]) is None


def test_the_kernel_is_a_normalised_line_of_the_length_asked():
    kernel = motion_kernel(11, 0.0)
    assert kernel.sum() == pytest.approx(1.0)
    row = kernel[kernel.shape[0] // 2]
    assert (row > 0.02).sum() in (11, 12)
    assert kernel.sum(axis=1)[kernel.shape[0] // 2] > 0.9
    assert np.allclose(motion_kernel(11, 90.0), motion_kernel(11, 0.0).T, atol=0.02)


def test_deconvolving_with_the_estimated_kernel_brings_the_frame_back_towards_the_sharp_one():
    sharp = street_like(3)
    blurred = blur_along(sharp, 13, 20.0)
    blur = estimate_motion_blur(blurred)
    assert blur is not None
    restored = wiener_deconvolve(blurred, motion_kernel(blur.length, blur.angle))
    assert restored.shape == sharp.shape and restored.dtype == np.uint8
    inner = (slice(40, -40), slice(40, -40))

    def error(image: np.ndarray) -> float:
        return float(np.abs(image[inner].astype(np.float32) - sharp[inner]).mean())

    crossways = wiener_deconvolve(blurred, motion_kernel(blur.length, blur.angle + 90))
    assert error(restored) < 0.95 * error(blurred)
    assert error(restored) < 0.5 * error(crossways)


def test_plate_colours_count_and_grey_does_not():
    blue = np.zeros((20, 60, 3), dtype=np.uint8)
    blue[:] = (180, 60, 20)  # BGR: a Chinese plate's blue
    green = np.zeros((20, 60, 3), dtype=np.uint8)
    green[:] = (90, 190, 60)
    grey = np.full((20, 60, 3), 128, dtype=np.uint8)
    assert plate_colour_share(blue) == 1.0
    assert plate_colour_share(green) == 1.0
    assert plate_colour_share(grey) == 0.0
    assert plate_colour_share(np.zeros((0, 0, 3), dtype=np.uint8)) == 0.0


def test_a_weak_box_is_kept_when_plate_shaped_or_a_small_plate_coloured_one_cut_by_the_edge():
    frame = np.full((720, 1280, 3), 128, dtype=np.uint8)
    frame[600:640, 0:40] = (180, 60, 20)  # a blue plate cut by the left edge
    corners = np.array(
        [
            [500, 300, 620, 340],  # 3:1 inside the frame: a plate
            [500, 300, 540, 340],  # square inside: not
            [500, 300, 1000, 320],  # 25:1: not
            [0, 600, 40, 640],  # small, blue, at the edge: a cut plate
            [0, 400, 40, 440],  # small at the edge but grey
            [0, 0, 240, 216],  # the SSD's near-square box at the letterbox corner
        ],
        dtype=np.float32,
    )
    assert plausible_plates(frame, corners).tolist() == [True, False, False, True, False, False]
    assert plausible_plates(frame, corners[:0]).tolist() == []


@pytest.fixture(scope="module")
def plates():
    return PlateSSDDetector()


def test_only_blurred_dark_and_noisy_frames_take_the_hard_pass_and_a_clean_frame_is_prepared_as_before(plates):
    sharp = street_like(4)
    dark = np.clip(sharp * 0.3 + np.random.default_rng(5).normal(0, 8, sharp.shape), 0, 255).astype(np.uint8)
    moving = blur_along(sharp, 15, 10.0)
    assert plates._prepare(sharp)[1] is False
    assert plates._prepare(dark)[1] is True
    assert plates._prepare(moving)[1] is True
    before = PlateSSDDetector(deblur=None, hard_threshold=None)
    assert np.array_equal(plates._prepare(sharp)[0], before._prepare(sharp)[0])
    assert before._prepare(moving)[1] is False


def test_motion_blurred_ccpd_plates_are_found_after_deblurring_more_often_than_without(plates):
    # The first three CCPD photos with their plate scaled to 60 px wide, blurred 15 px at 8 degrees.
    labels = labelled_images("ccpd_samples")
    before = PlateSSDDetector(deblur=None, hard_threshold=None)
    found, found_before = 0, 0
    for name in sorted(labels)[:3]:
        x1, y1, x2, y2 = labels[name][0]
        scale = 60 / (x2 - x1)
        photo = cv2.imread(str(IMAGES / "ccpd_samples" / name))
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:720]
        frame = np.full((720, 1280, 3), 90, dtype=np.uint8)
        frame[: photo.shape[0], : photo.shape[1]] = photo
        frame = blur_along(frame, 15, 8.0)
        label = (x1 * scale, y1 * scale, x2 * scale, y2 * scale)
        found += any(iou(label, box) >= 0.5 for box in plates.detect([frame])[0])
        found_before += any(iou(label, box) >= 0.5 for box in before.detect([frame])[0])
    assert found == 3
    assert found_before < found


def night_shot(frame: np.ndarray) -> np.ndarray:
    """``frame`` as the night set darkens it: gamma 1.5, a third of the light, sensor noise of sigma 8."""
    dark = 255 * (frame / 255.0) ** 1.5 * 0.35
    return np.clip(dark + np.random.default_rng(3).normal(0, 8, frame.shape), 0, 255).astype(np.uint8)


def test_only_a_night_shot_gets_the_lifted_look_and_it_adds_boxes_without_moving_any(monkeypatch):
    lifted = PlateSSDDetector()
    extra = (np.array([[400, 300, 480, 326]], np.float32), np.array([0.5], np.float32))
    monkeypatch.setattr(lifted, "_lifted_plates", lambda frame, sizes, lift: extra, raising=False)
    without = PlateSSDDetector(night_gamma=None)
    sharp = street_like(6)
    dark = night_shot(sharp)
    assert lifted._prepare(dark)[2] is True
    assert lifted._prepare(sharp)[2] is False
    assert lifted._prepare(blur_along(sharp, 15, 10.0))[2] is False
    found, plain = lifted.detect([dark])[0], without.detect([dark])[0]
    assert found[: len(plain)] == plain
    assert any(box.x1 == 400 and box.y1 == 300 and box.score == 0.5 for box in found[len(plain) :])
    assert all(box.x1 != 400 or box.y1 != 300 for box in lifted.detect([sharp])[0])


def test_the_lifted_look_finds_the_dark_ccpd_plates_the_plain_one_finds_and_never_moves_a_box():
    labels = labelled_images("ccpd_samples")
    names = sorted(labels)[::5]
    dark = [night_shot(cv2.imread(str(IMAGES / "ccpd_samples" / name))) for name in names]
    lifted = PlateSSDDetector().detect(dark)
    plain = PlateSSDDetector(night_gamma=None).detect(dark)
    for name, found, before in zip(names, lifted, plain, strict=True):
        assert found[: len(before)] == before
        assert any(iou(labels[name][0], box) >= 0.5 for box in found), name
