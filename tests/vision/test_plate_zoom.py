"""A second, closer look at small plates the SSD saw only weakly: which boxes get one, where, what it keeps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from onshore.vision.plates import PlateSSDDetector
from onshore.vision.platezoom import ZoomSettings, second_look, zoom_candidates, zoom_window
from tests.vision.test_detectors import IMAGES, iou, labelled_images


def rows(*values) -> np.ndarray:
    return np.array(values, dtype=np.float32).reshape(-1, 5)


def test_only_small_plate_shaped_boxes_not_yet_found_are_candidates_strongest_first():
    weak = rows(
        [100, 100, 140, 112, 0.02],  # small, 3.3:1: a candidate
        [300, 300, 340, 312, 0.08],  # stronger: first
        [500, 100, 700, 150, 0.09],  # 200 px wide: the passes see it well enough
        [600, 400, 612, 440, 0.05],  # taller than wide: not a plate
        [101, 101, 141, 113, 0.015],  # the same place as the first: suppressed
        [800, 200, 840, 212, 0.05],  # where a plate was already found
    )
    found = np.array([[795, 198, 845, 214]], dtype=np.float32)
    candidates = zoom_candidates(weak, found, ZoomSettings())
    assert candidates[:, 4].tolist() == pytest.approx([0.08, 0.02])
    assert candidates[:, 0].tolist() == [300, 100]
    assert len(zoom_candidates(weak, found, ZoomSettings(most=1))) == 1


def test_no_weak_box_gives_no_candidate():
    assert zoom_candidates(np.zeros((0, 5), np.float32), np.zeros((0, 4), np.float32), ZoomSettings()).shape == (0, 5)


def test_the_window_is_context_times_the_plate_at_the_zoomed_inputs_aspect_and_stays_in_the_frame():
    settings = ZoomSettings(context=2.8, input_size=(224, 128))
    x1, y1, x2, y2 = zoom_window(1280, 720, np.array([600, 300, 640, 312]), settings)
    assert x2 - x1 == pytest.approx(40 * 2.8, abs=2)
    assert (y2 - y1) / (x2 - x1) == pytest.approx(128 / 224, abs=0.03)
    assert (x1 + x2) / 2 == pytest.approx(620, abs=1)
    assert zoom_window(1280, 720, np.array([0, 700, 30, 720]), settings)[0] == 0
    assert zoom_window(1280, 720, np.array([0, 700, 30, 720]), settings)[3] == 720


def test_a_box_the_closer_look_finds_near_the_candidate_is_kept_in_frame_coordinates_and_a_far_one_is_not():
    frame = np.zeros((720, 1280, 3), np.uint8)
    settings = ZoomSettings()
    candidates = rows([600, 300, 640, 312, 0.03], [100, 100, 140, 112, 0.02])
    seen_crops = []

    def detect_crop(crop: np.ndarray) -> np.ndarray:
        seen_crops.append(crop.shape)
        height, width = crop.shape[:2]
        if len(seen_crops) == 1:  # around the first candidate: its plate, a little larger, centred
            return rows([width / 2 - 22, height / 2 - 7, width / 2 + 22, height / 2 + 7, 0.9])
        return rows([0, 0, 10, 4, 0.95])  # in the second crop's corner: not the candidate's plate

    corners, scores = second_look(frame, candidates, detect_crop, settings)
    assert len(seen_crops) == 2
    assert scores.tolist() == pytest.approx([0.9])
    assert corners[0] == pytest.approx([598, 299, 642, 313], abs=2)


def small_plate_frame(index: int, width: float) -> tuple[np.ndarray, tuple[float, ...]]:
    """CCPD photo ``index`` shrunk so its plate is ``width`` px wide, on a grey 1280x720 frame."""
    labels = labelled_images("ccpd_samples")
    name = sorted(labels)[index]
    x1, y1, x2, y2 = labels[name][0]
    scale = width / (x2 - x1)
    photo = cv2.imread(str(IMAGES / "ccpd_samples" / name))
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:600]
    frame = np.full((720, 1280, 3), 90, dtype=np.uint8)
    frame[100 : 100 + photo.shape[0], 300 : 300 + photo.shape[1]] = photo
    return frame, (x1 * scale + 300, y1 * scale + 100, x2 * scale + 300, y2 * scale + 100)


@pytest.mark.parametrize(("index", "width"), [(1, 32), (8, 32), (8, 34)])
def test_a_small_plate_the_passes_see_only_weakly_is_found_by_the_closer_look(index, width):
    frame, label = small_plate_frame(index, width)
    without = PlateSSDDetector(zoom=None, european=False)
    assert not any(iou(label, box) >= 0.5 for box in without.detect([frame])[0])
    with_zoom = PlateSSDDetector(european=False)
    assert any(iou(label, box) >= 0.5 for box in with_zoom.detect([frame])[0])


def test_the_closer_look_adds_boxes_but_never_moves_or_drops_one_the_passes_found():
    frame, _ = small_plate_frame(3, 60)
    without = PlateSSDDetector(zoom=None, european=False).detect([frame])[0]
    with_zoom = PlateSSDDetector(european=False).detect([frame])[0]
    assert set(without) <= set(with_zoom)
