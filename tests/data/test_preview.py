"""preview: one PNG per record example with its ground truth drawn, and the CLI."""

from __future__ import annotations

import argparse
import io

import numpy as np
import pytest
from PIL import Image

from tfmask.annotation import EncodedImage, Instances, Sample, tight_box_xyxy_px
from tfmask.cli import preview as preview_cli
from tfmask.draw import instance_colour
from tfmask.errors import DataError
from tfmask.data.preview import preview_records
from tfmask.data.records.writer import ShardedWriter, build_example

H, W = 80, 120


def encoded(name: str, seed: int, size_hw=(H, W)) -> EncodedImage:
    rng = np.random.default_rng(seed)
    pixels = (60 + rng.random((*size_hw, 3)) * 100).astype(np.uint8)
    buf = io.BytesIO()
    fmt = "jpeg" if name.endswith(".jpg") else "png"
    Image.fromarray(pixels).save(buf, format=fmt.upper())
    return EncodedImage(buf.getvalue(), fmt, size_hw, name)


def rect_masks(rects, size_hw=(H, W)) -> np.ndarray:
    masks = np.zeros((len(rects), *size_hw), bool)
    for i, (x0, y0, x1, y1) in enumerate(rects):
        masks[i, y0:y1, x0:x1] = True
    return masks


# Instances on the right half (x >= 60, tags included), so columns < 55 are "far".
RECTS = [(60, 40, 100, 70), (104, 30, 118, 60)]


def make_samples():
    masks = rect_masks(RECTS)
    two = Instances(masks, [tight_box_xyxy_px(m) for m in masks], [1, 2], ["speaker", "cup"])
    one = Instances(masks[:1], [tight_box_xyxy_px(masks[0])], [2], ["cup"], [True])
    return [
        Sample(encoded("a.png", 0), two, source_id=1),
        Sample(encoded("b.jpg", 1), Instances.empty((H, W)), source_id=2),
        Sample(encoded("a.jpg", 2), one, source_id=3),  # same stem as a.png
        Sample(encoded("c.png", 3, (50, 70)), Instances.empty((50, 70)), source_id=4),
    ]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    samples = make_samples()
    with ShardedWriter(root / "train", num_shards=2) as writer:
        for s in samples:
            writer.write(build_example(s))
    return root, samples


def decoded(sample: Sample) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(sample.image.data)).convert("RGB"))


def test_one_png_per_example_of_the_image_size(records, tmp_path):
    root, samples = records
    paths = preview_records(str(root / "train-*-of-*"), tmp_path / "out")
    # Shards are read in order: shard 0 holds examples 0 and 2, shard 1 examples 1 and 3.
    assert [p.name for p in paths] == ["a.png", "a_3.png", "b.png", "c.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    by_name = dict(zip(["a.png", "b.png", "a_3.png", "c.png"], samples))
    for path in paths:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.mode == "RGB"
            h, w = by_name[path.name].image.size_hw
            assert img.size == (w, h)


def test_instances_are_drawn_and_the_rest_is_unchanged(records, tmp_path):
    root, samples = records
    preview_records(str(root / "train-*-of-*"), tmp_path)
    out = np.asarray(Image.open(tmp_path / "a.png"))
    original = decoded(samples[0])
    masks = samples[0].instances.masks
    for i in range(2):
        colour = np.array(instance_colour(i), float)
        ys, xs = np.nonzero(masks[i])
        inner = (slice(ys.min() + 4, ys.max() - 3), slice(xs.min() + 4, xs.max() - 3))
        before = np.abs(original[inner].astype(float) - colour).sum(axis=-1)
        after = np.abs(out[inner].astype(float) - colour).sum(axis=-1)
        assert (after < before).all()
        np.testing.assert_allclose(out[inner], 0.5 * original[inner] + 0.5 * colour, atol=1)
    np.testing.assert_array_equal(out[:, :55], original[:, :55])
    # The second "a" example (a JPEG) holds one crowd cup: drawn with colour 0.
    out2 = np.asarray(Image.open(tmp_path / "a_3.png"))
    original2 = decoded(samples[2])
    np.testing.assert_allclose(out2[50, 80], 0.5 * original2[50, 80] +
                               0.5 * np.array(instance_colour(0)), atol=1)
    np.testing.assert_array_equal(out2[:, :55], original2[:, :55])


def test_example_without_instances_is_the_plain_image(records, tmp_path):
    root, samples = records
    preview_records(str(root / "train-00001-of-00002"), tmp_path)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), decoded(samples[1]))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.png")), decoded(samples[3]))


def test_limit_and_comma_list(records, tmp_path):
    root, _ = records
    both = f"{root / 'train-00001-of-00002'},{root / 'train-00000-of-00002'}"
    assert [p.name for p in preview_records(both, tmp_path / "x", limit=3)] == [
        "b.png", "c.png", "a.png"]
    assert preview_records(both, tmp_path / "y", limit=0) == []
    assert not (tmp_path / "y").exists()


def test_pattern_matching_nothing_raises(tmp_path):
    with pytest.raises(DataError, match="no TFRecord files match") as err:
        preview_records(str(tmp_path / "nothing-*"), tmp_path / "out")
    assert err.value.path == str(tmp_path / "nothing-*")
    assert not (tmp_path / "out").exists()


def test_file_that_is_not_a_record_raises(tmp_path):
    (tmp_path / "junk.tfrecord").write_bytes(b"definitely not a tfrecord file" * 10)
    with pytest.raises(DataError, match="not a valid TFRecord file") as err:
        preview_records(str(tmp_path / "junk.tfrecord"), tmp_path / "out")
    assert err.value.path == str(tmp_path / "junk.tfrecord")
    assert not (tmp_path / "out").exists()


def test_example_whose_image_does_not_decode_raises(tmp_path):
    masks = rect_masks(RECTS[:1])
    sample = Sample(EncodedImage(b"\x89PNG not really", "png", (H, W), "broken.png"),
                    Instances(masks, [tight_box_xyxy_px(masks[0])], [1], ["speaker"]), 9)
    with ShardedWriter(tmp_path / "bad", 1) as writer:
        writer.write(build_example(sample))
    with pytest.raises(DataError, match="does not decode") as err:
        preview_records(str(tmp_path / "bad-*"), tmp_path / "out")
    assert "broken.png" in err.value.path


# ---------------------------------------------------------------- CLI


def parse(argv):
    parser = argparse.ArgumentParser()
    preview_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["preview", *argv])


def test_cli_writes_previews(records, tmp_path, capsys):
    root, _ = records
    args = parse([str(root / "train-*"), "--out", str(tmp_path / "p"), "--limit", "2",
                  "--no-progress"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == f"wrote 2 preview(s) to {tmp_path / 'p'}/"
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["a.png", "a_3.png"]


@pytest.mark.parametrize("argv", [["x"], ["x", "--out", "d", "--limit", "-1"],
                                  ["x", "--out", "d", "--limit", "two"]])
def test_cli_usage_errors(argv):
    with pytest.raises(SystemExit) as err:
        parse(argv)
    assert err.value.code == 2


def test_labels_are_class_names_with_crowd_marked(records):
    from tfmask.data.preview import example_labels
    from tfmask.data.records.reader import read_examples

    root, _ = records
    labels = {ex.filename: example_labels(ex) for ex in read_examples(str(root / "train-*"))}
    assert labels == {"a.png": ["speaker", "cup"], "b.jpg": [], "a.jpg": ["cup (crowd)"],
                      "c.png": []}
