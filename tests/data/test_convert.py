"""End-to-end conversion: tutorial parity, instance modes, formats, split, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CLASSES, SIZE_HW, Rect, make_dataset, voc_xml, write_image, write_mask
from tfmask.data.convert import ConvertConfig, convert, split_is_val
from tfmask.errors import ConfigError, DataError
from tfmask.data.records.reader import read_examples


def run(ds_root, out=None, **kw):
    kw.setdefault("val_fraction", 0.0)  # every image in train unless a test splits
    cfg = ConvertConfig(data_dir=str(ds_root), output_dir=str(out or ds_root / "records"),
                        progress=False, **kw)
    return convert(cfg)


def examples(out_dir, name="train"):
    return {Path(e.filename).stem: e for e in read_examples(str(out_dir / f"{name}-*"))}


def expected_class_instances(objects, size_hw):
    """Tutorial semantics computed from the rectangles: one instance per class."""
    out = []
    for name in CLASSES:  # label-map order
        painted = np.zeros(size_hw, object)
        for o in objects:
            painted[o.mask(size_hw)] = o.cls
        mask = painted == name
        if mask.any():
            ys, xs = np.nonzero(mask)
            out.append((name, mask, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)))
    return out


def box_norm_yxyx(box, size_hw):
    x0, y0, x1, y1 = box
    h, w = size_hw
    return np.array([y0 / h, x0 / w, y1 / h, x1 / w], np.float32)


def test_class_mode_matches_tutorial(dataset):
    report = run(dataset.root, instance_mode="class")
    got = examples(dataset.root / "records")
    assert report.images_per_split == {"train": 2}
    for stem, objects in dataset.layout.items():
        ex = got[stem]
        exp = expected_class_instances(objects, SIZE_HW)
        assert list(ex.class_names) == [n for n, _, _ in exp]
        assert ex.class_ids.tolist() == [CLASSES[n][0] for n, _, _ in exp]
        for i, (_, mask, box) in enumerate(exp):
            np.testing.assert_array_equal(ex.masks[i], mask)
            np.testing.assert_allclose(ex.boxes_yxyx_norm[i], box_norm_yxyx(box, SIZE_HW),
                                       atol=1e-6)
            assert ex.areas[i] == mask.sum()
    assert report.instances_per_class == {"speaker": 1, "cup": 2}


def test_box_mode_one_instance_per_xml_object(dataset):
    run(dataset.root, instance_mode="box")
    got = examples(dataset.root / "records")
    ex = got["a"]
    objects = dataset.layout["a"]
    assert list(ex.class_names) == [o.cls for o in objects]
    for i, o in enumerate(objects):
        np.testing.assert_array_equal(ex.masks[i], o.mask(SIZE_HW))
        np.testing.assert_allclose(ex.boxes_yxyx_norm[i], box_norm_yxyx(o.box, SIZE_HW),
                                   atol=1e-6)


def test_components_mode_splits_same_class_objects(dataset):
    report = run(dataset.root, instance_mode="components")
    ex = examples(dataset.root / "records")["a"]
    assert list(ex.class_names) == ["speaker", "speaker", "cup"]
    speakers = [o for o in dataset.layout["a"] if o.cls == "speaker"]
    for i, o in enumerate(speakers):
        np.testing.assert_array_equal(ex.masks[i], o.mask(SIZE_HW))
    assert report.instances_per_class == {"speaker": 2, "cup": 2}


def test_components_min_area_drops_and_reports(tmp_path):
    layout = {"a": [Rect("speaker", (2, 2, 12, 12)), Rect("speaker", (30, 30, 32, 32))]}
    ds = make_dataset(tmp_path / "d", layout=layout)
    report = run(ds.root, instance_mode="components", min_instance_area=5)
    assert report.instances_per_class == {"speaker": 1}
    kinds = report.by_kind()
    assert "small_component_dropped" in kinds
    assert "1 component(s) below 5 px" in kinds["small_component_dropped"][0].message


@pytest.mark.parametrize("mask_mode,class_pixels", [
    ("L", ()),
    ("P", ()),  # palette colours whose gray level is the class value
    ("RGB", tuple(f"{n}={r},{g},{b}" for n, (_, _, (r, g, b)) in CLASSES.items())),
])
def test_mask_modes_give_identical_instances(tmp_path, mask_mode, class_pixels):
    ref = make_dataset(tmp_path / "ref")
    run(ref.root, instance_mode="components")
    ds = make_dataset(tmp_path / "ds", mask_mode=mask_mode, pixel_suffix=not class_pixels)
    run(ds.root, instance_mode="components", class_pixels=class_pixels)
    a, b = examples(ref.root / "records"), examples(ds.root / "records")
    for stem in a:
        np.testing.assert_array_equal(a[stem].masks, b[stem].masks)
        assert a[stem].class_names == b[stem].class_names


def test_rgb_colours_are_matched_by_colour_not_gray(tmp_path):
    # Two colours with the same gray level: only RGB matching tells them apart.
    layout = {"a": [Rect("speaker", (2, 2, 10, 10)), Rect("cup", (20, 20, 30, 30))]}
    ds = make_dataset(tmp_path / "d", layout=layout, pixel_suffix=False)
    arr = np.zeros((*SIZE_HW, 3), np.uint8)
    arr[2:10, 2:10] = (0, 0, 255)
    arr[20:30, 20:30] = (0, 29, 0)  # gray levels: 29 and 17 -> distinct here
    arr[20:30, 20:30] = (1, 0, 253)  # now (0,0,255) and (1,0,253) share gray 29
    assert len({Image.fromarray(arr).convert("L").getpixel(p) for p in [(3, 3), (25, 25)]}) == 1
    Image.fromarray(arr).save(ds.root / "train_masks" / "a.png")
    run(ds.root, class_pixels=("speaker=0,0,255", "cup=1,0,253"))
    ex = examples(ds.root / "records")["a"]
    assert list(ex.class_names) == ["speaker", "cup"]
    np.testing.assert_array_equal(ex.masks[1], layout["a"][1].mask(SIZE_HW))


def test_records_keep_original_image_bytes_and_decimal_source_ids(dataset):
    run(dataset.root)
    got = examples(dataset.root / "records")
    for i, stem in enumerate(sorted(dataset.layout), start=1):
        ex = got[stem]
        assert ex.encoded == dataset.image(stem).read_bytes()
        assert ex.source_id == str(i)
        assert ex.image_format == "jpeg"
        assert ex.filename == dataset.image(stem).name


def test_png_images_and_mixed_case_extensions(tmp_path):
    ds = make_dataset(tmp_path / "d", image_ext=".PNG")
    run(ds.root)
    for ex in examples(ds.root / "records").values():
        assert ex.image_format == "png"
        assert ex.encoded[:8] == b"\x89PNG\r\n\x1a\n"


def test_exif_rotated_image_is_stored_as_seen(tmp_path):
    layout = {"a": [Rect("speaker", (2, 3, 12, 30))]}
    ds = make_dataset(tmp_path / "d", layout=layout)
    # A photo stored sideways (raw 40 wide x 48 high) with EXIF orientation 6
    # (rotate 90 degrees clockwise to view): viewers show it 48 wide x 40 high,
    # the size the mask was drawn at.
    raw = np.zeros((48, 40, 3), np.uint8)
    raw[:, :20] = 255  # left half white in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    path = ds.root / "train_images" / "a.jpg"
    Image.fromarray(raw).save(path, exif=exif.tobytes(), quality=95)
    report = run(ds.root)
    ex = examples(ds.root / "records")["a"]
    assert ex.size_hw == SIZE_HW
    img = ex.image()
    assert img.shape[:2] == SIZE_HW
    # Rotating clockwise moves the stored left half to the top.
    assert img[:15].mean() > 200 and img[-15:].mean() < 50
    assert "reencoded" in report.by_kind()


def test_split_is_deterministic_and_sized(tmp_path):
    layout = {f"im{i:02d}": [Rect("cup", (i, i, i + 8, i + 8))] for i in range(10)}
    ds = make_dataset(tmp_path / "d", layout=layout)
    r1 = run(ds.root, tmp_path / "o1", val_fraction=0.3, seed=7)
    run(ds.root, tmp_path / "o2", val_fraction=0.3, seed=7)
    run(ds.root, tmp_path / "o3", val_fraction=0.3, seed=8)
    assert r1.images_per_split == {"train": 7, "val": 3}
    val1 = set(examples(tmp_path / "o1", "val"))
    assert val1 == set(examples(tmp_path / "o2", "val"))
    assert val1 != set(examples(tmp_path / "o3", "val"))
    assert not val1 & set(examples(tmp_path / "o1", "train"))
    for name in ("train-00000-of-00001", "val-00000-of-00001"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()


def test_split_is_val_edge_cases():
    assert not split_is_val(1, 0.5, 0).any()
    assert split_is_val(2, 0.01, 0).sum() == 1  # at least one val image
    assert split_is_val(3, 0.99, 0).sum() == 2  # at least one train image
    assert not split_is_val(10, 0.0, 0).any()


def test_shards_are_round_robin_and_stale_shards_removed(tmp_path):
    layout = {f"im{i}": [Rect("cup", (1, 1, 9, 9))] for i in range(5)}
    ds = make_dataset(tmp_path / "d", layout=layout)
    out = tmp_path / "o"
    run(ds.root, out, num_shards=3)
    counts = [sum(1 for _ in read_examples(str(out / f"train-0000{i}-of-00003")))
              for i in range(3)]
    assert counts == [2, 2, 1]
    report = run(ds.root, out, num_shards=2)
    assert sorted(p.name for p in out.glob("train-*")) == [
        "train-00000-of-00002", "train-00001-of-00002"]
    assert len(report.by_kind()["stale_shard_removed"]) == 3


def test_side_outputs_label_map_coco_json_and_report(dataset):
    out = dataset.root / "records"
    report = run(dataset.root, write_coco_json=True)
    assert (out / "label_map.pbtxt").read_text().count("name: 'speaker'") == 1
    doc = json.loads((out / "train_coco.json").read_text())
    assert {c["name"]: c["id"] for c in doc["categories"]} == {"speaker": 1, "cup": 2}
    assert [im["id"] for im in doc["images"]] == [1, 2]
    assert len(doc["annotations"]) == sum(report.instances_per_class.values())
    saved = json.loads((out / "conversion_report.json").read_text())
    assert saved["images_per_split"] == {"train": 2}


def test_coco_json_input_produces_the_same_records(dataset, tmp_path):
    run(dataset.root, instance_mode="components", write_coco_json=True)
    coco_out = tmp_path / "from_coco"
    convert(ConvertConfig(coco_json=str(dataset.root / "records" / "train_coco.json"),
                          images_dir=str(dataset.root / "train_images"),
                          output_dir=str(coco_out), val_fraction=0.0, progress=False))
    a, b = examples(dataset.root / "records"), examples(coco_out)
    assert a.keys() == b.keys()
    for stem in a:
        for field in ("source_id", "encoded", "class_names", "size_hw", "filename"):
            assert getattr(a[stem], field) == getattr(b[stem], field), field
        np.testing.assert_array_equal(a[stem].masks, b[stem].masks)
        np.testing.assert_array_equal(a[stem].class_ids, b[stem].class_ids)
        np.testing.assert_allclose(a[stem].boxes_yxyx_norm, b[stem].boxes_yxyx_norm)


def test_coco_polygons_and_uncompressed_rle(tmp_path):
    (tmp_path / "img").mkdir()
    write_image(tmp_path / "img" / "x.jpg", (40, 50), seed=0)
    # Uncompressed RLE (column-major runs): 10 zeros, 5 ones, rest zeros.
    counts = [10, 5, 40 * 50 - 15]
    doc = {"images": [{"id": 7, "file_name": "x.jpg", "width": 50, "height": 40}],
           "categories": [{"id": 3, "name": "cup"}],
           "annotations": [
               {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
                "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]], "bbox": [10, 10, 20, 10]},
               {"id": 2, "image_id": 7, "category_id": 3, "iscrowd": 1,
                "segmentation": {"size": [40, 50], "counts": counts}}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    convert(ConvertConfig(coco_json=str(tmp_path / "a.json"), images_dir=str(tmp_path / "img"),
                          output_dir=str(tmp_path / "o"), val_fraction=0.0, progress=False))
    (ex,) = list(read_examples(str(tmp_path / "o" / "train-*")))
    assert ex.source_id == "7" and ex.class_ids.tolist() == [3, 3]
    assert 150 < ex.masks[0].sum() < 260  # ~20x10 polygon
    assert ex.masks[1].sum() == 5 and ex.masks[1][10:15, 0].all()
    assert ex.is_crowd.tolist() == [False, True]
    assert "id: 3" in (tmp_path / "o" / "label_map.pbtxt").read_text()


def test_workers_give_byte_identical_output(tmp_path):
    layout = {f"im{i}": [Rect("cup", (i, 1, i + 9, 9)), Rect("speaker", (20, 20, 30, 30))]
              for i in range(6)}
    ds = make_dataset(tmp_path / "d", layout=layout)
    run(ds.root, tmp_path / "w1", val_fraction=0.3, workers=1)
    run(ds.root, tmp_path / "w2", val_fraction=0.3, workers=2)
    for name in ("train-00000-of-00001", "val-00000-of-00001"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()


# ---------------------------------------------------------------- validation


def _break_missing_mask(ds):
    (ds.root / "train_masks" / "b.png").unlink()
    return "b.jpg", "no mask"


def _break_size_mismatch(ds):
    write_mask(ds.root / "train_masks" / "b.png", (20, 20), [])
    return "b.png", "mask is 20x20 but image b.jpg is 48x40"


def _break_unknown_values(ds):
    arr = np.zeros(SIZE_HW, np.uint8)
    arr[0:2, 0:3] = 99
    arr[5, 5] = 200
    Image.fromarray(arr).save(ds.root / "train_masks" / "b.png")
    return "b.png", "mask values 99 (6 px), 200 (1 px) match no class"


def _break_orphan_mask(ds):
    write_mask(ds.root / "train_masks" / "zzz.png", SIZE_HW, [])
    return "zzz.png", "mask has no image"


def _break_corrupt_image(ds):
    path = ds.root / "train_images" / "b.jpg"
    path.write_bytes(path.read_bytes()[:200])
    return "b.jpg", "truncated or corrupt"


def _break_empty_image(ds):
    (ds.root / "train_images" / "b.jpg").write_bytes(b"")
    return "b.jpg", "empty (0 bytes)"


def _break_not_an_image(ds):
    (ds.root / "train_images" / "b.jpg").write_text("hello")
    return "b.jpg", "not a readable image"


def _break_16bit_mask(ds):
    Image.fromarray(np.zeros(SIZE_HW, np.uint16)).save(ds.root / "train_masks" / "b.png")
    return "b.png", "16-bit"


CONVERT_ERRORS = [_break_missing_mask, _break_size_mismatch, _break_unknown_values,
                  _break_orphan_mask, _break_corrupt_image, _break_empty_image,
                  _break_not_an_image, _break_16bit_mask]


@pytest.mark.parametrize("breaker", CONVERT_ERRORS, ids=lambda f: f.__name__[7:])
def test_invalid_input_stops_naming_the_file(dataset, breaker):
    name, reason = breaker(dataset)
    out = dataset.root / "records"
    with pytest.raises(DataError) as exc:
        run(dataset.root, instance_mode="class")
    assert name in str(exc.value) and reason in str(exc.value)
    # Nothing under a final name, no temporary files left behind.
    assert not out.exists() or not [p for p in out.iterdir() if "train" in p.name]


@pytest.mark.parametrize("breaker", CONVERT_ERRORS, ids=lambda f: f.__name__[7:])
def test_skip_invalid_lists_the_skipped_file(dataset, breaker):
    name, reason = breaker(dataset)
    report = run(dataset.root, skip_invalid=True)
    # An orphan mask has no image to skip; every other breakage costs image b.
    expected = 2 if breaker is _break_orphan_mask else 1
    assert report.images_per_split == {"train": expected}
    assert len(report.skipped) == 1 and name in report.skipped[0]
    assert reason in report.format()


@pytest.mark.parametrize("xml_objects,reason", [
    ([Rect("mug", (1, 1, 5, 5))], "class 'mug' is not in the label map"),
    ([Rect("cup", (10, 10, 5, 20))], "inverted or has zero area"),
    ([Rect("cup", (100, 100, 120, 120))], "entirely outside"),
])
def test_box_mode_xml_errors(dataset, xml_objects, reason):
    (dataset.root / "train_bboxes" / "b.xml").write_text(voc_xml("b.jpg", SIZE_HW, xml_objects))
    with pytest.raises(DataError) as exc:
        run(dataset.root, instance_mode="box")
    assert "b.xml" in str(exc.value) and reason in str(exc.value)
    if "mug" in reason:
        assert "known classes: speaker, cup" in str(exc.value)


def test_box_mode_missing_xml_and_xml_size(dataset):
    (dataset.root / "train_bboxes" / "b.xml").unlink()
    with pytest.raises(DataError, match="b.jpg: no XML boxes"):
        run(dataset.root, instance_mode="box")
    (dataset.root / "train_bboxes" / "b.xml").write_text(voc_xml("b.jpg", (80, 90), []))
    with pytest.raises(DataError, match="XML <size> is 90x80 but the image is 48x40"):
        run(dataset.root, instance_mode="box")


def test_box_mode_clips_and_drops_with_reports(dataset):
    objects = [Rect("cup", (10, 10, 30, 30)), Rect("cup", (20, 20, 60, 50)),
               Rect("speaker", (0, 0, 4, 4))]
    (dataset.root / "train_bboxes" / "b.xml").write_text(voc_xml("b.jpg", SIZE_HW, objects))
    report = run(dataset.root, instance_mode="box")
    kinds = report.by_kind()
    assert len(kinds["box_clipped"]) == 1 and "clipped to the 48x40 image" in \
        kinds["box_clipped"][0].message
    assert len(kinds["empty_box_dropped"]) == 1 and "'speaker'" in \
        kinds["empty_box_dropped"][0].message
    ex = examples(dataset.root / "records")["b"]
    assert list(ex.class_names) == ["cup", "cup"]
    np.testing.assert_allclose(ex.boxes_xyxy_px[1], [20, 20, 48, 40], atol=1e-4)
    expected = np.zeros(SIZE_HW, bool)
    expected[20:30, 20:30] = True  # cup pixels inside the clipped box
    np.testing.assert_array_equal(ex.masks[1], expected)


def test_no_objects_and_ignored_files_are_reported(dataset):
    write_mask(dataset.root / "train_masks" / "b.png", SIZE_HW, [])
    (dataset.root / "train_images" / "notes.txt").write_text("x")
    report = run(dataset.root)
    kinds = report.by_kind()
    assert [p.path for p in kinds["ignored_file"]][0].endswith("notes.txt")
    assert kinds["no_objects"][0].path == "b.jpg"
    ex = examples(dataset.root / "records")["b"]
    assert ex.masks.shape == (0, *SIZE_HW)


def test_empty_dataset_and_bad_options(tmp_path):
    (tmp_path / "e" / "train_images").mkdir(parents=True)
    (tmp_path / "e" / "train_masks").mkdir()
    (tmp_path / "e" / "label.pbtxt").write_text("item { id: 1 name: 'a001' }")
    with pytest.raises(DataError, match="no JPEG or PNG images"):
        run(tmp_path / "e")
    with pytest.raises(ConfigError, match="valid: class, components, box"):
        run(tmp_path / "e", instance_mode="blobs")
    with pytest.raises(ConfigError, match=r"val_fraction must be in \[0, 1\)") as err:
        run(tmp_path / "e", val_fraction=1.5)
    assert err.value.params == ("val_fraction",)


def test_cli_errors_name_the_flag_for_the_library_parameter(tmp_path, capsys):
    from tfmask.cli import main

    assert main(["tfrecord", "--data-dir", str(tmp_path), "--val-fraction", "1.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: --val-fraction must be in [0, 1), got 1.5"
    assert main(["tfrecord", "--output-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "give a dataset folder (--data-dir) or annotations in another format " \
        "(--coco-json, --labelme-dir, --yolo-data, --cvat-xml or --instance-masks-dir)" in err
