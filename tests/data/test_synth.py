"""Synthetic datasets: layout, determinism, tight boxes, mask modes, errors, CLI."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image
from scipy import ndimage

from tfmask.cli import synth as synth_cli
from tfmask.cli.synth import parse_classes, parse_size
from tfmask.errors import ConfigError
from tfmask.config.label_map import read_label_map
from tfmask.data.synth import DEFAULT_CLASSES, MIN_VISIBLE_PX, SynthClass, synthesize

SIZE_HW = (96, 128)
EIGHT_CONNECTED = np.ones((3, 3), int)


def files(root: Path):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_xml(path: Path):
    """(width, height, [(name, (xmin, ymin, xmax, ymax))]) of a labelImg file."""
    root = etree.parse(str(path)).getroot()
    size = root.find("size")
    objects = [(o.findtext("name"), tuple(int(o.find("bndbox").findtext(t))
                                          for t in ("xmin", "ymin", "xmax", "ymax")))
               for o in root.iter("object")]
    return int(size.findtext("width")), int(size.findtext("height")), objects


def labelled(root: Path):
    """Per train image: (stem, gray mask, XML objects)."""
    return [(p.stem, np.asarray(Image.open(p).convert("L")),
             read_xml(root / "train_bboxes" / f"{p.stem}.xml")[2])
            for p in sorted((root / "train_masks").iterdir())]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 small images with up to 6 objects: neighbours and occlusions occur."""
    root = tmp_path_factory.mktemp("synth") / "ds"
    summary = synthesize(root, num_train=24, num_test=3, size_hw=SIZE_HW, max_objects=6,
                         seed=1)
    return root, summary


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kw = dict(num_train=4, num_test=2, size_hw=(64, 80))
    synthesize(tmp_path / "a", seed=5, **kw)
    synthesize(tmp_path / "b", seed=5, **kw)
    synthesize(tmp_path / "c", seed=6, **kw)
    a, b, c = (files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.startswith(("train_images", "test_images")))


def test_layout_counts_and_summary(dataset):
    root, summary = dataset
    stems = [f"image{i:04d}" for i in range(1, 25)]
    assert sorted(p.name for p in (root / "train_images").iterdir()) == [
        f"{s}.jpg" for s in stems]
    assert sorted(p.name for p in (root / "train_masks").iterdir()) == [
        f"{s}.png" for s in stems]
    assert sorted(p.name for p in (root / "train_bboxes").iterdir()) == [
        f"{s}.xml" for s in stems]
    assert sorted(p.name for p in (root / "test_images").iterdir()) == [
        "test0001.jpg", "test0002.jpg", "test0003.jpg"]
    for p in [*(root / "train_images").iterdir(), *(root / "test_images").iterdir()]:
        with Image.open(p) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", SIZE_HW[::-1])
    counts = {c.name: 0 for c in DEFAULT_CLASSES}
    for _, mask, objects in labelled(root):
        assert mask.shape == SIZE_HW
        for name, _ in objects:
            counts[name] += 1
    assert counts == summary.objects_per_class
    assert all(n > 0 for n in counts.values())
    assert summary.format().startswith(f"wrote 24 train + 3 test images to {root}")


def test_xml_is_labelimg(dataset):
    root, _ = dataset
    xml = root / "train_bboxes" / "image0001.xml"
    tree = etree.parse(str(xml))
    ann = tree.getroot()
    tags = [e.tag for e in ann]
    assert tags[:6] == ["folder", "filename", "path", "source", "size", "segmented"]
    assert set(tags[6:]) == {"object"}
    assert ann.findtext("filename") == "image0001.jpg"
    assert ann.findtext("source/database") == "Unknown"
    assert [e.tag for e in ann.find("size")] == ["width", "height", "depth"]
    assert ann.findtext("size/depth") == "3" and ann.findtext("segmented") == "0"
    for obj in ann.iter("object"):
        assert [e.tag for e in obj] == ["name", "pose", "truncated", "difficult", "bndbox"]
        assert obj.findtext("name") in {c.name for c in DEFAULT_CLASSES}
        assert (obj.findtext("pose"), obj.findtext("truncated"), obj.findtext("difficult")
                ) == ("Unspecified", "0", "0")
        assert all(int(e.text) >= 0 for e in obj.find("bndbox"))
    assert read_xml(xml)[:2] == SIZE_HW[::-1]


def test_boxes_are_tight_pixel_edges_of_visible_pixels(dataset):
    root, _ = dataset
    gray = {c.name: c.gray for c in DEFAULT_CLASSES}
    h, w = SIZE_HW
    checked_tight = 0
    for stem, mask, objects in labelled(root):
        assert set(np.unique(mask)) <= {0} | set(gray.values()), stem  # hard edges
        for name, value in gray.items():
            boxes = [b for n, b in objects if n == name]
            cls = mask == value
            covered = np.zeros_like(cls)
            for i, (x0, y0, x1, y1) in enumerate(boxes):
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (stem, name)
                covered[y0:y1, x0:x1] = True
                inside = cls[y0:y1, x0:x1]
                assert inside.sum() >= MIN_VISIBLE_PX, (stem, name)
                # Every edge row/column of the box holds a pixel of the class.
                assert inside[0].any() and inside[-1].any(), (stem, name)
                assert inside[:, 0].any() and inside[:, -1].any(), (stem, name)
                others = [b for j, b in enumerate(boxes) if j != i]
                if not any(_intersect((x0, y0, x1, y1), b) for b in others):
                    # No other object of the class reaches into the box: the box is
                    # exactly the tight pixel-edge box of the class pixels inside it.
                    ys, xs = np.nonzero(inside)
                    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (
                        0, 0, x1 - x0, y1 - y0), (stem, name)
                    checked_tight += 1
            assert not (cls & ~covered).any(), f"{stem}: {name} pixels outside its boxes"
    assert checked_tight > 40


def _intersect(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _boxes_holding(piece, boxes):
    """Indices of the boxes that contain a component (a pair of slices)."""
    (ys, xs) = piece
    return {i for i, (x0, y0, x1, y1) in enumerate(boxes)
            if x0 <= xs.start and y0 <= ys.start and xs.stop <= x1 and ys.stop <= y1}


def test_same_class_objects_keep_apart_and_neighbours_occur(dataset):
    root, _ = dataset
    gaps, pieces, merged, split_classes, occlusions = [], 0, 0, 0, 0
    for _, mask, objects in labelled(root):
        for c in DEFAULT_CLASSES:
            boxes = [b for name, b in objects if name == c.name]
            components, n = ndimage.label(mask == c.gray, EIGHT_CONNECTED)
            holders = [_boxes_holding(p, boxes) for p in ndimage.find_objects(components)]
            pieces += n
            merged += sum(not h for h in holders)  # one blob from two touching objects
            split_classes += n >= 2
            for i in range(n):
                # Chessboard distance, so diagonal contact counts as touching.
                dist = ndimage.distance_transform_cdt(components != i + 1, metric="chessboard")
                for j in range(i + 1, n):
                    if not holders[i] & holders[j]:  # pieces of two different objects
                        gaps.append(int(dist[components == j + 1].min()) - 1)
        # Boxes of different classes that intersect: one occludes the other.
        occlusions += any(_intersect(a, b) for i, (na, a) in enumerate(objects)
                          for nb, b in objects[i + 1:] if na != nb)
    assert split_classes >= 3
    assert min(gaps) >= 2, "objects of one class closer than 2 px"
    assert sum(g <= 8 for g in gaps) >= 5, "too few close same-class neighbours"
    assert merged <= 0.1 * pieces, "same-class overlaps should be a minority"
    assert occlusions >= 3


def test_classes_look_different_in_photos(dataset):
    root, _ = dataset
    colours = {c.name: [] for c in DEFAULT_CLASSES}
    for stem, mask, _ in labelled(root):
        photo = np.asarray(Image.open(root / "train_images" / f"{stem}.jpg"))
        for c in DEFAULT_CLASSES:  # inner pixels: JPEG blurs the edges
            colours[c.name].append(photo[ndimage.binary_erosion(mask == c.gray,
                                                                np.ones((5, 5)))])
    medians = [np.median(np.concatenate(v), 0) for v in colours.values()]
    for i, a in enumerate(medians):
        for b in medians[i + 1:]:
            assert np.linalg.norm(a - b) > 60, medians


@pytest.mark.parametrize("mode", ["RGB", "P"])
def test_label_map_suffix_selects_class_pixels(tmp_path, mode):
    kw = dict(num_train=6, num_test=0, size_hw=(64, 96), seed=2, max_objects=6)
    synthesize(tmp_path / "L", **kw)
    synthesize(tmp_path / mode, mask_mode=mode, **kw)
    label_map = read_label_map(tmp_path / mode / "label.pbtxt")
    assert [(c.id, c.name, c.pixel_value) for c in label_map.classes] == [
        (i + 1, c.name, (c.gray,)) for i, c in enumerate(DEFAULT_CLASSES)]
    for p in sorted((tmp_path / mode / "train_masks").iterdir()):
        with Image.open(p) as im:
            assert im.mode == mode
            colours = {tuple(c) for c in np.asarray(im.convert("RGB")).reshape(-1, 3)}
            converted = np.asarray(im.convert("L"))
        reference = np.asarray(Image.open(tmp_path / "L" / "train_masks" / p.name))
        assert (converted == reference).all(), p.name  # same pixels, gray levels = suffix
        assert all(len(set(c)) > 1 for c in colours - {(0, 0, 0)}), "class colours are gray"
    # The mask mode changes only the masks.
    for sub in ("train_images", "train_bboxes"):
        assert files(tmp_path / "L" / sub) == files(tmp_path / mode / sub)


def test_l_masks_and_png_images(tmp_path):
    classes = (SynthClass("a", 1), SynthClass("b", 255), SynthClass("c", 9))
    synthesize(tmp_path, num_train=3, num_test=1, size_hw=(48, 40), classes=classes,
               image_format="png", min_objects=0, max_objects=8, seed=3)
    assert sorted(p.name for p in (tmp_path / "test_images").iterdir()) == ["test0001.png"]
    assert {c.name: c.pixel_value for c in read_label_map(tmp_path / "label.pbtxt").classes
            } == {"a": (1,), "b": (255,), "c": (9,)}
    for p in (tmp_path / "train_masks").iterdir():
        with Image.open(p) as im:
            assert im.mode == "L" and im.size == (40, 48)
            assert set(np.unique(np.asarray(im))) <= {0, 1, 9, 255}
        with Image.open(tmp_path / "train_images" / f"{p.stem}.png") as im:
            assert (im.format, im.mode) == ("PNG", "RGB")


def test_images_without_objects(tmp_path):
    synthesize(tmp_path, num_train=8, num_test=0, size_hw=(40, 40), min_objects=0,
               max_objects=1, seed=0)
    empty = [stem for stem, mask, objects in labelled(tmp_path) if not objects]
    assert empty
    for stem in empty:
        assert not np.asarray(Image.open(tmp_path / "train_masks" / f"{stem}.png")).any()


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_objects=4, max_objects=2), "min_objects (4) is above max_objects (2)"),
    (dict(size_hw=(16, 256)), "image size 256x16 (width x height): each side must be"),
    (dict(classes=()), "at least one class"),
    (dict(classes=(SynthClass("a", 7), SynthClass("b", 7))), "class gray 7 is used by"),
    (dict(classes=(SynthClass("a", 7), SynthClass("a", 8))), "class name a is used by"),
    (dict(num_train=0), "number of train images must be an integer >= 1"),
    (dict(mask_mode="LA"), "unknown mask mode 'LA'; valid: L, RGB, P"),
    (dict(image_format="bmp"), "unknown image format 'bmp'; valid: jpg, png"),
])
def test_bad_arguments_raise_config_error(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        synthesize(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (("x", 0), "gray level 0 must be an integer 1..255"),
    (("x", 256), "gray level 256 must be an integer 1..255"),
    (("two words", 5), "use letters, digits"),
])
def test_bad_class_raises_config_error(args, message):
    with pytest.raises(ConfigError, match=message):
        SynthClass(*args)


def test_parse_size_and_classes():
    assert parse_size("256x192") == (192, 256)
    assert parse_classes("speaker:76, lamp:40") == (
        DEFAULT_CLASSES[0], SynthClass("lamp", 40))
    for bad in ("256", "256x", "axb", "256*192"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected WIDTHxHEIGHT"):
            parse_size(bad)
    for bad in ("speaker", "speaker:", "speaker=76", ":76", "a:1,,b:2"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected NAME:GRAY"):
            parse_classes(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="gray level 300 must be"):
        parse_classes("speaker:300")


def test_refuses_existing_dataset_unless_overwrite(tmp_path):
    synthesize(tmp_path, num_train=3, num_test=2, size_hw=(40, 40))
    (tmp_path / "train_images" / "mine.txt").write_text("keep")
    before = files(tmp_path)
    with pytest.raises(ConfigError, match="already has dataset files.*--overwrite"):
        synthesize(tmp_path, num_train=2, num_test=1, size_hw=(40, 40))
    assert files(tmp_path) == before
    synthesize(tmp_path, num_train=2, num_test=1, size_hw=(40, 40), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "train_images").iterdir()) == [
        "image0001.jpg", "image0002.jpg", "mine.txt"]  # stale image0003 removed
    assert sorted(p.name for p in (tmp_path / "train_bboxes").iterdir()) == [
        "image0001.xml", "image0002.xml"]
    assert [p.name for p in (tmp_path / "test_images").iterdir()] == ["test0001.jpg"]


def parser():
    p = argparse.ArgumentParser(prog="tfmask")
    synth_cli.register(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_writes_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    args = parser().parse_args([
        "synth", "--out", str(out), "--num-train", "3", "--num-test", "1", "--size", "64x48",
        "--classes", "speaker:76,lamp:40", "--min-objects", "2", "--max-objects", "3",
        "--seed", "4", "--mask-mode", "P", "--image-format", "png"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote 3 train + 1 test images to {out} (")
    assert len(list((out / "train_images").glob("*.png"))) == 3
    with Image.open(out / "train_masks" / "image0001.png") as im:
        assert (im.mode, im.size) == ("P", (64, 48))
    assert read_label_map(out / "label.pbtxt").names == ["speaker", "lamp"]
    args = parser().parse_args(["synth", "--out", str(out)])
    with pytest.raises(ConfigError, match="--overwrite"):
        args.func(args)


@pytest.mark.parametrize("argv, message", [
    (["--size", "256"], "expected WIDTHxHEIGHT"),
    (["--classes", "speaker=76"], "expected NAME:GRAY"),
    (["--classes", "a:0"], "gray level 0 must be an integer 1..255"),
    (["--mask-mode", "LA"], "invalid choice"),
])
def test_cli_bad_strings_are_usage_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["synth", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
