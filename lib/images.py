"""Safe image loading shared by uploads, datasets, the model server and benchmarks.

Every image from outside passes `open_image`: byte and pixel limits checked before decoding
(decompression bombs), first frame of animations, EXIF orientation applied, any mode to RGB.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageError",
    "ImageLimits",
    "DEFAULT_LIMITS",
    "open_image",
    "prepare_jpeg",
    "jpeg_data_uri",
    "decode_data_uri",
]

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)


class ImageError(ValueError):
    """The input is not an image we accept; the message is fit to show to a user."""


@dataclass(frozen=True)
class ImageLimits:
    """Upper bounds checked before any pixel is decoded."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 8


DEFAULT_LIMITS = ImageLimits()


def open_image(
    data: bytes, limits: ImageLimits = DEFAULT_LIMITS, draft: tuple[int, int] | None = None
) -> Image.Image:
    """Decode `data` into an upright RGB image, or raise `ImageError` saying what is wrong.

    `draft` lets a JPEG decode at a reduced scale no smaller than that size (much faster for big photos).
    """
    if not data:
        raise ImageError("The file is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise ImageError(
            f"The file is {len(data) / 2**20:.1f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
        raise ImageError(
            f"The image is {size}; the limit is {limits.max_pixels / 1e6:.0f} megapixels."
        ) from None
    except UnidentifiedImageError:
        raise ImageError("This is not an image we can read (JPEG, PNG, WebP, GIF, BMP or TIFF).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"The image is damaged or truncated ({exc}).") from None
    if img.format not in ALLOWED_FORMATS:
        raise ImageError(f"Image format {img.format} is not accepted; use JPEG, PNG or WebP.")
    width, height = img.size
    # Checked on the header alone, before decoding: a 100-megapixel PNG can be a few KB.
    if width * height > limits.max_pixels:
        raise ImageError(
            f"The image is {width}x{height} ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {limits.max_pixels / 1e6:.0f} megapixels."
        )
    if min(width, height) < limits.min_side:
        raise ImageError(f"The image is {width}x{height}; it must be at least {limits.min_side} pixels a side.")
    try:
        img.seek(0)  # animated GIF/WebP: the first frame
        if draft and img.format in ("JPEG", "MPO"):
            img.draft("RGB", draft)
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"The image is damaged or truncated ({exc}).") from None
    oriented: Image.Image = img
    with contextlib.suppress(Exception):  # a broken EXIF block should not cost the photo
        oriented = ImageOps.exif_transpose(img) or img
    return _to_rgb(oriented)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything above 255 to white.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def prepare_jpeg(
    data: bytes | Image.Image,
    max_side: int = 896,
    quality: int = 90,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> bytes:
    """Return a baseline JPEG of the image, longest side at most `max_side`, with no metadata."""
    img = data if isinstance(data, Image.Image) else open_image(data, limits)
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    # No exif/icc arguments: Pillow then writes none, so GPS and camera data never leave the client.
    img.save(out, format="JPEG", quality=quality, optimize=False)
    return out.getvalue()


def jpeg_data_uri(jpeg: bytes) -> str:
    """`data:image/jpeg;base64,...` for an OpenAI-style `image_url`."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def decode_data_uri(uri: str, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """The bytes inside a base64 `data:image/...` URI; anything else raises `ImageError`."""
    match = _DATA_URI.match(uri[:256])
    if not match:
        scheme = uri.split(":", 1)[0][:20] if ":" in uri[:30] else "no scheme"
        raise ImageError(f"image_url must be a base64 data: URI (got {scheme}); remote URLs are not fetched.")
    if not match.group("b64"):
        raise ImageError("image_url data: URI must be base64-encoded (';base64,').")
    mime = (match.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise ImageError(f"image_url data: URI has media type {mime!r}; expected image/*.")
    payload = uri[match.end():]
    if len(payload) * 3 // 4 > limits.max_bytes:
        raise ImageError(f"The image is larger than {limits.max_bytes / 2**20:.0f} MB.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("image_url data: URI is not valid base64.") from None
