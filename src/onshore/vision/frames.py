"""Camera frames in, anonymised frames out: the worker pool.

A frame is checked from its headers (`headers`), decoded strictly (`codec`), then `FrameProcessor` runs
detection and anonymisation on a pool of worker threads (one detector each: onnxruntime and OpenCV release the
GIL, so threads use every core) and returns re-encoded images with the counts of faces and plates hidden.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

from onshore.errors import InputError
from onshore.vision.anonymize import AnonymizationSettings, anonymize_frame
from onshore.vision.codec import decode_frame, encode_frame
from onshore.vision.detectors import (
    DEFAULT_DETECTOR,
    Box,
    Detector,
    build_detector,
    detector_builder,
    hard_conditions,
)
from onshore.vision.headers import FrameLimits, check_frame

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class AnonymizedFrame:
    """One frame after anonymisation: the re-encoded image and what was hidden in it.

    Attributes:
        image: the encoded image, same format as the upload, without metadata.
        media_type: ``image/jpeg`` or ``image/png``.
        width: width in pixels.
        height: height in pixels.
        faces: face regions hidden. The detector errs towards hiding (threshold 0.1), so this counts
            doubtful regions too: it is not a count of people.
        plates: licence-plate regions hidden (same caveat).
        conditions: what made detection harder in this frame (`hard_conditions`: ``blurred``,
            ``low_light``); empty for a frame shot in the conditions the detectors do best in.
    """

    image: bytes
    media_type: str
    width: int
    height: int
    faces: int
    plates: int
    conditions: tuple[str, ...] = ()


def default_workers() -> int:
    """The number of CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class FrameProcessor:
    """Detects and hides faces and plates in batches of frames, in parallel on a worker pool.

    One detector is built per worker thread (detectors are not thread-safe); each runs single-threaded,
    and OpenCV is set to one thread process-wide, so ``workers`` frames are in flight at once without
    oversubscribing the cores.

    Args:
        detector: name in `onshore.vision.detectors.DETECTOR_NAMES`.
        anonymization: method and padding; defaults to a blur with per-kind padding.
        limits: size limits applied to every uploaded frame.
        workers: worker threads; defaults to the CPUs this process may use.
        jpeg_quality: quality of re-encoded JPEGs (PNG stays lossless).

    Raises:
        InputError: unknown detector or anonymisation method (the message lists the valid names).

    Example:
        >>> with FrameProcessor() as processor:  # doctest: +SKIP
        ...     [frame] = processor.process([jpeg_bytes])
        ...     frame.faces, frame.plates, len(frame.image)
    """

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        anonymization: AnonymizationSettings | None = None,
        limits: FrameLimits | None = None,
        workers: int | None = None,
        jpeg_quality: int = 90,
    ) -> None:
        self.anonymization = anonymization or AnonymizationSettings()
        self.limits = limits or FrameLimits()
        self.workers = workers or default_workers()
        self.jpeg_quality = jpeg_quality
        self._detector_name = detector
        self._local = threading.local()
        detector_builder(detector)  # fail fast on a bad name, in the caller's thread
        cv2.setNumThreads(1)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="onshore-vision")

    def _detector(self) -> Detector:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = build_detector(self._detector_name, threads=1)
        return detector

    def _process_one(
        self, data: bytes, name: str, anonymization: AnonymizationSettings, stop_on_hard_conditions: bool
    ) -> AnonymizedFrame:
        image, media_type = decode_frame(data, self.limits, name)
        conditions = hard_conditions(image)
        if conditions and stop_on_hard_conditions:  # the caller drops such frames: no detector pass, no image
            return AnonymizedFrame(b"", media_type, image.shape[1], image.shape[0], 0, 0, conditions)
        boxes = self._detector().detect([image])[0]
        anonymize_frame(image, boxes, anonymization)
        return AnonymizedFrame(
            image=encode_frame(image, media_type, self.jpeg_quality),
            media_type=media_type,
            width=image.shape[1],
            height=image.shape[0],
            faces=sum(box.kind == "face" for box in boxes),
            plates=sum(box.kind == "plate" for box in boxes),
            conditions=conditions,
        )

    def _detect_one(self, image: np.ndarray) -> list[Box]:
        return self._detector().detect([image])[0]

    def _anonymize_one(self, image: np.ndarray) -> tuple[np.ndarray, list[Box]]:
        boxes = self._detector().detect([image])[0]
        return anonymize_frame(image.copy(), boxes, self.anonymization), boxes

    def process(self, frames: Sequence[bytes]) -> list[AnonymizedFrame]:
        """Validate, anonymise and re-encode uploaded frames, in order.

        Every frame's headers are checked before any is decoded, so one bad frame fails the batch
        before work is spent on it.

        Raises:
            ValidationError, PayloadTooLargeError, UnsupportedMediaTypeError: for the first invalid
                frame; the message names it as ``frame N`` (0-based) and ``details`` is ``{"frame": N}``.
        """
        names = [f"frame {index}" for index in range(len(frames))]
        for index, (data, name) in enumerate(zip(frames, names, strict=True)):
            try:
                check_frame(data, self.limits, name)
            except InputError as error:  # same error, with the index for the API's error details
                raise type(error)(error.message, details={"frame": index}) from None
        return _results_in_order([self.submit(data, name) for data, name in zip(frames, names, strict=True)])

    def submit(
        self,
        frame: bytes,
        name: str = "frame",
        anonymization: AnonymizationSettings | None = None,
        *,
        stop_on_hard_conditions: bool = False,
    ) -> Future[AnonymizedFrame]:
        """Queue one uploaded frame; its future raises what `decode_frame` raises, naming it ``name``.

        For callers that want one outcome per frame (a refused frame does not fail the others).
        ``anonymization`` overrides the processor's own settings for this frame (a rule pack's choice).
        ``stop_on_hard_conditions``: a frame with `hard_conditions` comes back with them, no boxes and an empty
        image, without the detector pass (for callers that drop such frames).
        """
        return self._pool.submit(
            self._process_one, frame, name, anonymization or self.anonymization, stop_on_hard_conditions
        )

    def anonymize_images(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, list[Box]]]:
        """Anonymised copies of decoded BGR images and the boxes found in each, in order."""
        return _results_in_order([self._pool.submit(self._anonymize_one, image) for image in images])

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        """The boxes found in each decoded BGR image, in order."""
        return _results_in_order([self._pool.submit(self._detect_one, image) for image in images])

    def close(self) -> None:
        """Stop the workers after the frames in flight."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> FrameProcessor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _results_in_order(futures: list[Future[_Result]]) -> list[_Result]:
    """Results of ``futures`` in order; on the first failure, cancel the rest and raise it."""
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise
