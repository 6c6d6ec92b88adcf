"""tfmask.data.png_fast: the libdeflate path gives PIL's pixels, or steps aside (None)."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from tfmask.data import png_fast
from tfmask.alloc import keep_freed_memory
from tfmask.data.images import load_mask


def _png(img: Image.Image, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **save_kwargs)
    return buf.getvalue()


def _pil(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _fast(data: bytes):
    return png_fast.decode(Image.open(io.BytesIO(data)), data)


def _chunks(data: bytes):
    pos, out = 8, []
    while pos < len(data):
        length, tag = struct.unpack_from(">I4s", data, pos)
        out.append((tag, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _with_chunks(chunks) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + tag + body
        + struct.pack(">I", zlib.crc32(body, zlib.crc32(tag))) for tag, body in chunks)


def _noise(mode: str, size_wh=(37, 23), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    bands = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    shape = (size_wh[1], size_wh[0]) + ((bands,) if bands > 1 else ())
    if mode == "1":
        return Image.fromarray(rng.random(shape[:2]) > 0.5)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    # Flat regions too, so rows get every PNG filter type.
    arr[: shape[0] // 2, : shape[1] // 3] = arr[0, 0]
    img = Image.fromarray(arr, "L" if mode == "P" else mode)
    if mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=200)
    return img


def _palette4() -> Image.Image:
    img = Image.fromarray(np.arange(16, dtype=np.uint8).repeat(5).reshape(8, 10) % 16, "P")
    img.putpalette(sum(([i * 16, 255 - i * 16, i * 7] for i in range(16)), []))
    return img


VARIANTS = {
    "1-bit": (_noise("1"), {}),
    "gray": (_noise("L"), {}),
    "gray+alpha": (_noise("LA"), {}),
    "rgb": (_noise("RGB"), {}),
    "rgba": (_noise("RGBA"), {}),
    "palette": (_noise("P"), {}),
    "palette 4-bit": (_palette4(), {"bits": 4}),
    "palette transparency": (_noise("P"), {"transparency": 3}),
    "rgb, several IDAT chunks": (_noise("RGB", (512, 384)), {}),
    "rgb, ordinary text chunk": (_noise("RGB"), {"pnginfo": "Software"}),
    "rgb, compress_level 0": (_noise("RGB"), {"compress_level": 0}),
    "rgb, compress_level 9": (_noise("RGB"), {"compress_level": 9}),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_decode_equals_pil(name):
    img, kwargs = VARIANTS[name]
    if kwargs.get("pnginfo") == "Software":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "GIMP 2.10")
        kwargs = {"pnginfo": info}
    data = _png(img, **kwargs)
    if name.startswith("rgb, several"):
        assert sum(tag == b"IDAT" for tag, _ in _chunks(data)) > 1
    fast, slow = _fast(data), _pil(data)
    assert fast is not None, name
    assert fast.mode == slow.mode and fast.size == slow.size
    assert np.array_equal(np.asarray(fast), np.asarray(slow))
    for target in ("L", "RGB"):
        assert np.array_equal(np.asarray(fast.convert(target)), np.asarray(slow.convert(target)))
    assert fast.info.get("transparency") == slow.info.get("transparency")


def test_steps_aside_for_16_bit_jpeg_and_animation():
    wide = Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    assert _fast(_png(wide)) is None
    jpeg = io.BytesIO()
    _noise("RGB").save(jpeg, "JPEG")
    assert _fast(jpeg.getvalue()) is None
    frames = [_noise("RGB", seed=s) for s in (1, 2)]
    apng = io.BytesIO()
    frames[0].save(apng, "PNG", save_all=True, append_images=frames[1:])
    assert _fast(apng.getvalue()) is None


def test_steps_aside_for_exif_so_orientation_is_applied():
    img = _noise("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    assert _fast(_png(img, exif=exif.tobytes())) is None
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", "exif\n10\n00")
    assert _fast(_png(img, pnginfo=info)) is None


def test_steps_aside_for_interlaced():
    data = _png(_noise("RGB"))
    chunks = _chunks(data)
    ihdr = bytearray(chunks[0][1])
    ihdr[12] = 1  # Adam7
    assert _fast(_with_chunks([(b"IHDR", bytes(ihdr))] + chunks[1:])) is None


def test_truncated_and_corrupt_files_are_left_to_pil():
    data = _png(_noise("RGB", (200, 100)))
    truncated = data[: len(data) // 2]
    assert _fast(truncated) is None
    with pytest.raises(OSError):
        _pil(truncated)
    chunks = _chunks(data)
    corrupt = [(tag, body[:10] + bytes(len(body) - 20) + body[-10:] if tag == b"IDAT" else body)
               for tag, body in chunks]
    assert _fast(_with_chunks(corrupt)) is None
    short = [(tag, zlib.compress(zlib.decompress(body)[:-50]) if tag == b"IDAT" else body)
             for tag, body in chunks]
    assert _fast(_with_chunks(short)) is None


def test_load_mask_uses_fast_path_and_agrees_with_pil(tmp_path, monkeypatch):
    mask = np.zeros((48, 64, 3), np.uint8)
    mask[5:20, 5:30] = (255, 0, 0)
    mask[25:40, 30:60] = (0, 128, 255)
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path)
    calls = []
    real = png_fast.decode
    monkeypatch.setattr(png_fast, "decode", lambda img, data: calls.append(1) or real(img, data))
    gray, rgb = load_mask(path, rgb=False), load_mask(path, rgb=True)
    assert len(calls) == 2
    assert np.array_equal(rgb, mask)
    assert np.array_equal(gray, np.asarray(Image.fromarray(mask).convert("L")))


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["1", "L", "LA", "RGB", "RGBA", "P"]), st.integers(1, 70),
       st.integers(1, 40), st.integers(0, 2**31), st.integers(0, 9))
def test_fast_decode_equals_pil_on_random_images(mode, w, h, seed, level):
    data = _png(_noise(mode, (w, h), seed), compress_level=level)
    fast = _fast(data)
    assert fast is not None
    assert np.array_equal(np.asarray(fast), np.asarray(_pil(data)))


def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process; later calls are no-ops


def test_large_images_take_pils_streaming_path(monkeypatch):
    data = _png(_noise("RGB", (40, 30)))
    assert _fast(data) is not None
    monkeypatch.setattr(png_fast, "MAX_INFLATED_BYTES", 30 * (1 + 40 * 3) - 1)
    assert _fast(data) is None
