"""The image guard: every kind of bad input gets a clear ImageError; odd but valid images become upright RGB."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from lib.images import ImageError, ImageLimits, decode_data_uri, jpeg_data_uri, open_image, prepare_jpeg


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def photo(w: int = 64, h: int = 48, color=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", (w, h), color)


def jpeg_with_exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "CameraMaker"  # Make, must not survive prepare_jpeg
    return encode(photo(80, 40), "JPEG", exif=exif.tobytes())


def huge_png() -> bytes:
    # 10,000 x 10,000 = 100 megapixels in a tiny file: the decompression bomb case.
    return encode(Image.new("1", (10_000, 10_000)), "PNG")


def animated(fmt: str) -> bytes:
    frames = [photo(color=(255, 0, 0)), photo(color=(0, 0, 255))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


BAD = [
    ("empty", b"", "empty"),
    ("text", b"hello, I am not a photo", "not an image"),
    ("html", b"<html><body>nope</body></html>", "not an image"),
    ("truncated jpeg", encode(photo(400, 300), "JPEG")[:600], "damaged or truncated"),
    ("100 megapixels", huge_png(), "megapixels"),
    ("tiny", encode(photo(4, 4), "PNG"), "at least"),
    ("pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "not an image"),
]


@pytest.mark.parametrize(("case", "data", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_refused_with_a_clear_message(case: str, data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        open_image(data)


def test_over_the_byte_limit_is_refused_before_decoding() -> None:
    data = encode(photo(), "PNG")
    with pytest.raises(ImageError, match="limit is"):
        open_image(data, ImageLimits(max_bytes=len(data) - 1))


GOOD = [
    ("cmyk jpeg", encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")),
    ("16-bit png", encode(Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), "PNG")),
    ("rgba png", encode(Image.new("RGBA", (40, 30), (10, 20, 30, 0)), "PNG")),
    ("palette gif", encode(photo().convert("P"), "GIF")),
    ("animated gif", animated("GIF")),
    ("animated webp", animated("WEBP")),
    ("greyscale", encode(Image.new("L", (40, 30), 128), "PNG")),
    ("bmp", encode(photo(), "BMP")),
]


@pytest.mark.parametrize(("case", "data"), GOOD, ids=[c[0] for c in GOOD])
def test_unusual_images_become_rgb(case: str, data: bytes) -> None:
    img = open_image(data)
    assert img.mode == "RGB"
    assert min(img.size) >= 8


def test_16_bit_png_is_scaled_not_clipped_to_white() -> None:
    img = open_image(encode(Image.fromarray(np.full((30, 40), 32768, dtype=np.uint16)), "PNG"))
    assert 120 <= img.getpixel((5, 5))[0] <= 135


def test_transparent_pixels_become_white() -> None:
    img = open_image(encode(Image.new("RGBA", (40, 30), (10, 20, 30, 0)), "PNG"))
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame() -> None:
    r, g, b = open_image(animated("GIF")).getpixel((10, 10))
    assert r > 200 and b < 50


def test_exif_orientation_is_applied() -> None:
    img = open_image(jpeg_with_exif_orientation(6))  # 6 = rotate 90 degrees clockwise
    assert img.size == (40, 80)


def test_prepare_jpeg_caps_the_longest_side_and_strips_metadata() -> None:
    out = prepare_jpeg(jpeg_with_exif_orientation(1), max_side=32)
    img = Image.open(io.BytesIO(out))
    assert img.format == "JPEG" and max(img.size) == 32
    assert not img.getexif()
    assert "exif" not in img.info and "icc_profile" not in img.info


def test_prepare_jpeg_leaves_small_images_their_size() -> None:
    out = prepare_jpeg(encode(photo(64, 48), "PNG"), max_side=896)
    assert Image.open(io.BytesIO(out)).size == (64, 48)


def test_real_photo_roundtrip(pets) -> None:
    path = sorted(pets.glob("pug_*.jpg"))[0]
    jpeg = prepare_jpeg(path.read_bytes(), max_side=256)
    assert decode_data_uri(jpeg_data_uri(jpeg)) == jpeg
    assert max(open_image(jpeg).size) == 256


DATA_URIS = [
    ("remote url", "https://example.com/cat.jpg", "remote URLs are not fetched"),
    ("file url", "file:///etc/passwd", "remote URLs are not fetched"),
    ("not base64 flag", "data:image/jpeg,abcd", "base64"),
    ("wrong media type", "data:text/html;base64,PGh0bWw+", "expected image"),
    ("broken base64", "data:image/jpeg;base64,@@@###", "not valid base64"),
    ("no scheme", "just some text", "base64 data: URI"),
]


@pytest.mark.parametrize(("case", "uri", "message"), DATA_URIS, ids=[c[0] for c in DATA_URIS])
def test_only_base64_image_data_uris_are_accepted(case: str, uri: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        decode_data_uri(uri)


def test_data_uri_over_the_limit_is_refused_before_decoding() -> None:
    uri = "data:image/png;base64," + base64.b64encode(b"x" * 3000).decode()
    with pytest.raises(ImageError, match="larger than"):
        decode_data_uri(uri, ImageLimits(max_bytes=1000))
