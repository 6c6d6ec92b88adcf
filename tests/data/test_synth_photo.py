"""The photo-like synthesizer: reproducible, readable by the converter in both instance
modes with the same objects, objects at 10-40 % of the short side, classes not by colour."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.reader import read_examples
from tfmask.data.synth_photo import OBJECT_SCALE, synthesize_photos
from tfmask.data.synth_variants import LAYOUT_VARIANTS, write_layout

SIZE_HW = (192, 256)


def test_photos_are_reproducible_and_convert_in_both_modes(tmp_path):
    a = synthesize_photos(tmp_path / "a", num_train=6, num_test=1, size_hw=SIZE_HW, seed=4)
    b = synthesize_photos(tmp_path / "b", num_train=6, num_test=1, size_hw=SIZE_HW, seed=4)
    for sub in ("train_images", "train_masks", "train_bboxes", "test_images"):
        for p in sorted((a / sub).iterdir()):
            assert p.read_bytes() == (b / sub / p.name).read_bytes(), p
    counts = {}
    for mode in ("box", "components"):
        report = convert(ConvertConfig(data_dir=str(a), output_dir=str(tmp_path / mode),
                                       instance_mode=mode, val_fraction=0.0, progress=False))
        assert "problems" not in report.format(), report.format()
        examples = list(read_examples(str(tmp_path / mode / "train-*")))
        counts[mode] = sorted(len(e.class_ids) for e in examples)
        heights = [(e.boxes_yxyx_norm[:, 2] - e.boxes_yxyx_norm[:, 0]) * SIZE_HW[0]
                   for e in examples]
        tallest = max(h.max() for h in heights if len(h))
        assert tallest <= OBJECT_SCALE[1] * min(SIZE_HW) + 2
    assert counts["box"] == counts["components"] and sum(counts["box"]) >= 6


def test_a_class_is_not_told_by_its_colour(tmp_path):
    data = synthesize_photos(tmp_path / "d", num_train=12, num_test=0, size_hw=SIZE_HW, seed=1,
                             min_objects=2, max_objects=4)
    means = {100: [], 200: []}
    for mask_path in sorted((data / "train_masks").iterdir()):
        mask = np.asarray(Image.open(mask_path))
        photo = np.asarray(Image.open(data / "train_images" / f"{mask_path.stem}.jpg"))
        for gray in means:
            if (mask == gray).sum() > 50:
                means[gray].append(photo[mask == gray].mean(axis=0))
    spread = {g: np.std(np.asarray(v), axis=0).mean() for g, v in means.items() if len(v) > 2}
    assert spread and all(s > 20 for s in spread.values()), spread  # colours vary per object


def test_it_is_a_generator_for_every_layout_variant(tmp_path):
    variant = LAYOUT_VARIANTS["plain_palette_xml_jpg"]
    out = write_layout(tmp_path / "v", variant, num_train=3, num_test=1,
                       generator=synthesize_photos)
    assert "name: 'mug'" in (out / "label.pbtxt").read_text()
    assert Image.open(next((out / "train_masks").iterdir())).mode == "P"
    assert Image.open(next((out / "train_images").iterdir())).size == (800, 600)
