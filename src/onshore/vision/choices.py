"""The names an operator picks from, known without loading OpenCV or a model.

`onshore.vision.detectors` registers a builder under each of `DETECTOR_NAMES` and `onshore.vision.anonymize` an
operator under each of `METHOD_NAMES` (a test holds them to it); the CLI's help and a process that never sees a
frame read the names here, so they import neither.
"""

from __future__ import annotations

DETECTOR_NAMES = ("faces-and-plates", "faces-and-plates-fast", "centerface", "plate-ssd", "plate-ssd-cascade")
DEFAULT_DETECTOR = "faces-and-plates"

METHOD_NAMES = ("blur", "pixelate", "mask")
DEFAULT_METHOD = "blur"
