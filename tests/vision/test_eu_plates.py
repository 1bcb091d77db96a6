"""EU-format plates are found by their blue band, beside the plate SSD; how its boxes join the SSD's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from onshore.vision.boxes import add_unmatched
from onshore.vision.eubottom import bottom_cut_plates
from onshore.vision.euplates import _by_character_row, _ground_rows, eu_plate_candidates, one_box_per_plate


def eu_plate(
    width: int, *, ground=(228, 230, 226), blue=(160, 60, 15), ink=(25, 25, 25), text: str = "AB 123 CD"
) -> np.ndarray:
    """A plate ``width`` px wide in the EU layout (band, light ground, dark registration), not the bench's."""
    height = round(width * 110 / 520)
    plate = np.full((height, width, 3), ground, dtype=np.uint8)
    plate[:, : max(2, round(width * 46 / 520))] = blue
    scale = height / 40
    cv2.putText(
        plate,
        text,
        (round(width * 0.12), round(height * 0.78)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale * 0.95,
        ink,
        max(1, round(scale * 2.5)),
        cv2.LINE_AA,
    )
    return plate


def street(seed: int = 3) -> np.ndarray:
    """A 1280x720 grey, textured frame with a blue square sign and a white sign with dark text on it."""
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(110, 18, (720, 1280, 3)), 0, 255).astype(np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 2)
    frame[100:180, 200:280] = (170, 70, 20)  # a blue square sign: not upright, no plate beside it
    frame[300:360, 600:900] = (235, 235, 235)  # a white sign with text, but no blue band
    cv2.putText(frame, "PARKING", (610, 350), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4)
    return frame


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.mark.parametrize(
    ("width", "ground", "blue"),
    [(60, (228, 230, 226), (160, 60, 15)), (140, (30, 200, 245), (150, 45, 10)), (300, (215, 215, 210), (140, 70, 30))],
)
def test_a_white_or_yellow_eu_plate_in_a_street_is_found_where_it_is(width, ground, blue):
    frame = street()
    plate = eu_plate(width, ground=ground, blue=blue)
    x, y = 420, 500
    frame[y : y + plate.shape[0], x : x + width] = plate
    corners, scores = eu_plate_candidates(frame)
    truth = (x, y, x + width, y + plate.shape[0])
    assert any(iou(truth, box) >= 0.5 for box in corners.tolist())
    assert len(corners) == 1 and 0 < scores[0] <= 1


def test_a_frame_without_a_plate_gives_nothing():
    corners, scores = eu_plate_candidates(street())
    assert corners.shape == (0, 4) and scores.shape == (0,)


def test_a_chinese_blue_plate_is_left_to_the_ssd():
    frame = street()
    plate = np.full((44, 140, 3), (170, 70, 20), dtype=np.uint8)  # white characters on blue
    cv2.putText(plate, "A 12345", (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (240, 240, 240), 3, cv2.LINE_AA)
    frame[500:544, 420:560] = plate
    assert len(eu_plate_candidates(frame)[0]) == 0


def boxes(*rows):
    return np.array(rows, dtype=np.float32), np.array([0.9] * len(rows), dtype=np.float32)


def test_the_first_detectors_boxes_stay_as_they_are_and_only_new_boxes_join_them():
    corners, scores = boxes([100, 100, 200, 140], [400, 100, 500, 140])
    extra = np.array([[102, 101, 201, 141], [105, 95, 230, 150], [700, 300, 800, 320]], dtype=np.float32)
    merged, merged_scores = add_unmatched(corners, scores, extra, np.full(3, 0.5, np.float32))
    # Kept unchanged, first; the duplicate (IoU > 0.6) dropped; the partly overlapping one and the new one added.
    assert merged[:2].tolist() == corners.tolist()
    assert merged[2:].tolist() == extra[1:].tolist()
    assert merged_scores.tolist() == [pytest.approx(0.9)] * 2 + [0.5, 0.5]


def test_adding_to_or_from_nothing_keeps_the_other_side():
    corners, scores = boxes([100, 100, 200, 140])
    empty = np.zeros((0, 4), np.float32)
    assert add_unmatched(corners, scores, empty, np.zeros(0, np.float32))[0].tolist() == corners.tolist()
    assert add_unmatched(empty, np.zeros(0, np.float32), corners, scores)[0].tolist() == corners.tolist()


def test_a_plate_cut_by_the_frames_right_edge_is_found_for_its_visible_part():
    frame = street()
    plate = eu_plate(200)
    x, y = 1280 - 90, 400  # 90 of its 200 px show
    frame[y : y + plate.shape[0], x:] = plate[:, :90]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((x, y, 1280, y + plate.shape[0]), box) >= 0.5 for box in corners.tolist())


def test_a_band_found_in_part_grows_to_the_rows_of_the_plates_ground_but_not_into_a_light_car():
    light = np.zeros((80, 200), dtype=bool)
    light[10:40] = True  # the plate's ground; the band was found only at rows 10-25 (its code cut it)
    assert _ground_rows(light, 10, 15, 200) == (10, 40)
    light[:] = True  # a white car all round: growing would make a box too tall for a plate
    assert _ground_rows(light, 10, 15, 60) == (10, 25)


def tilted_plate_in_street(width: int, angle: float, x: int, y: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """A street frame with an EU plate ``width`` px wide turned by ``angle`` degrees at ``x, y``, and its box."""
    frame = street()
    plate = eu_plate(width)
    h, w = plate.shape[:2]
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotation[:, 2] += (x, y)
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64) @ rotation.T
    warped = cv2.warpAffine(plate, rotation, (1280, 720), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), rotation, (1280, 720)) > 127
    frame[inside] = warped[inside]
    return frame, (*corners.min(axis=0), *corners.max(axis=0))


@pytest.mark.parametrize("angle", [-6.0, 6.0])
def test_a_tilted_plate_is_boxed_to_its_tilted_extent(angle):
    frame, truth = tilted_plate_in_street(220, angle, 500, 420)
    found, _ = eu_plate_candidates(frame)
    # Boxed to the band's rows only, the IoU is 0.72-0.77.
    assert max((iou(truth, box) for box in found.tolist()), default=0.0) >= 0.9


@pytest.mark.parametrize("angle", [-9.0, 9.0])
def test_a_large_tilted_plate_near_the_frames_bottom_is_boxed_to_its_tilted_extent(angle):
    # The slopes' search reaches past the frame's bottom: the rows beyond it repeat its last row.
    frame, truth = tilted_plate_in_street(400, angle, 300, 560)
    found, _ = eu_plate_candidates(frame)
    assert max((iou(truth, box) for box in found.tolist()), default=0.0) >= 0.8


def test_a_plate_cut_by_the_frames_bottom_is_found_by_its_short_band():
    frame = street()
    plate = eu_plate(120)  # 25 px high; the frame shows its top 11 rows, its band 11x11 px (not upright)
    x, shown = 420, 11
    frame[720 - shown :, x : x + 120] = plate[:shown]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((x, 720 - shown, x + 120, 720), box) >= 0.5 for box in corners.tolist())


@pytest.mark.parametrize("width", [90, 160])
def test_a_plate_cut_by_the_frames_left_edge_is_found_without_its_band(width):
    frame = street()
    plate = eu_plate(width)
    shown = round(width * 0.45)  # the band and the first characters are outside the frame
    y = 400
    frame[y : y + plate.shape[0], :shown] = plate[:, width - shown :]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((0, y, shown, y + plate.shape[0]), box) >= 0.5 for box in corners.tolist())


def test_slats_at_the_left_edge_are_no_plate():
    frame = street()
    frame[400:430, :60] = 225
    for x in range(2, 60, 8):  # a grille: dark slats as tall as the light panel, not a row of characters
        frame[400:430, x : x + 3] = 30
    assert len(eu_plate_candidates(frame)[0]) == 0


def test_a_plate_cut_by_the_frames_right_edge_is_found_when_its_band_does_not_show_blue():
    frame = street()
    plate = eu_plate(90, blue=(110, 110, 110))  # a band too grey (dusk, a faded plate) to pass for blue
    shown = 60
    y = 400
    frame[y : y + plate.shape[0], 1280 - shown :] = plate[:, :shown]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((1280 - shown, y, 1280, y + plate.shape[0]), box) >= 0.5 for box in corners.tolist())


def test_a_plate_with_faint_characters_on_a_dark_car_is_judged_by_its_own_light():
    frame = street()
    frame[450:560, 380:700] = 18  # a dark car body around the plate: the window's split is plate | body
    plate = eu_plate(70, ink=(120, 120, 120))  # worn or over-exposed characters, mid-grey
    x, y = 420, 500
    frame[y : y + plate.shape[0], x : x + 70] = plate
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((x, y, x + 70, y + plate.shape[0]), box) >= 0.5 for box in corners.tolist())


def test_a_plate_cut_by_the_left_edge_on_a_light_car_body_is_boxed_by_its_row_of_characters():
    frame = street()
    plate = eu_plate(120)
    cv2.rectangle(plate, (0, 0), (119, plate.shape[0] - 1), (30, 30, 30), 1)  # a thin dark border
    shown, y, height = 64, 400, plate.shape[0]
    frame[y - 40 : y + height + 30, :140] = 215  # a light car body above and below the plate
    frame[y + height : y + height + 6, :140] = 40  # a dark bumper edge: the text line runs into it
    frame[y : y + height, :shown] = plate[:, 120 - shown :]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((0, y, shown, y + height), box) >= 0.5 for box in corners.tolist())


def test_a_wide_plate_cut_by_the_left_edge_is_found_past_an_eighth_of_the_frame():
    frame = street()
    plate = eu_plate(440)
    shown, y = 210, 420  # wider than 1280 / 8: its text line runs past a strip of that width
    frame[y : y + plate.shape[0], :shown] = plate[:, 440 - shown :]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((0, y, shown, y + plate.shape[0]), box) >= 0.5 for box in corners.tolist())


@pytest.mark.parametrize(("height", "found"), [(40, True), (100, False)])
def test_a_row_of_characters_taller_than_a_tenth_of_the_frame_makes_no_plate(height, found):
    frame = street()
    frame[100 : 100 + height * 2, :200] = 215  # a light ground with a row of dark, alike marks on it
    for x in range(2, 190, height // 5 + 8):
        frame[100 + height // 2 : 100 + height // 2 + height, x : x + height // 5] = 35
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    line = (0, 100 + height // 2, 200, height)
    plate = _by_character_row(gray, np.zeros(gray.shape, dtype=bool), line)
    assert (plate is not None) == found  # 100 px of 720: building windows, not a plate's characters


def test_a_plate_cut_by_the_right_edge_needs_steps_only_for_the_part_that_shows():
    frame = street()
    plate = eu_plate(40, ground=(30, 200, 245), text="WB-503-YG")  # a small yellow plate, 8 px high
    shown, y = 22, 400  # 2.75 times as wide as high: the band and two characters, 3 light/dark steps
    frame[y : y + plate.shape[0], 1280 - shown :] = plate[:, :shown]
    corners, _ = eu_plate_candidates(frame)
    assert any(iou((1280 - shown, y, 1280, y + plate.shape[0]), box) >= 0.5 for box in corners.tolist())


def test_a_plate_whose_ground_runs_on_into_a_light_car_ends_near_its_width_and_absorbs_no_other():
    frame = street()
    frame[360:480, 1000:] = 226  # a light car body to the frame's right edge, as light as the plate
    big = eu_plate(180)
    x, y = 1050, 400
    frame[y : y + big.shape[0], x : x + 180] = big
    small = eu_plate(56)  # another car's plate, cut by the right edge: its band and a character show
    frame[410 : 410 + small.shape[0], 1255:] = small[:, :25]
    corners, _ = eu_plate_candidates(frame)
    for truth in ((x, y, x + 180, y + big.shape[0]), (1255, 410, 1280, 410 + small.shape[0])):
        assert max(iou(truth, box) for box in corners.tolist()) >= 0.5


@pytest.mark.parametrize(("width", "shown", "body"), [(80, 6, None), (50, 8, 215)])
def test_a_plate_cut_by_the_bottom_with_only_its_character_tops_showing_is_boxed_over_them(width, shown, body):
    frame = street()
    if body is not None:
        frame[690:, 380:560] = body  # a light car body around the plate
    plate = eu_plate(width)
    x = 420
    frame[720 - shown :, x : x + width] = plate[:shown]  # its band and the top rows of its characters
    corners, _ = eu_plate_candidates(frame)
    assert max(iou((x, 720 - shown, x + width, 720), box) for box in corners.tolist()) >= 0.5


def test_no_plate_is_boxed_at_the_bottom_beside_a_blue_mark_without_character_tops():
    frame = street()
    frame[712:, 420:480] = 226  # a light strip at the bottom edge with a blue mark, but no characters
    frame[712:, 420:425] = (160, 60, 15)
    assert bottom_cut_plates(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), [(420, 712, 5, 8)], 40) == []


def test_a_small_plate_inside_a_much_larger_plates_box_is_kept_and_a_part_of_one_is_absorbed():
    corners = np.array(
        [
            [0, 150, 90, 185],  # a band's plate run on over a light car body ...
            [36, 160, 67, 168],  # ... around another car's small plate (1/13 of its area): kept
            [10, 155, 60, 178],  # inside the first and about its size (a third): the same plate, absorbed
            [2, 152, 92, 187],  # overlapping the first by IoU: averaged with it
        ],
        dtype=np.float32,
    )
    merged, _ = one_box_per_plate(corners, np.full(4, 0.5, np.float32))
    assert sorted(merged.round().tolist()) == [[1.0, 151.0, 91.0, 186.0], [36.0, 160.0, 67.0, 168.0]]
