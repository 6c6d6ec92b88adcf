"""Faster PNG decoding: libdeflate inflates, PIL unfilters.

Decoding a class-colour mask was the converter's largest cost: a 512x384 RGB
mask PNG of flat colour regions is ~2 KB on disk and 590 KB inflated, and
zlib's inflate spends ~1.3 ms per mask copying the short-distance matches
(distance 3: one RGB pixel) byte by byte. libdeflate (the ``deflate``
package) inflates the same stream in ~0.1 ms. Its output is handed back to
PIL re-wrapped as *stored* (uncompressed) zlib blocks, so PIL's own C code
still does everything else (row filters, bit depths, palettes), and the
pixels are PIL's by construction.

:func:`decode` is an optimization only: it returns None, and the caller
decodes with PIL as before, whenever anything is out of the ordinary
(interlaced, an animated PNG, EXIF that may rotate the image, over 64 MB
inflated, a zlib stream that does not inflate to exactly the size the header
implies, a truncated chunk...). Errors are therefore always PIL's. As in
PIL, CRCs of IDAT chunks are not checked (PIL skips them too); those of the
chunks PIL parsed at open were checked by PIL.
"""

from __future__ import annotations

import struct
from typing import List, Optional

import deflate
from PIL import Image

# Raw modes of PIL's PNG "zip" decoder this path supports -> bits per pixel.
_RAW_BITS = {"1": 1, "L;2": 2, "L;4": 4, "L": 8, "P;1": 1, "P;2": 2, "P;4": 4, "P": 8,
             "RGB": 24, "LA": 16, "RGBA": 32}
# Ancillary chunks that make PIL's EXIF orientation differ from "normal", or
# that make the file an animation: such files take PIL's own path.
_EXIF_CHUNKS = (b"eXIf",)
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_ANIMATION_CHUNKS = (b"acTL", b"fcTL", b"fdAT")
# Above this many inflated bytes PIL's streaming decode is used: this path
# holds the inflated data twice (plain and re-wrapped) beside the image.
MAX_INFLATED_BYTES = 64 * 1024 * 1024


def _idat_payload(data: bytes) -> Optional[List[memoryview]]:
    """The IDAT chunks' data, or None if the chunk layout needs PIL's path."""
    view = memoryview(data)
    pos, end_of_file = 8, len(data)  # past the signature, which PIL checked
    idat: List[memoryview] = []
    while pos + 12 <= end_of_file:
        length, tag = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end_of_file:
            return None  # truncated chunk: PIL reports it
        if tag == b"IDAT":
            idat.append(view[pos + 8:body_end])
        elif tag == b"IEND":
            return idat or None
        elif tag in _EXIF_CHUNKS or tag in _ANIMATION_CHUNKS:
            return None
        elif tag in _TEXT_CHUNKS and data.startswith(b"Raw profile", pos + 8, body_end):
            return None  # ImageMagick-style EXIF PIL reads as orientation
        pos = body_end + 4
    return None  # no IEND


def decode(img: Image.Image, data: bytes) -> Optional[Image.Image]:
    """Decodes an opened, not yet loaded PNG; None when PIL's own path must do it.

    Args:
      img: ``Image.open(BytesIO(data))`` before ``load()``.
      data: the whole file.

    Returns:
      A loaded image with ``img``'s mode, size, palette and info, or None.
    """
    if (img.format != "PNG" or len(img.tile) != 1
            or img.info.get("interlace") or getattr(img, "n_frames", 1) != 1):
        return None
    tile = img.tile[0]
    rawmode = tile.args if isinstance(tile.args, str) else (tile.args or (None,))[0]
    bits = _RAW_BITS.get(rawmode)
    if tile.codec_name != "zip" or bits is None or tile.extents != (0, 0) + img.size:
        return None
    idat = _idat_payload(data)
    if idat is None:
        return None
    w, h = img.size
    size = h * (1 + (w * bits + 7) // 8)  # one filter-type byte per row
    if size > MAX_INFLATED_BYTES:
        return None
    try:
        raw = deflate.zlib_decompress(b"".join(idat), size)
    except deflate.DeflateError:
        return None  # corrupt or larger than declared: PIL reports it
    if len(raw) != size:
        return None  # short: truncated, PIL reports it
    out = Image.frombytes(img.mode, img.size, deflate.zlib_compress(raw, 0), "zip", rawmode)
    if img.mode == "P":
        out.putpalette(img.palette)
    out.info = dict(img.info)
    return out
