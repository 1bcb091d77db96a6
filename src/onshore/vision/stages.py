"""The frame stages of processing that are not law: detection and anonymisation, and the blob writes.

`onshore.pipeline.process` classifies a frame and decides whether it may be collected; it calls these
(`VisionStages`, the `FrameStages` of the processor) to hide faces and plates and to write the images. Blob keys
are made of the vehicle's pseudonym and a digest of the message id, never the message id itself. The detectors
(OpenCV, onnxruntime, the models) are imported with the pool, on the first frame: a process that never sees one
does not pay for them.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

from onshore.config import FrameSettings
from onshore.ingest.batch import FrameBatch
from onshore.rules.schema import FramePolicy
from onshore.storage.crypto import encrypt_blob
from onshore.storage.region import Region
from onshore.vision.headers import JPEG, FrameLimits

if TYPE_CHECKING:
    from onshore.vision.frames import AnonymizedFrame, FrameProcessor


def blob_stem(vehicle_ref: str, msg_id: str) -> str:
    """``<vehicle_ref>/<digest of msg_id>``: the part every blob key of one frame shares (never the msg_id)."""
    return f"{vehicle_ref}/{hashlib.sha256(msg_id.encode()).hexdigest()[:40]}"


def frame_key(vehicle_ref: str, msg_id: str, media_type: str) -> str:
    """Blob key of a frame's anonymised image: pseudonym and digest only, never the message id itself."""
    return f"frames/{blob_stem(vehicle_ref, msg_id)}.{'jpg' if media_type == JPEG else 'png'}"


def raw_key(vehicle_ref: str, msg_id: str) -> str:
    """Key of a raw frame in the restricted store (sealed bytes)."""
    return f"raw/{blob_stem(vehicle_ref, msg_id)}.sealed"


def frame_limits(frames: FrameSettings) -> FrameLimits:
    """What one frame may weigh, from the ``frames`` settings."""
    return FrameLimits(
        max_bytes=frames.max_bytes, max_pixels=frames.max_pixels, max_pixels_per_byte=frames.max_pixels_per_byte
    )


class VisionStages:
    """Detection on a pool of workers (built on first use) and the writes of a frame's blobs."""

    def __init__(self, frames: FrameSettings) -> None:
        self.settings = frames
        self.limits = frame_limits(frames)
        self._processor: FrameProcessor | None = None
        self._lock = threading.Lock()

    @property
    def processor(self) -> FrameProcessor:
        """The detection pool, built on first use (loading models takes about a second)."""
        from onshore.vision.frames import FrameProcessor

        with self._lock:
            if self._processor is None:
                self._processor = FrameProcessor(
                    detector=self.settings.detector,
                    limits=self.limits,
                    workers=self.settings.workers or None,
                    jpeg_quality=self.settings.jpeg_quality,
                )
            return self._processor

    def close(self) -> None:
        with self._lock:
            if self._processor is not None:
                self._processor.close()
                self._processor = None

    def anonymise(self, frame: FrameBatch, policy: FramePolicy, *, stop_on_hard_conditions: bool) -> AnonymizedFrame:
        """Find and hide faces and plates, as the pack's ``anonymise`` settings say.

        Raises:
            ValidationError, UnsupportedMediaTypeError: the pixel data turned out corrupt when decoded.
        """
        from onshore.vision.anonymize import AnonymizationSettings

        settings = AnonymizationSettings(method=policy.anonymise.method, padding=dict(policy.anonymise.padding))
        future = self.processor.submit(frame.image, "frame", settings, stop_on_hard_conditions=stop_on_hard_conditions)
        return future.result()

    def keep(self, region: Region, frame: FrameBatch, anonymised: AnonymizedFrame, *, raw_subject: str | None) -> bool:
        """Write the anonymised frame; with ``raw_subject``, the raw frame sealed under that subject's data key."""
        ref, msg_id = frame.vehicle.ref, frame.meta.msg_id
        region.blobs.put(frame_key(ref, msg_id, frame.media_type), anonymised.image)
        if raw_subject is None:
            return False
        data_key = region.subject_keys.keys_for([raw_subject], create=True)[raw_subject]
        region.restricted.put(raw_key(ref, msg_id), encrypt_blob(data_key, region.name, ref, msg_id, frame.image))
        return True
