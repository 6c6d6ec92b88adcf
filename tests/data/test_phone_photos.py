"""Phone photos: a 4032x3024 JPEG stored sideways with an EXIF orientation, an RGBA PNG and
a grayscale JPEG go through convert -> train (tiny) -> export -> infer -> eval (the demo),
upright everywhere: records, previews, masks, overlays, COCO results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from tfmask.data.records.reader import read_examples
from tfmask.data.synth_variants import upright_size_hw, write_phone_photos


@pytest.fixture(scope="module")
def phone(tmp_path_factory):
    root = tmp_path_factory.mktemp("phone")
    kinds = write_phone_photos(root / "photos", copies=1, other_hw=(480, 640), num_test=1)
    return root, kinds


@pytest.fixture(scope="module")
def converted(phone):
    from tfmask.data.convert import ConvertConfig, convert

    root, _ = phone
    report = convert(ConvertConfig(data_dir=str(root / "photos"), output_dir=str(root / "rec"),
                                   instance_mode="components", val_fraction=0.0,
                                   progress=False))
    return {ex.filename: ex for ex in read_examples(str(root / "rec" / "train-*"))}, report


def _upright(path):
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def test_the_folder_is_what_phones_write(phone):
    root, kinds = phone
    images = root / "photos" / "train_images"
    assert sorted(kinds.values()) == ["alpha_png", "exif_rotated", "grayscale_jpeg"]
    with Image.open(images / "portrait_0.jpg") as img:
        assert img.size == (4032, 3024) and img.getexif()[0x0112] == 6
    assert upright_size_hw(images / "portrait_0.jpg") == (4032, 3024)
    with Image.open(images / "alpha_0.png") as img:
        assert img.mode == "RGBA"
    with Image.open(images / "gray_0.jpg") as img:
        assert img.mode == "L"


def test_records_are_upright_and_masks_line_up(phone, converted):
    root, _ = phone
    examples, report = converted
    assert "EXIF orientation 6 applied" in report.format()
    for name in ("portrait_0.jpg", "alpha_0.png", "gray_0.jpg"):
        ex = examples[name]
        want = _upright(root / "photos" / "train_images" / name)
        got = ex.image()
        assert got.shape == want.shape and ex.size_hw == want.shape[:2]
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 3.0  # JPEG re-encoding
        mask = np.asarray(Image.open(root / "photos" / "train_masks" / f"{name[:-4]}.png"))
        np.testing.assert_array_equal(ex.masks.any(axis=0), mask > 0)
    assert examples["portrait_0.jpg"].size_hw == (4032, 3024)


@pytest.mark.slow
def test_the_demo_on_phone_photos_is_upright_end_to_end(phone, tmp_path):
    from tfmask.demo import run_demo
    from tfmask.inference.infer import infer

    root, _ = phone
    out = tmp_path / "demo"
    lines = []
    result = run_demo(root / "photos", out, progress=False, say=lines.append, train_steps=2,
                      input_size=128)
    text = "\n".join(lines)
    assert "1 EXIF-rotated" in text and "instance mode 'components'" in text
    assert "model input 128x128 px" in text and "validation: box AP50" in text
    overlay = Image.open(out / "infer" / "overlays" / "test_portrait_0.png")
    assert overlay.size == (3024, 4032)  # upright: 3024 wide, 4032 tall
    for preview in (out / "preview").glob("*.png"):
        name = preview.stem
        source = next((root / "photos" / "train_images").glob(f"{name}.*"))
        assert upright_size_hw(source) == np.asarray(Image.open(preview)).shape[:2]

    # Every detection (min score 0) of the weak model on the sideways photo, from its file.
    photo = root / "photos" / "train_images" / "portrait_0.jpg"
    summary = infer(result.outputs["exported model"], photo, tmp_path / "infer",
                    min_score=0.0, progress=False)
    assert summary.detections > 0
    dets = json.loads((tmp_path / "infer" / "detections.json").read_text())
    assert {tuple(d["segmentation"]["size"]) for d in dets} == {(4032, 3024)}
    boxes = np.asarray([d["bbox"] for d in dets])  # [x, y, w, h] pixels
    assert (boxes[:, 0] + boxes[:, 2] <= 3024 + 1e-3).all()
    assert (boxes[:, 1] + boxes[:, 3] <= 4032 + 1e-3).all()
    assert Image.open(tmp_path / "infer" / "overlays" / "portrait_0.png").size == (3024, 4032)
