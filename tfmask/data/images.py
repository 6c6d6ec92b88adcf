"""Reading images and masks safely: format checks, size limit, EXIF orientation.

Images keep their original bytes in the record unless they must be
re-encoded: an EXIF orientation other than "normal" (decoders in TF ignore
EXIF, so the pixels are rotated into place and re-encoded), or a pixel mode
TF's decoders do not turn into RGB reliably (CMYK, 16-bit, palette, alpha).
Masks are decoded with PIL (PNG inflated by libdeflate first, see
:mod:`tfmask.data.png_fast`) and compared as the tutorial did: the gray level of
``convert('L')``, or the colour of ``convert('RGB')`` for RGB class values.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tfmask.data import png_fast
from tfmask.annotation import EncodedImage
from tfmask.errors import DataError, PathLike

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Larger images are refused before decoding (decompression bombs). 100 MP is
# a 10000x10000 photo, far above what Mask R-CNN training resizes to.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
_EXIF_ORIENTATION = 0x0112
# Pixel modes TF's decode_jpeg / decode_png turn into 8-bit RGB as expected.
_KEEP_MODES = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "L")}
# PIL modes of 16-bit gray PNGs (and their 32-bit integer form).
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_MASK_MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "PA")


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for a record, plus what was done to it.

    Attributes:
      encoded: what goes into the record.
      reencoded: why the original bytes could not be kept (``""`` if kept).
      raw_size_hw: (height, width) of the file before EXIF rotation.
    """

    encoded: EncodedImage
    reencoded: str
    raw_size_hw: Tuple[int, int]


def _open(path: PathLike, data: bytes, what: str, max_pixels: int) -> Image.Image:
    if not data:
        raise DataError(path, f"{what} file is empty (0 bytes)", kind="unreadable")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise DataError(path, f"{what} is not a readable image file", kind="unreadable") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"{what} is truncated or corrupt ({exc})", kind="unreadable") from None
    except Image.DecompressionBombError as exc:
        # PIL's own guard (at 2x its MAX_IMAGE_PIXELS) fires before our check can.
        size = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{size.group(1)} pixels" if size else "more pixels than PIL allows"
        raise DataError(path, f"{what} declares {declared}, above the limit of {max_pixels}; "
                        "refused before decoding (a decompression bomb? raise "
                        "--max-image-pixels if it is genuine)", kind="too_large") from None
    w, h = img.size
    if w * h > max_pixels:
        raise DataError(path, f"{what} is {w}x{h} = {w * h} pixels, above the limit of "
                        f"{max_pixels} (raise --max-image-pixels if it is genuine)",
                        kind="too_large")
    return img


def _read_bytes(path: PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(path, f"{what} file not found", kind="missing_file") from None
    except OSError as exc:
        raise DataError(path, f"cannot read {what}: {exc.strerror}", kind="unreadable") from None


def _check_complete(path: PathLike, img: Image.Image, what: str, data: bytes) -> None:
    """Catches truncated and corrupt files without paying for a full decode.

    JPEG: the marker segments are walked to the first start-of-scan and an
    end-of-image marker must follow it (a truncated file has none; inside
    entropy-coded data a 0xFF byte is always followed by 0x00 or a restart
    marker, so 0xFFD9 there is the real end). TF's decoder fails on exactly
    such truncation, while damage inside the scan data only gives it
    warnings. This costs microseconds; a reduced-scale decode cost ~1 ms per
    512x384 photo, a quarter of the converter's time per image. PNG: decoded
    fully (PIL checks every chunk's CRC and the zlib stream).
    """
    if img.format == "JPEG":
        problem = jpeg_structure_problem(data)
        if problem:
            raise DataError(path, f"{what} is truncated or corrupt ({problem})",
                            kind="unreadable")
        return
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(path, f"{what} is truncated or corrupt ({exc})",
                        kind="unreadable") from None


def jpeg_structure_problem(data: bytes) -> str:
    """Why a JPEG's marker structure is broken, or ``""`` when it is complete.

    Walks the segments from SOI (each ``0xFF marker`` with a big-endian
    length, except the stand-alone markers RSTn/TEM) to the first SOS
    (``0xFFDA``), then requires an EOI (``0xFFD9``) after it.
    """
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return "no start-of-image marker"
    pos = 2
    while pos + 1 < n:
        if data[pos] != 0xFF:
            return f"bad marker at byte {pos}"
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            if data.find(b"\xff\xd9", pos) < 0:
                return "the file ends inside the image data (no end-of-image marker)"
            return ""
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xD9:
            return "end-of-image marker before any image data"
        if pos + 4 > n:
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return "the file ends before the image data"


def load_image(path: PathLike, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
               data: Optional[bytes] = None) -> LoadedImage:
    """Reads an image file for a record.

    Args:
      path: the image file; with ``data``, only the name errors give.
      max_pixels: larger images are refused before decoding.
      data: the file's bytes when they come from elsewhere (labelme's
        embedded ``imageData``).

    Raises:
      DataError: empty, truncated, not an image, not JPEG/PNG, or too large.
    """
    data = _read_bytes(path, "image") if data is None else data
    img = _open(path, data, "image", max_pixels)
    if img.format not in _KEEP_MODES:
        raise DataError(path, f"image format {img.format} is not supported; use JPEG or PNG",
                        kind="unsupported")
    raw_size_hw = (img.size[1], img.size[0])
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"image is truncated or corrupt ({exc})", kind="unreadable") from None
    reasons = []
    if orientation not in (1, None):
        reasons.append(f"EXIF orientation {orientation} applied")
    if img.mode in _WIDE_GRAY_MODES:
        reasons.append("16-bit gray pixels scaled to 8-bit RGB")
    elif img.mode not in _KEEP_MODES[img.format]:
        reasons.append(f"{img.mode} pixels converted to RGB")
    if not reasons:
        _check_complete(path, img, "image", data)
        fmt = "jpeg" if img.format == "JPEG" else "png"
        return LoadedImage(EncodedImage(data, fmt, raw_size_hw, Path(path).name), "",
                           raw_size_hw)
    try:
        img.load()
        rgb = _to_rgb(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"image is truncated or corrupt ({exc})", kind="unreadable") from None
    out = io.BytesIO()
    if img.format == "JPEG":
        rgb.save(out, format="JPEG", quality=95, subsampling=0)
        fmt = "jpeg"
    else:
        rgb.save(out, format="PNG")
        fmt = "png"
    encoded = EncodedImage(out.getvalue(), fmt, (rgb.size[1], rgb.size[0]), Path(path).name)
    return LoadedImage(encoded, "; ".join(reasons), raw_size_hw)


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit gray is scaled (65535 -> 255) where PIL's convert would clip at 255."""
    if img.mode in _WIDE_GRAY_MODES:
        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(wide * (255.0 / 65535.0)), 0, 255)
                              .astype(np.uint8), "L")
    return img.convert("RGB")


def load_mask(path: PathLike, rgb: bool, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
              ) -> np.ndarray:
    """Decodes a class-colour mask as the converter compares it.

    Args:
      path: the mask file (PNG; any of modes 1, L, P, RGB, RGBA, LA, PA).
      rgb: return colours (``convert('RGB')``) instead of gray levels.

    Returns:
      [H, W] uint8 gray levels, or [H, W, 3] uint8 RGB, after EXIF orientation.

    Raises:
      DataError: unreadable, not a PNG-like 8-bit image (16-bit masks are
        refused: their gray conversion would clip values).
    """
    data = _read_bytes(path, "mask")
    img = _open(path, data, "mask", max_pixels)
    if img.mode not in _MASK_MODES:
        raise DataError(path, f"mask has pixel mode {img.mode} ({_mode_name(img.mode)}); save "
                        "masks as 8-bit PNG (gray, palette or RGB)", kind="bad_mask")
    if img.format == "JPEG":
        raise DataError(path, "mask is a JPEG; lossy compression changes class pixel "
                        "values at edges. Save masks as PNG", kind="bad_mask")
    try:
        fast = png_fast.decode(img, data)  # no EXIF there: nothing to rotate
        if fast is not None:
            img = fast
        else:
            img.load()
            if img.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None):
                img = ImageOps.exif_transpose(img)  # (copies the image even when upright)
        return np.asarray(img.convert("RGB" if rgb else "L"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"mask is truncated or corrupt ({exc})", kind="unreadable") from None


def _mode_name(mode: str) -> str:
    return {"I;16": "16-bit gray", "I;16B": "16-bit gray", "I": "32-bit integer",
            "F": "32-bit float", "CMYK": "CMYK"}.get(mode, "unsupported")


def find_images(images_dir: PathLike) -> Tuple[list, list]:
    """Image files (sorted by name) and other files found in a folder.

    Returns:
      (images, ignored): paths with an extension in ``IMAGE_EXTENSIONS``
      (case-insensitive), and every other file, so callers can report them.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DataError(images_dir, "images folder not found", kind="missing_file")
    images, ignored = [], []
    for p in sorted(images_dir.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        (images if p.suffix.lower() in IMAGE_EXTENSIONS else ignored).append(p)
    return images, ignored

