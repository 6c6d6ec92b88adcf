"""tfmask.data.images: the JPEG completeness check that replaced a reduced-scale decode."""

import io

import numpy as np
import pytest
from PIL import Image

from tfmask.errors import DataError
from tfmask.data.images import jpeg_structure_problem, load_image


def _jpeg(progressive=False, exif=None, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    out = io.BytesIO()
    kwargs = {"progressive": progressive}
    if exif is not None:
        kwargs["exif"] = exif
    img.save(out, format="JPEG", quality=90, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("progressive", [False, True])
def test_complete_jpegs_pass_and_every_truncation_fails(progressive):
    data = _jpeg(progressive)
    assert jpeg_structure_problem(data) == ""
    assert jpeg_structure_problem(data + b"trailing bytes some cameras add") == ""
    for cut in range(0, len(data) - 1, max(1, len(data) // 60)):
        assert jpeg_structure_problem(data[:cut]), f"truncated at {cut} bytes passed"


def test_end_marker_inside_a_segment_before_the_scan_does_not_count():
    jpeg = _jpeg()
    payload = b"thumbnail \xff\xd8...\xff\xd9 end"  # e.g. an EXIF thumbnail's own EOI
    app15 = b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload
    data = jpeg[:2] + app15 + jpeg[2:]
    assert np.asarray(Image.open(io.BytesIO(data))).shape == (30, 40, 3)
    assert jpeg_structure_problem(data) == ""
    cut = data[:data.rindex(b"\xff\xd9")]
    assert "ends inside the image data" in jpeg_structure_problem(cut)


def test_not_a_jpeg_stream():
    assert jpeg_structure_problem(b"\x89PNG\r\n") == "no start-of-image marker"
    assert "bad marker" in jpeg_structure_problem(b"\xff\xd8\x00\x00\x00")
    assert "before any image data" in jpeg_structure_problem(b"\xff\xd8\xff\xd9")


def test_load_image_keeps_bytes_and_refuses_truncation(tmp_path):
    data = _jpeg()
    (tmp_path / "ok.jpg").write_bytes(data)
    loaded = load_image(tmp_path / "ok.jpg")
    assert loaded.encoded.data == data and loaded.reencoded == ""
    assert tuple(loaded.encoded.size_hw) == (30, 40)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match=r"cut\.jpg.*truncated or corrupt \(the file ends inside"):
        load_image(tmp_path / "cut.jpg")


def test_16bit_gray_photo_is_scaled_not_clipped(tmp_path):
    wide = np.array([[0, 257, 1000, 32896, 65535]], np.uint16).repeat(4, axis=0)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.reencoded == "16-bit gray pixels scaled to 8-bit RGB"
    rgb = np.asarray(Image.open(io.BytesIO(loaded.encoded.data)))
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 4, 128, 255])
    assert (rgb[..., 0] == rgb[..., 2]).all()
