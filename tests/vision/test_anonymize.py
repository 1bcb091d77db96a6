"""Anonymisation operators: the box is changed beyond recognition, the rest of the frame is not touched.

Synthetic textures only.
"""

from __future__ import annotations

import numpy as np
import pytest

from onshore.errors import InputError
from onshore.vision.anonymize import ANONYMIZERS, AnonymizationSettings, anonymize_frame, get_anonymizer, masked_regions
from onshore.vision.choices import DEFAULT_METHOD, METHOD_NAMES
from onshore.vision.detectors import Box


def text_like_texture(width: int = 320, height: int = 240) -> np.ndarray:
    """High-contrast stripes and noise, the kind of detail that makes plates and faces readable."""
    rng = np.random.default_rng(3)
    stripes = ((np.arange(width) // 4) % 2 * 200).astype(np.uint8)[np.newaxis, :, np.newaxis]
    noise = rng.integers(0, 55, (height, width, 3), dtype=np.uint8)
    return np.broadcast_to(stripes, (height, width, 3)) + noise


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    a = first.astype(np.float64).ravel() - first.mean()
    b = second.astype(np.float64).ravel() - second.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_the_methods_offered_are_the_operators_registered():
    assert tuple(ANONYMIZERS) == METHOD_NAMES
    assert DEFAULT_METHOD in ANONYMIZERS


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_destroys_detail_inside_the_box_and_nothing_outside(method):
    original = text_like_texture()
    box = Box("plate", 100, 80, 220, 120, 0.9)
    settings = AnonymizationSettings(method=method, padding={"plate": 0.0})
    result = anonymize_frame(original.copy(), [box], settings)
    inside_before, inside_after = original[80:120, 100:220], result[80:120, 100:220]
    assert np.abs(inside_before.astype(int) - inside_after.astype(int)).mean() > 40
    assert abs(correlation(inside_before, inside_after)) < 0.3
    outside = np.ones(original.shape[:2], dtype=bool)
    outside[80:120, 100:220] = False
    assert np.array_equal(result[outside], original[outside])


def test_padding_grows_the_region_per_kind_and_clips_to_the_frame():
    boxes = [Box("face", 0, 10, 20, 30, 0.9), Box("plate", 100, 100, 140, 110, 0.9)]
    regions = masked_regions(boxes, 150, 112, {"face": 0.5, "plate": 0.25})
    assert (regions[0].x1, regions[0].y1, regions[0].x2, regions[0].y2) == (0, 0, 30, 40)
    assert (regions[1].x1, regions[1].y1, regions[1].x2, regions[1].y2) == (90, 98, 150, 112)


def test_default_padding_covers_around_the_box():
    original = text_like_texture()
    result = anonymize_frame(original.copy(), [Box("face", 100, 100, 140, 140, 0.9)])
    assert not np.array_equal(result[95:100, 100:140], original[95:100, 100:140])


def test_no_boxes_no_change():
    original = text_like_texture()
    assert np.array_equal(anonymize_frame(original.copy(), []), original)


def test_unknown_method_lists_the_valid_names():
    with pytest.raises(InputError, match="unknown anonymisation method 'swirl'; choose one of: blur, pixelate, mask"):
        get_anonymizer("swirl")
    with pytest.raises(InputError, match="choose one of"):
        AnonymizationSettings(method="swirl")


def test_negative_padding_is_refused():
    with pytest.raises(InputError, match="padding for 'face' is -0.1"):
        AnonymizationSettings(padding={"face": -0.1})


def test_mask_is_black_and_pixelate_has_few_cells():
    original = text_like_texture()
    masked = anonymize_frame(original.copy(), [Box("plate", 10, 10, 90, 50, 1)], AnonymizationSettings("mask", {}))
    assert not masked[10:50, 10:90].any()
    pixelated = anonymize_frame(
        original.copy(), [Box("plate", 10, 10, 90, 50, 1)], AnonymizationSettings("pixelate", {})
    )
    assert len(np.unique(pixelated[10:50, 10:90].reshape(-1, 3), axis=0)) <= 8 * 4
