"""Camera-frame anonymisation: find faces and licence plates offline and hide them.

Modules: `detectors` (the `Detector` protocol, CenterFace and plate-SSD detectors, chosen by name),
`anonymize` (blur, pixelate, mask; padding), `frames` (upload validation and the `FrameProcessor` pool),
`admit` (a frame's metadata and header checks, its `FrameBatch`), `stages` (detection and blob writes for the
processor), `ingest` (the `FrameService`: admit → bus, reads, erasure, sweep), `cli` (the ``onshore vision``
commands).
"""

from onshore.vision.anonymize import AnonymizationSettings, anonymize_frame
from onshore.vision.detectors import Box, Detector, build_detector
from onshore.vision.frames import AnonymizedFrame, FrameLimits, FrameProcessor, decode_frame

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
