"""Upload validation and decoding of camera frames: every refusal has the right error and a safe message.

All images here are synthetic (noise and gradients); none holds personal data.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from onshore.errors import InputError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from onshore.vision.codec import decode_frame, encode_frame
from onshore.vision.frames import FrameProcessor
from onshore.vision.headers import FrameLimits, check_frame


def synthetic_image(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :, np.newaxis]
    noise = rng.normal(0, 30, (height, width, 3)).astype(np.float32)
    return np.clip(gradient + noise, 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray | None = None) -> bytes:
    return encode_frame(synthetic_image() if image is None else image, "image/jpeg")


def png_bytes(image: np.ndarray | None = None) -> bytes:
    return encode_frame(synthetic_image() if image is None else image, "image/png")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A structurally complete PNG declaring ``width`` x ``height`` with almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF0 segment rewritten to declare another size."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def test_jpeg_and_png_decode_to_bgr_arrays_of_their_size():
    for data, media_type in ((jpeg_bytes(), "image/jpeg"), (png_bytes(), "image/png")):
        image, detected_type = decode_frame(data)
        assert detected_type == media_type
        assert image.shape == (120, 160, 3) and image.dtype == np.uint8


def test_grey_png_decodes_to_three_channels():
    grey = synthetic_image()[:, :, 0]
    ok, encoded = cv2.imencode(".png", grey)
    image, _ = decode_frame(encoded.tobytes())
    assert image.shape == (120, 160, 3)


def test_empty_upload_is_a_validation_error():
    with pytest.raises(ValidationError, match=r"empty \(0 bytes\)") as caught:
        decode_frame(b"")
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "data",
    [b"GIF89a\x01\x00\x01\x00", b"%PDF-1.7 plate \xe4\xba\xacA12345", b"RIFF\x00\x00WEBPVP8 ", b"plain text"],
    ids=["gif", "pdf", "webp", "text"],
)
def test_non_jpeg_png_uploads_are_unsupported_media(data):
    with pytest.raises(UnsupportedMediaTypeError, match="not a JPEG or PNG") as caught:
        decode_frame(data)
    assert caught.value.status == 415
    # The message quotes at most the four magic bytes, never the content.
    assert "A12345" not in caught.value.message and "plate" not in caught.value.message


def test_declared_type_is_ignored_magic_bytes_decide():
    png_named_as_jpeg = png_bytes()
    assert check_frame(png_named_as_jpeg)[0] == "image/png"


def test_truncated_jpeg_is_refused_before_decoding():
    data = jpeg_bytes()
    with pytest.raises(ValidationError, match="truncated JPEG"):
        decode_frame(data[: len(data) // 2])


def test_jpeg_cut_inside_its_headers_is_truncated():
    with pytest.raises(ValidationError, match="truncated JPEG"):
        decode_frame(jpeg_bytes()[:40])


def test_truncated_png_is_refused():
    data = png_bytes()
    with pytest.raises(ValidationError, match="truncated PNG"):
        decode_frame(data[: len(data) - 20])


def test_jpeg_with_a_broken_marker_is_corrupt():
    data = bytearray(jpeg_bytes())
    (first_length,) = struct.unpack(">H", data[4:6])
    data[4 + first_length] = 0x00  # where the second segment's 0xFF marker byte should be
    with pytest.raises(ValidationError, match="corrupt JPEG"):
        decode_frame(bytes(data))


def test_png_with_scrambled_pixels_is_corrupt():
    data = bytearray(png_bytes())
    idat = data.index(b"IDAT")
    data[idat + 8 : idat + 40] = bytes(range(32))  # CRC no longer matches
    with pytest.raises(ValidationError, match="corrupt PNG"):
        decode_frame(bytes(data))


def test_zero_sized_image_is_a_validation_error():
    with pytest.raises(ValidationError, match="declares a 0x32 image"):
        decode_frame(png_header_only(0, 32))
    with pytest.raises(ValidationError, match="declares a 64x0 image"):
        decode_frame(with_jpeg_size(jpeg_bytes(), 64, 0))


def test_too_many_bytes_is_payload_too_large():
    data = jpeg_bytes()
    with pytest.raises(PayloadTooLargeError, match=f"{len(data)} bytes; the limit is 1000 bytes") as caught:
        decode_frame(data, FrameLimits(max_bytes=1000))
    assert caught.value.status == 413


@pytest.mark.parametrize("media", ["png", "jpeg"])
def test_decompression_bomb_is_refused_from_its_header(media):
    # 60000 x 60000 declared in a file of a few hundred bytes: refused without allocating pixels.
    data = png_header_only(60000, 60000) if media == "png" else with_jpeg_size(jpeg_bytes(), 60000, 60000)
    with pytest.raises(PayloadTooLargeError, match="60000x60000 pixels"):
        decode_frame(data)


def test_pixel_limit_is_configurable():
    with pytest.raises(PayloadTooLargeError, match="the limit is 10000"):
        decode_frame(jpeg_bytes(), FrameLimits(max_pixels=10_000))


def test_every_refusal_is_an_input_error():
    for data in (b"", b"text", jpeg_bytes()[:100]):
        with pytest.raises(InputError):
            decode_frame(data)


@pytest.fixture(scope="module")
def processor():
    with FrameProcessor(workers=2) as frame_processor:
        yield frame_processor


def test_processor_names_the_bad_frame_of_a_batch(processor):
    with pytest.raises(ValidationError, match="frame 1 is a truncated JPEG") as caught:
        processor.process([jpeg_bytes(), jpeg_bytes()[:500], png_bytes()])
    assert caught.value.details == {"frame": 1}


def test_processor_keeps_format_and_order_and_counts(processor):
    frames = processor.process([jpeg_bytes(), png_bytes()])
    assert [frame.media_type for frame in frames] == ["image/jpeg", "image/png"]
    assert frames[0].image.startswith(b"\xff\xd8\xff") and frames[1].image.startswith(b"\x89PNG")
    for frame in frames:
        assert (frame.width, frame.height) == (160, 120)
        assert frame.faces >= 0 and frame.plates >= 0


def test_processor_output_carries_no_exif(processor):
    data = jpeg_bytes()
    exif = b"Exif\x00\x00" + b"GPSLatitude 26.6 106.7"
    with_exif = data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:]
    [frame] = processor.process([with_exif])
    assert b"GPSLatitude" not in frame.image and b"Exif" not in frame.image


def test_processor_leaves_a_frame_without_faces_or_plates_nearly_unchanged(processor):
    flat = np.full((240, 320, 3), 128, dtype=np.uint8)
    [frame] = processor.process([png_bytes(flat)])
    assert (frame.faces, frame.plates) == (0, 0)
    assert np.array_equal(decode_frame(frame.image)[0], flat)
