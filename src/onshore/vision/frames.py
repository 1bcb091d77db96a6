"""Camera frames in, anonymised frames out: validation, decoding and the worker pool.

`decode_frame` accepts JPEG and PNG only, recognised by their magic bytes (never by a declared type),
and checks size, pixel count and completeness from the headers before any pixel is decoded, so a
decompression bomb or a truncated upload is refused cheaply. Decode work is bounded by the bytes sent: a JPEG
may not claim more pixels than `FrameLimits.max_pixels_per_byte` per byte, and a PNG may not claim more raw
image data than deflate can carry (1032 bytes per compressed byte, its hard limit).

Decoding is strict. JPEGs go through libjpeg-turbo (simplejpeg) with warnings turned into errors: a scan that
ends early (a truncated upload, even with an end-of-image marker appended) or corrupt entropy data is refused,
where OpenCV's decoder would fill the missing part with grey and carry on. PNGs go through libpng (OpenCV),
which refuses truncated or corrupt image data (CRC and zlib errors, missing rows) by itself.
Errors are `onshore.errors` input errors whose messages hold sizes, limits and the decoder's reason, never
image content:

    ValidationError (422)            empty, truncated, corrupt, inconsistent or zero-sized image
    PayloadTooLargeError (413)       more bytes or more pixels than `FrameLimits` allow
    UnsupportedMediaTypeError (415)  neither JPEG nor PNG, or a CMYK JPEG

`FrameProcessor` runs detection and anonymisation on a pool of worker threads (one detector each:
onnxruntime and OpenCV release the GIL, so threads use every core) and returns re-encoded images with
the counts of faces and plates hidden. Re-encoding also drops EXIF and other metadata (GPS among them).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import simplejpeg

from onshore.errors import InputError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from onshore.vision.anonymize import AnonymizationSettings, anonymize_frame
from onshore.vision.detectors import (
    DEFAULT_DETECTOR,
    Box,
    Detector,
    build_detector,
    detector_builder,
    hard_conditions,
)

JPEG = "image/jpeg"
PNG = "image/png"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C0-CF except DHT C4, JPG C8, DAC CC) carry the image size.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD9)])
_DEFLATE_MAX_RATIO = 1032  # deflate never expands a byte into more than this many (RFC 1951 length codes)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class FrameLimits:
    """What one uploaded frame may weigh.

    Attributes:
        max_bytes: largest encoded size accepted.
        max_pixels: largest width x height accepted (checked from the header, before decoding).
        max_pixels_per_byte: most pixels a JPEG's header may claim per byte of the file (checked before
            decoding). A flat 1080p JPEG is about 60 pixels a byte, a camera frame 5-20. PNGs are bounded by
            deflate's own limit instead (`_DEFLATE_MAX_RATIO`).
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_pixels_per_byte: int = 256


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


def sniff_media_type(data: bytes, name: str = "frame") -> str:
    """``image/jpeg`` or ``image/png`` from the magic bytes of ``data``.

    Raises:
        ValidationError: ``data`` is empty.
        UnsupportedMediaTypeError: ``data`` is neither JPEG nor PNG.
    """
    if not data:
        raise ValidationError(f"{name} is empty (0 bytes); send a JPEG or PNG image")
    if data.startswith(_JPEG_MAGIC):
        return JPEG
    if data.startswith(_PNG_MAGIC):
        return PNG
    raise UnsupportedMediaTypeError(
        f"{name} is not a JPEG or PNG image (its first bytes are {data[:4].hex()}); send image/jpeg or image/png"
    )


def _jpeg_size(data: bytes, name: str) -> tuple[int, int]:
    """Width and height from the SOF segment; also checks that the scan data ends with EOI."""
    size: tuple[int, int] | None = None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValidationError(f"{name} is a corrupt JPEG (bad marker at byte {position}); resend the image")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            raise ValidationError(f"{name} is a corrupt JPEG (segment length {length}); resend the image")
        if marker in _JPEG_SOF_MARKERS and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows, ended by EOI
            if size is None:
                raise ValidationError(f"{name} is a corrupt JPEG (no frame header); resend the image")
            if data.find(b"\xff\xd9", position + 2 + length) < 0:
                raise ValidationError(
                    f"{name} is a truncated JPEG ({len(data)} bytes, no end-of-image marker); resend it whole"
                )
            return size
        position += 2 + length
    raise ValidationError(f"{name} is a truncated JPEG ({len(data)} bytes, ends inside its headers); resend it whole")


def _png_size(data: bytes, name: str) -> tuple[int, int]:
    """Width and height from IHDR; also walks the chunks to check the file reaches IEND."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValidationError(f"{name} is a truncated or corrupt PNG (no IHDR header); resend the image")
    width, height = struct.unpack(">II", data[16:24])
    position = 8
    while position + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[position : position + 8])
        position += 12 + length
        if position > len(data):
            break
        if chunk_type == b"IEND":
            return width, height
    raise ValidationError(f"{name} is a truncated PNG ({len(data)} bytes, no IEND chunk); resend it whole")


def check_frame(data: bytes, limits: FrameLimits | None = None, name: str = "frame") -> tuple[str, int, int]:
    """Validate an uploaded frame from its bytes and headers alone, without decoding pixels.

    Returns:
        ``(media_type, width, height)``.

    Raises:
        ValidationError: empty, truncated, corrupt or zero-sized.
        PayloadTooLargeError: over ``limits.max_bytes`` or ``limits.max_pixels``.
        UnsupportedMediaTypeError: neither JPEG nor PNG.
    """
    limits = limits or FrameLimits()
    media_type = sniff_media_type(data, name)
    if len(data) > limits.max_bytes:
        raise PayloadTooLargeError(
            f"{name} is {len(data)} bytes; the limit is {limits.max_bytes} bytes: send a smaller image"
        )
    width, height = _jpeg_size(data, name) if media_type == JPEG else _png_size(data, name)
    if width == 0 or height == 0:
        raise ValidationError(f"{name} declares a {width}x{height} image; width and height must be at least 1")
    if width * height > limits.max_pixels:
        raise PayloadTooLargeError(
            f"{name} is {width}x{height} pixels ({width * height} pixels); the limit is {limits.max_pixels}: "
            "send a downscaled image"
        )
    if media_type == JPEG and width * height > len(data) * limits.max_pixels_per_byte:
        raise ValidationError(
            f"{name} claims {width}x{height} pixels in only {len(data)} bytes, more than "
            f"{limits.max_pixels_per_byte} pixels a byte (frames.max_pixels_per_byte): a real image of that size "
            "is larger, so this one is truncated or forged; resend it whole"
        )
    if media_type == PNG and _png_raw_bytes(data, width, height, name) > len(data) * _DEFLATE_MAX_RATIO:
        raise ValidationError(
            f"{name} claims {width}x{height} pixels in only {len(data)} bytes, more image data than deflate can "
            "compress into that: the file is truncated or forged; resend it whole"
        )
    return media_type, width, height


def _png_raw_bytes(data: bytes, width: int, height: int, name: str) -> int:
    """The size of a PNG's filtered image data as its IHDR declares it (non-interlaced)."""
    depth, colour = data[24], data[25]
    channels = _PNG_CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        raise ValidationError(f"{name} is a corrupt PNG (colour type {colour} with bit depth {depth}); resend it")
    return height * (1 + (width * channels * depth + 7) // 8)


def decode_frame(data: bytes, limits: FrameLimits | None = None, name: str = "frame") -> tuple[np.ndarray, str]:
    """Validate (see `check_frame`) and decode an uploaded frame to an 8-bit BGR array.

    EXIF orientation is applied; grey and alpha images become three-channel BGR.

    Returns:
        ``(image, media_type)``.

    Raises:
        ValidationError, PayloadTooLargeError, UnsupportedMediaTypeError: as `check_frame`, and
            ValidationError when the pixel data is corrupt.
    """
    media_type, width, height = check_frame(data, limits, name)
    if media_type == JPEG:
        image = _decode_jpeg(data, name)
    else:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValidationError(f"{name} is a corrupt PNG ({len(data)} bytes could not be decoded); resend it")
        image = decoded
    if image.shape[0] * image.shape[1] != width * height:
        raise ValidationError(
            f"{name} decodes to {image.shape[1]}x{image.shape[0]} pixels but its header says {width}x{height}; "
            "resend it"
        )
    return image, media_type


def _decode_jpeg(data: bytes, name: str) -> np.ndarray:
    """Decode strictly: any libjpeg warning (premature end of data, corrupt entropy data) is an error."""
    try:
        _height, _width, colorspace, _subsampling = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise ValidationError(f"{name} is a corrupt JPEG ({exc}); resend it") from None
    if colorspace in ("CMYK", "YCCK"):
        raise UnsupportedMediaTypeError(f"{name} is a {colorspace} JPEG; send an RGB or greyscale JPEG")
    try:
        image = simplejpeg.decode_jpeg(data, colorspace="BGR", fastdct=False, fastupsample=False, strict=True)
    except ValueError as exc:
        raise ValidationError(f"{name} is a truncated or corrupt JPEG ({exc}); resend it whole") from None
    return _orient(image, _exif_orientation(data))


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a JPEG, 1 when there is none or it cannot be read."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in _JPEG_STANDALONE_MARKERS or marker == 0xFF:
            position += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker == 0xDA or length < 2:
            return 1
        segment = data[position + 4 : position + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return _tiff_orientation(segment[6:])
        position += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for entry in range(min(count, 512)):
        start = ifd + 2 + entry * 12
        if start + 12 > len(tiff):
            break
        tag, kind, _n = struct.unpack(order + "HHI", tiff[start : start + 8])
        if tag == 0x0112 and kind == 3:  # Orientation, SHORT
            (value,) = struct.unpack(order + "H", tiff[start + 8 : start + 10])
            return value if 1 <= value <= 8 else 1
    return 1


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned upright as the EXIF orientation says (what OpenCV's decoder does too)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def encode_frame(image: np.ndarray, media_type: str, jpeg_quality: int = 90) -> bytes:
    """Encode a BGR array as JPEG or PNG, without metadata."""
    if media_type == JPEG:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    else:
        ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR array
        raise ValueError(f"OpenCV could not encode a {image.shape} array as {media_type}")
    return encoded.tobytes()


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
