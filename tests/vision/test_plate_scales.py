"""The plate SSD's input sizes follow the frame's own size, and the passes' boxes merge by geometry."""

from __future__ import annotations

import numpy as np
import pytest

from onshore.vision.boxes import merge_by_geometry
from onshore.vision.plates import SSD_PLATE_WIDTHS, plate_input_sizes


def test_a_1280x720_frame_keeps_the_tuned_first_size_and_halves_down_to_close_ups():
    sizes = plate_input_sizes(1280, 720)
    assert sizes[0] == (1600, 928)
    assert sizes[1:] == ((800, 480), (416, 256), (224, 128))


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 480), (1280, 720), (1920, 1080), (720, 1160)])
def test_every_plate_width_from_30_px_to_a_close_up_lands_in_the_ssd_range_in_some_pass(width, height):
    sizes = plate_input_sizes(width, height)
    scales = [min(w / width, h / height) for w, h in sizes]
    low, high = SSD_PLATE_WIDTHS
    # The largest pass shows a 30 px plate as large as the enlargement cap (2.5x) and the area budget
    # (1280x720 at 1.25x) allow; the smallest fits a close-up.
    allowed = min(low / 30, 2.5, (1600 * 900 / (width * height)) ** 0.5)
    assert max(scales) >= allowed - 0.01
    assert min(scales) * 0.9 * width <= high or min(sizes[-1]) <= 2 * 96
    # Sides are multiples of 32 and passes shrink by about half.
    assert all(w % 32 == 0 and h % 32 == 0 for w, h in sizes)
    assert all(0.4 < b / a < 0.6 for a, b in zip(scales, scales[1:], strict=False))


def test_small_frames_are_never_enlarged_past_the_cap_and_large_ones_stay_within_the_area_budget():
    for width, height in [(320, 240), (480, 360)]:
        first_width, _ = plate_input_sizes(width, height)[0]
        assert first_width <= np.ceil(width * 2.5 / 32) * 32
    assert plate_input_sizes(320, 240, max_enlargement=1.0)[0] == (320, 256)
    for width, height in [(1920, 1080), (3840, 2160)]:
        first_width, first_height = plate_input_sizes(width, height)[0]
        assert first_width * first_height <= 1600 * 928


def test_a_close_up_frame_gets_a_pass_small_enough_for_a_plate_filling_it():
    sizes = plate_input_sizes(480, 360)
    assert min(w for w, _ in sizes) * 0.9 <= SSD_PLATE_WIDTHS[1]


def test_a_frame_without_area_is_refused_with_its_size():
    with pytest.raises(ValueError, match="0x720"):
        plate_input_sizes(0, 720)


def boxes(*rows):
    array = np.array(rows, dtype=np.float32).reshape(-1, 5)
    return array[:, :4], array[:, 4]


def test_a_shifted_high_scoring_box_does_not_replace_the_well_placed_one():
    # The enlarged pass scores a shifted box 0.99, the well-placed box from another pass scores 0.6.
    corners, scores = boxes([110, 108, 210, 148, 0.99], [100, 100, 200, 140, 0.6])
    merged, merged_scores = merge_by_geometry(corners, scores)
    assert len(merged) == 1 and merged_scores[0] == pytest.approx(0.99)
    # The score-weighted mean: between the two, not the shifted box alone.
    expected = (np.array([110, 108, 210, 148]) * 0.99 + np.array([100, 100, 200, 140]) * 0.6) / 1.59
    assert merged[0] == pytest.approx(expected, abs=1e-3)


def test_a_partial_box_inside_a_whole_one_is_absorbed_without_stretching_it():
    corners, scores = boxes([100, 100, 200, 140, 0.9], [105, 102, 140, 138, 0.95], [20, 60, 400, 300, 0.3])
    merged, merged_scores = merge_by_geometry(corners, scores)
    # The half-plate (score 0.95) seeds; the whole plate contains it and is claimed. The car-sized box
    # contains both: absorbed too, and not averaged in.
    assert len(merged) == 1
    assert merged_scores[0] == pytest.approx(0.95)
    assert merged[0][0] >= 100 and merged[0][2] <= 200


def test_separate_plates_stay_separate_and_come_strongest_first():
    corners, scores = boxes([0, 0, 50, 20, 0.3], [300, 300, 360, 320, 0.8], [302, 301, 361, 321, 0.7])
    merged, merged_scores = merge_by_geometry(corners, scores)
    assert merged_scores.tolist() == pytest.approx([0.8, 0.3])
    assert merged[1] == pytest.approx([0, 0, 50, 20])
    assert merge_by_geometry(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))[0].shape == (0, 4)
