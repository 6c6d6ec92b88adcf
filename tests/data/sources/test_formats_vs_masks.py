"""Every input format against the class-mask route, on the same synthesized images.

``tfmask synth --format F`` and ``tfmask synth`` (class masks) with one seed
give the same photos and objects. Both are converted; per class, the union
of the instances must equal the class mask exactly in every image, and in
the images where each object is one connected component (so the class-mask
route's ``components`` mode finds the true objects) the instances must match
one to one with IoU >= 0.95, same classes and counts. Records are read back
without TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.reader import decode_example
from tfmask.data.records.wire import read_records
from tfmask.data.synth_formats import synthesize_format

SYNTH = dict(num_train=10, num_test=1, size_hw=(96, 128), seed=5, max_objects=5)
FORMAT_ARGS = {
    "coco": lambda d: dict(data_dir=str(d), coco_json="annotations.json",
                           images_dir="train_images"),
    "labelme": lambda d: dict(labelme_dir=str(d), label_map_path=str(d / "label_map.pbtxt")),
    "yolo": lambda d: dict(yolo_data=str(d / "data.yaml")),
    "cvat": lambda d: dict(cvat_xml=str(d / "annotations.xml")),
    "instances": lambda d: dict(instance_masks_dir=str(d),
                                label_map_path=str(d / "label_map.pbtxt")),
}


def read_dir(records: Path):
    """{image filename: DecodedExample} of every shard in a folder."""
    out = {}
    for path in sorted(records.glob("*-of-*")):
        with open(path, "rb") as f:
            for raw in read_records(f):
                ex = decode_example(raw)
                out[ex.filename] = ex
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("masks")
    synthesize_format(root / "data", "masks", **SYNTH)
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "rec"),
                          instance_mode="components", val_fraction=0.0, progress=False))
    return read_dir(root / "rec")


def _class_union(ex, name):
    keep = [k for k, n in enumerate(ex.class_names) if n == name]
    return ex.masks[keep].any(axis=0) if keep else np.zeros(ex.size_hw, bool)


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("fmt", sorted(FORMAT_ARGS))
def test_format_matches_class_mask_route(fmt, reference, tmp_path):
    data = tmp_path / fmt
    synthesize_format(data, fmt, **SYNTH)
    report = convert(ConvertConfig(output_dir=str(tmp_path / "rec"), progress=False,
                                   **FORMAT_ARGS[fmt](data)))
    assert sum(report.images_per_split.values()) == SYNTH["num_train"]
    got = read_dir(tmp_path / "rec")
    assert set(got) == set(reference)
    compared = 0
    for name, ref in reference.items():
        ex = got[name]
        assert ex.size_hw == ref.size_hw
        for cls in set(ref.class_names) | set(ex.class_names):
            assert (_class_union(ex, cls) == _class_union(ref, cls)).all(), (name, cls)
        if len(ex.class_names) != len(ref.class_names):
            continue  # an object split by occlusion, or same-class objects touching
        compared += 1
        assert sorted(ex.class_names) == sorted(ref.class_names), name
        for mask, cls in zip(ex.masks, ex.class_names):
            best = max(_iou(mask, r) for r, rc in zip(ref.masks, ref.class_names) if rc == cls)
            assert best >= 0.95, (name, cls, best)
    assert compared >= len(reference) // 2, f"only {compared} images comparable"


def test_yolo_keeps_its_split(tmp_path):
    synthesize_format(tmp_path / "y", "yolo", **SYNTH)
    report = convert(ConvertConfig(yolo_data=str(tmp_path / "y" / "data.yaml"),
                                   output_dir=str(tmp_path / "rec"), progress=False))
    val = sorted(p.name for p in (tmp_path / "y" / "images" / "val").iterdir())
    assert report.images_per_split == {"train": 8, "val": 2}
    with open(tmp_path / "rec" / "val-00000-of-00001", "rb") as f:
        assert sorted(decode_example(r).filename for r in read_records(f)) == val
