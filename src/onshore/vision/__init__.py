"""Camera-frame anonymisation: find faces and licence plates offline and hide them.

Modules: `detectors` (the `Detector` protocol, CenterFace and plate-SSD detectors, chosen by name),
`anonymize` (blur, pixelate, mask; padding), `headers` (an upload checked from its headers, `FrameLimits`), `codec`
(strict decoding, encoding without metadata), `frames` (the `FrameProcessor` pool),
`admit` (a frame's metadata and header checks, its `FrameBatch`), `stages` (detection and blob writes for the
processor), `ingest` (the `FrameService`: admit → bus, reads, erasure, sweep), `cli` (the ``onshore vision``
commands).
"""

from onshore.vision.anonymize import AnonymizationSettings, anonymize_frame
from onshore.vision.codec import decode_frame
from onshore.vision.detectors import Box, Detector, build_detector
from onshore.vision.frames import AnonymizedFrame, FrameProcessor
from onshore.vision.headers import FrameLimits

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
