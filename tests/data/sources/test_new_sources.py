"""labelme, YOLO, CVAT and instance-mask readers: each tool's conventions, on hand-made files."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tfmask.data import polygons
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.reader import decode_example
from tfmask.data.records.wire import read_records
from tfmask.data.sources import cvat_xml, yolo_seg
from tfmask.data.sources.cvat_xml import CvatShape

H, W = 40, 48


def _photo(path):
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(path)


def _records(out):
    exs = []
    for p in sorted(out.glob("*-of-*")):
        with open(p, "rb") as f:
            exs += [decode_example(r) for r in read_records(f)]
    return exs


def _png_b64(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_polygon_convention_and_round_trip():
    square = np.array([[2, 3], [5, 3], [5, 7], [2, 7]], float)
    mask = polygons.rasterize([square], (10, 10))
    expected = np.zeros((10, 10), bool)
    expected[3:7, 2:5] = True
    assert (mask == expected).all()
    rng = np.random.default_rng(1)
    for _ in range(20):
        m = rng.random((12, 15)) < 0.5
        rings = polygons.trace_rings(m)
        assert (polygons.rasterize(rings, m.shape) == m).all()
        assert (polygons.rasterize([polygons.join_rings(rings)], m.shape) == m).all()


def test_labelme_shapes_groups_and_embedded_image(tmp_path):
    d = tmp_path / "lm"
    d.mkdir()
    buf = io.BytesIO()
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(buf, format="PNG")
    crop = np.zeros((4, 5), np.uint8)
    crop[1:3, 1:4] = 1
    shapes = [
        {"label": "cup", "points": [[1, 1], [6, 1], [6, 5], [1, 5]], "group_id": 3,
         "shape_type": "polygon"},
        {"label": "cup", "points": [[30, 30], [34, 33]], "group_id": 3, "shape_type": "rectangle"},
        {"label": "ball", "points": [[20, 10], [24, 10]], "group_id": None,
         "shape_type": "circle"},
        {"label": "stain", "points": [[40, 2], [44, 5]], "group_id": None, "shape_type": "mask",
         "mask": _png_b64(crop.astype(bool))},
        {"label": "edge", "points": [[0, 0], [9, 9]], "group_id": None, "shape_type": "line"},
    ]
    (d / "a.json").write_text(json.dumps({
        "version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "..\\\\pics\\\\a.png",
        "imageData": base64.b64encode(buf.getvalue()).decode(), "imageHeight": H,
        "imageWidth": W}))
    report = convert(ConvertConfig(labelme_dir=str(d), output_dir=str(tmp_path / "out"),
                                   progress=False))
    assert "ignored_shape" in {p.kind for p in report.problems}
    (ex,) = _records(tmp_path / "out")
    assert ex.filename == "a.png" and sorted(ex.class_names) == ["ball", "cup", "stain"]
    by = dict(zip(ex.class_names, ex.masks))
    assert by["cup"].sum() == 5 * 4 + 4 * 3  # two parts, one instance
    assert by["ball"].sum() == np.count_nonzero(polygons.disk((20, 10), 4, (H, W)))
    assert np.argwhere(by["stain"]).tolist() == [[3, 41], [3, 42], [3, 43], [4, 41], [4, 42],
                                                 [4, 43]]


def test_yolo_label_paths_and_names_mapping(tmp_path):
    from pathlib import Path

    assert yolo_seg.label_path_for(Path("/d/images/train/x.jpg")) == Path("/d/labels/train/x.txt")
    assert yolo_seg.label_path_for(Path("/d/pics/x.png")) == Path("/d/pics/x.txt")
    root = tmp_path / "y"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        _photo(root / "images" / split / f"{split}.png")
        (root / "labels" / split / f"{split}.txt").write_text(
            "1 0.0 0.0 0.5 0.0 0.5 0.5 0.0 0.5\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names:\n  0: cup\n  1: bottle\n")
    report = convert(ConvertConfig(yolo_data=str(root / "data.yaml"),
                                   output_dir=str(tmp_path / "out"), progress=False))
    assert report.images_per_split == {"train": 1, "val": 1}
    ex = _records(tmp_path / "out")[0]
    assert ex.class_names == ("bottle",) and ex.class_ids.tolist() == [2]
    assert ex.masks[0].sum() == (H // 2) * (W // 2)


def test_cvat_rle_is_row_major_from_a_background_run():
    shape = CvatShape("mask", 1, (("height", "2"), ("label", "cup"), ("left", "1"),
                                  ("rle", "1, 2, 3, 0"), ("top", "2"), ("width", "3")))
    mask = cvat_xml.decode_rle("f.xml", "m", shape, (5, 6))
    assert np.argwhere(mask).tolist() == [[2, 2], [2, 3]]


def test_cvat_boxes_ellipses_and_groups(tmp_path):
    (tmp_path / "images").mkdir()
    _photo(tmp_path / "images" / "a.png")
    (tmp_path / "annotations.xml").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><labels><label><name>cup</name></label>
<label><name>lid</name></label></labels></task></meta>
<image id="0" name="a.png" width="{W}" height="{H}">
  <box label="cup" occluded="0" xtl="2.00" ytl="3.00" xbr="7.00" ybr="9.00" group_id="4"/>
  <polygon label="cup" points="20,20;24,20;24,22;20,22" group_id="4"/>
  <ellipse label="lid" cx="35" cy="10" rx="3" ry="2" rotation="0"/>
  <polyline label="lid" points="1,1;5,5"/>
  <tag label="cup"/>
</image></annotations>""")
    report = convert(ConvertConfig(cvat_xml=str(tmp_path / "annotations.xml"),
                                   output_dir=str(tmp_path / "out"), progress=False))
    assert "ignored_shape" in {p.kind for p in report.problems}
    (ex,) = _records(tmp_path / "out")
    assert ex.class_names == ("cup", "lid")
    assert ex.masks[0].sum() == 5 * 6 + 4 * 2


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB"])
def test_instance_masks_with_csv_mapping(tmp_path, mode):
    (tmp_path / "images").mkdir()
    (tmp_path / "instances").mkdir()
    _photo(tmp_path / "images" / "a.png")
    ids = np.zeros((H, W), np.int64)
    value = {"L": 7, "I;16": 1000, "RGB": 70000}[mode]
    ids[1:4, 1:4] = value
    ids[30:35, 30:35] = value  # two parts, one instance
    ids[10:12, 20:25] = 2
    if mode == "RGB":
        arr = np.stack([(ids >> 16) & 255, (ids >> 8) & 255, ids & 255], -1).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / "instances" / "a.png")
    else:
        Image.fromarray(ids.astype(np.uint8 if mode == "L" else np.uint16)).save(
            tmp_path / "instances" / "a.png")
    (tmp_path / "classes.csv").write_text(f"value,class\n{value},cup\n2,lid\n")
    convert(ConvertConfig(instance_masks_dir=str(tmp_path), output_dir=str(tmp_path / "out"),
                          progress=False))
    (ex,) = _records(tmp_path / "out")
    assert sorted(zip(ex.class_names, ex.masks.sum((1, 2)).tolist())) == [("cup", 34),
                                                                          ("lid", 10)]
