"""Camera-frame anonymisation: find faces and licence plates offline and hide them.

Modules: `detectors` (the `Detector` protocol, CenterFace and plate-SSD detectors, chosen by name),
`anonymize` (blur, pixelate, mask; padding), `headers` (an upload checked from its headers, `FrameLimits`), `codec`
(strict decoding, encoding without metadata), `frames` (the `FrameProcessor` pool), `choices` (the detector
and method names, without OpenCV), `admit` (a frame's metadata and header checks, its `FrameBatch`), `stages`
(detection and blob writes for the processor), `ingest` (the `FrameService`: admit → bus, reads, erasure, sweep),
`cli` (the ``onshore vision`` commands).

The names below are loaded on first use: importing a module of this package loads OpenCV and the detectors
only where that module needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onshore.vision.anonymize import AnonymizationSettings, anonymize_frame
    from onshore.vision.codec import decode_frame
    from onshore.vision.detectors import Box, Detector, build_detector
    from onshore.vision.frames import AnonymizedFrame, FrameProcessor
    from onshore.vision.headers import FrameLimits

_HOMES = {
    "AnonymizationSettings": "anonymize",
    "anonymize_frame": "anonymize",
    "decode_frame": "codec",
    "Box": "detectors",
    "Detector": "detectors",
    "build_detector": "detectors",
    "AnonymizedFrame": "frames",
    "FrameProcessor": "frames",
    "FrameLimits": "headers",
}

__all__ = [
    "AnonymizationSettings",
    "AnonymizedFrame",
    "Box",
    "Detector",
    "FrameLimits",
    "FrameProcessor",
    "anonymize_frame",
    "build_detector",
    "decode_frame",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
