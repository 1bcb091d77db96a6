"""``onshore vision detect`` and ``anonymize`` through Typer's test runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from onshore.vision.cli import vision_app
from onshore.vision.codec import encode_frame

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "images"
PLATE_PHOTO = (
    "zhijucen_00723180076628-90_91-349&464_520&519-518&521_346&524_344&470_516&467-0_0_22_31_30_30_3-112-14.jpg"
)

runner = CliRunner()


def shared_image(set_name: str, file_name: str) -> Path:
    path = IMAGES / set_name / file_name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared evaluation image missing in CI: {path}")
        pytest.skip(f"shared evaluation image not present: {path}")
    return path


@pytest.fixture
def blank_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "blank.jpg"
    path.write_bytes(encode_frame(np.full((120, 160, 3), 100, dtype=np.uint8), "image/jpeg"))
    return path


def test_detect_json_prints_every_box_of_every_image(blank_jpeg):
    plate_photo = shared_image("ccpd_samples", PLATE_PHOTO)
    result = runner.invoke(vision_app, ["detect", str(plate_photo), str(blank_jpeg), "--json"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)["images"]
    assert [report["image"] for report in reports] == [str(plate_photo), str(blank_jpeg)]
    plates = [box for box in reports[0]["boxes"] if box["kind"] == "plate"]
    assert any(box["x1"] < 380 and box["x2"] > 490 and box["y1"] < 480 and box["y2"] > 505 for box in plates)
    assert set(plates[0]) == {"kind", "x1", "y1", "x2", "y2", "score"}
    assert reports[1]["boxes"] == [] and (reports[1]["width"], reports[1]["height"]) == (160, 120)


def test_detect_table_names_the_kind_of_each_box():
    plate_photo = shared_image("ccpd_samples", PLATE_PHOTO)
    result = runner.invoke(vision_app, ["detect", str(plate_photo)])
    assert result.exit_code == 0, result.output
    assert "plate" in result.stdout and "score" in result.stdout


def test_detect_reports_a_refused_file_and_still_does_the_others(tmp_path, blank_jpeg):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = runner.invoke(vision_app, ["detect", str(text), str(blank_jpeg), "--json"])
    assert result.exit_code == 1
    reports = json.loads(result.stdout)["images"]
    assert reports[0]["error"]["code"] == "unsupported_media_type"
    assert reports[1]["boxes"] == []


def test_unknown_detector_exits_2_listing_the_names(blank_jpeg):
    result = runner.invoke(vision_app, ["detect", str(blank_jpeg), "--detector", "yolo"])
    assert result.exit_code == 2
    assert "choose one of: faces-and-plates" in result.stderr


def test_anonymize_writes_copies_and_counts(tmp_path, blank_jpeg):
    plate_photo = shared_image("ccpd_samples", PLATE_PHOTO)
    out = tmp_path / "out"
    result = runner.invoke(
        vision_app, ["anonymize", str(plate_photo), str(blank_jpeg), "--out", str(out), "--method", "mask", "--json"]
    )
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)["images"]
    assert reports[0]["plates"] >= 1 and reports[1] == {
        "image": str(blank_jpeg),
        "output": str(out / "blank.jpg"),
        "faces": 0,
        "plates": 0,
    }
    assert (out / plate_photo.name).read_bytes()[:3] == b"\xff\xd8\xff"


def test_anonymize_refuses_unknown_method_and_overwriting_the_input(tmp_path, blank_jpeg):
    result = runner.invoke(vision_app, ["anonymize", str(blank_jpeg), "--out", str(tmp_path), "--method", "swirl"])
    assert result.exit_code == 2 and "choose one of: blur, pixelate, mask" in result.stderr
    original = blank_jpeg.read_bytes()
    result = runner.invoke(vision_app, ["anonymize", str(blank_jpeg), "--out", str(blank_jpeg.parent)])
    assert result.exit_code == 1 and "would overwrite the input" in result.stderr
    assert blank_jpeg.read_bytes() == original


def test_an_onshore_command_that_sees_no_frame_loads_neither_opencv_nor_a_detector():
    """The CLI, the server and the worker import the detectors on the first frame, not at start (~0.1 s each)."""
    probe = (
        "import sys, onshore.cli, onshore.runtime, onshore.web.app, onshore.worker, onshore.vision.cli;"
        "print(sorted(m for m in sys.modules if m == 'cv2' or m == 'onnxruntime' or m.startswith('onshore.vision.d')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
