"""EU plates cut by two frame edges or tilted at one, and how a band plate widens the SSD box it duplicates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from onshore.vision.boxes import add_unmatched
from onshore.vision.euplates import eu_plate_candidates
from tests.vision.test_eu_plates import eu_plate, iou, street


def best_iou(frame: np.ndarray, truth: tuple[float, ...]) -> float:
    found, _ = eu_plate_candidates(frame)
    return max((iou(truth, box) for box in found.tolist()), default=0.0)


def test_a_close_up_plate_cut_at_the_top_and_right_is_found_though_its_band_is_over_a_third_of_the_frame():
    frame = np.ascontiguousarray(street()[200:680, 300:780])  # 480x480
    plate = eu_plate(900)  # 190 px high; its band, 80 px wide, is cut to 180 rows by the frame's top
    frame[:180, 40:] = plate[10:, :440]
    assert best_iou(frame, (40, 0, 480, 180)) >= 0.5


def test_a_plate_cut_by_the_left_edge_of_a_small_frame_is_found_past_a_fifth_of_it():
    frame = np.ascontiguousarray(street()[300:578, 100:594])  # 494x278: a fifth is about the narrow strip
    plate = eu_plate(440)
    shown, y = 180, 60
    frame[y : y + plate.shape[0], :shown] = plate[:, 440 - shown :]
    assert best_iou(frame, (0, y, shown, y + plate.shape[0])) >= 0.5


@pytest.mark.parametrize(("width", "angle"), [(300, 11.0), (400, 11.0), (400, -5.0)])
def test_a_tilted_plate_cut_by_the_left_edge_is_boxed_to_its_tilted_rows(width, angle):
    frame = street()
    plate = eu_plate(width)
    h, w = plate.shape[:2]
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotation[:, 2] += (-width // 2, 400)  # its left half, with the band, outside the frame
    warped = cv2.warpAffine(plate, rotation, (1280, 720), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), rotation, (1280, 720)) > 127
    frame[inside] = warped[inside]
    rows, columns = np.nonzero(inside)
    truth = (0.0, float(rows.min()), float(columns.max() + 1), float(rows.max() + 1))
    # Boxed to the row of characters' own rows (before the slope was followed), the IoU is 0.66-0.70.
    assert best_iou(frame, truth) >= 0.75


def test_a_band_plate_that_duplicates_an_ssd_box_widens_it_to_both_and_others_join_beside_it():
    corners = np.array([[100, 100, 200, 130], [400, 100, 500, 130]], dtype=np.float32)
    scores = np.array([0.9, 0.8], dtype=np.float32)
    extra = np.array([[95, 98, 198, 134], [700, 100, 800, 130]], dtype=np.float32)
    merged, merged_scores = add_unmatched(corners, scores, extra, np.full(2, 0.5, np.float32), widen=True)
    assert merged.tolist() == [[95, 98, 200, 134], [400, 100, 500, 130], [700, 100, 800, 130]]
    assert merged_scores.tolist() == pytest.approx([0.9, 0.8, 0.5])
    assert add_unmatched(np.zeros((0, 4)), np.zeros(0), extra, np.ones(2), widen=True)[0].tolist() == extra.tolist()
    # Without widen the duplicate is dropped and the SSD box stays as it was.
    assert add_unmatched(corners, scores, extra, np.full(2, 0.5, np.float32))[0].tolist()[0] == [100, 100, 200, 130]
