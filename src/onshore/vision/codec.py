"""Strict decoding of a checked frame to an upright BGR array, and encoding without metadata.

JPEGs go through libjpeg-turbo (simplejpeg) with warnings turned into errors: a scan that ends early (a
truncated upload, even with an end-of-image marker appended) or corrupt entropy data is refused, where
OpenCV's decoder would fill the missing part with grey and carry on. PNGs go through libpng (OpenCV), which
refuses truncated or corrupt image data (CRC and zlib errors, missing rows) by itself. Re-encoding drops EXIF
and other metadata (GPS among them).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import simplejpeg

from onshore.errors import UnsupportedMediaTypeError, ValidationError
from onshore.vision.headers import JPEG, JPEG_STANDALONE_MARKERS, FrameLimits, check_frame


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
        if marker in JPEG_STANDALONE_MARKERS or marker == 0xFF:
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
