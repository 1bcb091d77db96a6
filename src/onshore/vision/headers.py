"""An uploaded frame checked from its bytes and headers alone, before any pixel is decoded.

JPEG and PNG only, recognised by their magic bytes (never by a declared type); size, pixel count and
completeness come from the headers, so a decompression bomb or a truncated upload is refused cheaply. Decode
work is bounded by the bytes sent: a JPEG may not claim more pixels than `FrameLimits.max_pixels_per_byte` per
byte, and a PNG may not claim more raw image data than deflate can carry (1032 bytes per compressed byte, its
hard limit). Errors are `onshore.errors` input errors whose messages hold sizes, limits and the reason, never
image content:

    ValidationError (422)            empty, truncated, corrupt, inconsistent or zero-sized image
    PayloadTooLargeError (413)       more bytes or more pixels than `FrameLimits` allow
    UnsupportedMediaTypeError (415)  neither JPEG nor PNG (a CMYK JPEG: at decoding, `codec`)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from onshore.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError

JPEG = "image/jpeg"
PNG = "image/png"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C0-CF except DHT C4, JPG C8, DAC CC) carry the image size.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD9)])
_DEFLATE_MAX_RATIO = 1032  # deflate never expands a byte into more than this many (RFC 1951 length codes)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type


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
        if marker in JPEG_STANDALONE_MARKERS:
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
