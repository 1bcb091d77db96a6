"""The plate SSD on onnxruntime (`onshore.vision.ssdnet`) against the same Caffe model on OpenCV DNN, and the
input blobs (`onshore.vision.sessions.normalised_blob`) against OpenCV's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from onshore.vision.plates import PlateSSDDetector, plate_input_sizes
from onshore.vision.sessions import normalised_blob
from onshore.vision.ssdnet import PlateSSDNet, _onnx_model, parse_prototxt
from onshore.vision.wheels import wheel_file
from tests.vision.test_detectors import IMAGES, labelled_images

MODEL_FILES = (
    str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.prototxt")),
    str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.caffemodel")),
)


@pytest.fixture(scope="module")
def ours() -> PlateSSDNet:
    return PlateSSDNet(*MODEL_FILES)


def street_blobs(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Blobs of shared plate photos letterboxed into input ``size`` (grey padding), normalised as the SSD's."""
    params = cv2.dnn.Image2BlobParams()
    params.scalefactor = (1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225), 0.0)
    params.mean = (255 * 0.485, 255 * 0.456, 255 * 0.406, 0.0)
    params.swapRB = True
    blobs = []
    for name in sorted(labelled_images("ccpd_samples"))[:count]:
        photo = cv2.imread(str(IMAGES / "ccpd_samples" / name))
        width, height = size
        scale = min(width / photo.shape[1], height / photo.shape[0])
        canvas = np.full((height, width, 3), 127, dtype=np.uint8)
        resized = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        blobs.append(cv2.dnn.blobFromImageWithParams(canvas, params))
    return blobs


class OpenCVNet:
    """The plate SSD on OpenCV DNN behind `PlateSSDNet.forward`, as the detector ran it before: one net per
    input size (an OpenCV net shown a second input size keeps the first size's priors)."""

    def __init__(self) -> None:
        self.nets: dict[tuple[int, ...], cv2.dnn.Net] = {}

    def forward(self, blob: np.ndarray, threshold: float) -> np.ndarray:
        net = self.nets.setdefault(blob.shape, cv2.dnn.readNetFromCaffe(*MODEL_FILES))
        return opencv_detections(net, blob, threshold)


def opencv_detections(net: cv2.dnn.Net, blob: np.ndarray, threshold: float) -> np.ndarray:
    net.setInput(blob)
    detections = net.forward()[0, 0]
    return detections[detections[:, 2] > threshold]


@pytest.mark.parametrize("size", [(800, 480), (416, 256), (224, 128), (320, 608)])
def test_onnxruntime_gives_opencvs_detections_on_plate_photos(ours, size):
    reference = cv2.dnn.readNetFromCaffe(*MODEL_FILES)
    found = 0
    for blob in street_blobs(3, size):
        expected = opencv_detections(reference, blob, 0.01)
        got = ours.forward(blob, 0.01)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4)
        found += len(expected)
    assert found > 0  # the SSD sees something in the photos: the comparison covers real boxes


def test_the_detector_finds_the_plates_it_found_on_opencv_dnn_at_every_pass_of_a_street_frame():
    detector = PlateSSDDetector()
    reference = PlateSSDDetector()
    reference._ssd = OpenCVNet()  # type: ignore[assignment]
    name = sorted(labelled_images("ccpd_samples"))[0]
    photo = cv2.imread(str(IMAGES / "ccpd_samples" / name))
    frame = cv2.resize(photo, (1280, 720))
    found = 0
    for size in [*plate_input_sizes(1280, 720), (224, 128)]:
        expected = reference._detect_letterboxed(frame, size, 0.01)[0]
        got = detector._detect_letterboxed(frame, size, 0.01)[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=0.05)  # frame px
        found += int((expected[:, 4] > 0.5).sum())
    assert found > 0
    boxes, expected_boxes = detector.detect([frame])[0], reference.detect([frame])[0]
    assert [(box.x1, box.y1, box.x2, box.y2) for box in boxes] == [
        (box.x1, box.y1, box.x2, box.y2) for box in expected_boxes
    ]
    assert [box.score for box in boxes] == pytest.approx([box.score for box in expected_boxes], abs=1e-3)


def test_the_priors_are_opencvs(ours):
    reference = cv2.dnn.readNetFromCaffe(*MODEL_FILES)
    blob = np.zeros((1, 3, 256, 416), dtype=np.float32)
    reference.setInput(blob)
    expected = reference.forward("concat0")[0]  # (2, 4 n): corners, then variances
    cells = [head.shape[2:] for head in ours._session.run(ours._loc_heads, {"data": blob})]
    priors = ours._prior_corners((416, 256), cells)
    np.testing.assert_allclose(priors[:, :4].reshape(-1), expected[0], atol=1e-6)
    np.testing.assert_allclose(priors[:, 4:].reshape(-1), expected[1], atol=1e-7)


def test_a_higher_threshold_keeps_exactly_the_stronger_rows(ours):
    (blob,) = street_blobs(1, (800, 480))
    weak = ours.forward(blob, 0.01)
    strong = ours.forward(blob, 0.3)
    np.testing.assert_array_equal(strong, weak[weak[:, 2] > 0.3])
    assert np.all(np.diff(weak[:, 2]) <= 0)  # strongest first, as OpenCV orders them


def test_a_blank_input_gives_no_plate(ours):
    reference = cv2.dnn.readNetFromCaffe(*MODEL_FILES)
    blob = np.zeros((1, 3, 128, 224), dtype=np.float32)
    assert len(ours.forward(blob, 0.1)) == len(opencv_detections(reference, blob, 0.1)) == 0


def test_prototxt_fields_repeat_and_nest_in_file_order():
    parsed = parse_prototxt('layer {\n name: "a" # note\n p { x: 1 x: 2 }\n}\nlayer { name: "b" }\n')
    assert parsed == {"layer": [{"name": ["a"], "p": [{"x": ["1", "2"]}]}, {"name": ["b"]}]}


def test_a_net_with_a_layer_the_conversion_lacks_is_refused():
    text = Path(MODEL_FILES[0]).read_text(encoding="utf-8")
    pooled = text.replace('type: "ReLU"', 'type: "Pooling"', 1)
    assert pooled != text
    with pytest.raises(ValueError, match="of type 'Pooling'"):
        _onnx_model(parse_prototxt(pooled)["layer"], cv2.dnn.readNetFromCaffe(*MODEL_FILES))


@pytest.mark.parametrize("size", [(1600, 928), (1280, 736), (800, 480), (333, 97)])
def test_the_normalised_blob_is_opencvs_bit_for_bit(size):
    mean = tuple((255 * np.array([0.485, 0.456, 0.406], dtype=np.float32)).tolist())
    scale = tuple((1 / (255 * np.array([0.229, 0.224, 0.225], dtype=np.float32))).tolist())
    params = cv2.dnn.Image2BlobParams()
    params.mean, params.scalefactor, params.swapRB = (*mean, 0.0), (*scale, 0.0), True
    photo = cv2.imread(str(IMAGES / "ccpd_samples" / sorted(labelled_images("ccpd_samples"))[0]))
    image = cv2.resize(photo, size)
    ours = normalised_blob(image, mean, scale)
    assert ours.shape == (1, 3, size[1], size[0]) and ours.dtype == np.float32
    assert np.array_equal(ours, cv2.dnn.blobFromImageWithParams(image, params))


@pytest.mark.parametrize("size", [(1280, 736), (640, 480), (1280, 960), (544, 352), (96, 64)])
def test_the_plain_resized_blob_is_opencvs_bit_for_bit(size):
    """CenterFace's input: the frame resized to ``size`` (up or down, or not at all), RGB, values as they are."""
    photo = cv2.imread(str(IMAGES / "ccpd_samples" / sorted(labelled_images("ccpd_samples"))[1]))
    frame = cv2.resize(photo, (640, 480))
    ours = normalised_blob(frame, size=size)
    assert ours.shape == (1, 3, size[1], size[0]) and ours.dtype == np.float32
    assert np.array_equal(ours, cv2.dnn.blobFromImage(frame, 1.0, size, (0, 0, 0), swapRB=True))


def test_the_smaller_inputs_made_from_the_last_shrunk_one_find_the_plates_found_from_the_frame():
    """`_passes` resizes each smaller input from the previous one: the same plates, boxes within a tenth."""
    detector = PlateSSDDetector()
    compared = 0
    for name in sorted(labelled_images("ccpd_samples"))[:4]:
        frame = cv2.resize(cv2.imread(str(IMAGES / "ccpd_samples" / name)), (1280, 720))
        sizes = plate_input_sizes(1280, 720)
        cascaded = detector._passes(frame, sizes, 0.5)
        direct = np.concatenate([detector._detect_letterboxed(frame, size, 0.5)[0] for size in sizes])
        assert len(cascaded) == len(direct)
        for box in direct:
            nearest = np.abs(cascaded[:, :4] - box[:4]).max(axis=1).min()
            assert nearest <= max(4.0, 0.1 * (box[2] - box[0]))  # frame px: a pixel of a small input is ~6
            compared += 1
    assert compared > 0
