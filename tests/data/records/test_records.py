"""Records: the OD API key set, Model Garden's own decoder, shards, atomicity."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfmask.data.records import feature_keys as fk
from tfmask.annotation import EncodedImage, Instances, Sample
from tfmask.data.records.reader import decode_example, expand_record_paths
from tfmask.data.records.writer import ShardedWriter, build_example, shard_paths
from tfmask.errors import DataError

# The OD API's instance-segmentation keys (create_coco_tf_record / the tutorial).
OD_API_KEYS = {
    "image/height", "image/width", "image/filename", "image/source_id", "image/key/sha256",
    "image/encoded", "image/format", "image/object/bbox/xmin", "image/object/bbox/xmax",
    "image/object/bbox/ymin", "image/object/bbox/ymax", "image/object/class/text",
    "image/object/class/label", "image/object/mask", "image/object/area",
    "image/object/is_crowd"}


def make_sample(n: int = 2, size_hw=(30, 40), source_id: int = 5) -> Sample:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((*size_hw, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    masks = np.zeros((n, *size_hw), bool)
    boxes = []
    for i in range(n):
        masks[i, 2 + i:10 + i, 3 + 2 * i:20] = True
        boxes.append([3 + 2 * i, 2 + i, 20, 10 + i])
    inst = Instances(masks, boxes, [1 + i % 2 for i in range(n)],
                     ["speaker" if i % 2 == 0 else "cup" for i in range(n)],
                     [i == 1 for i in range(n)])
    return Sample(EncodedImage(buf.getvalue(), "png", size_hw, "x.png"), inst, source_id)


def test_example_has_exactly_the_od_api_keys():
    ex = tf.train.Example.FromString(build_example(make_sample()))
    assert set(ex.features.feature.keys()) == OD_API_KEYS == set(fk.ALL_KEYS)


def test_model_garden_decoder_round_trip():
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    sample = make_sample(3)
    out = TfExampleDecoder(include_mask=True, regenerate_source_id=False).decode(
        tf.constant(build_example(sample)))
    h, w = sample.image.size_hw
    assert out["source_id"].numpy() == b"5"
    assert int(tf.strings.to_number(out["source_id"], tf.int64)) == 5  # what COCO eval does
    np.testing.assert_array_equal(out["image"].numpy(),
                                  np.asarray(Image.open(io.BytesIO(sample.image.data))))
    np.testing.assert_array_equal(out["groundtruth_classes"].numpy(), sample.instances.class_ids)
    np.testing.assert_array_equal(out["groundtruth_is_crowd"].numpy(), sample.instances.is_crowd)
    np.testing.assert_array_equal(out["groundtruth_instance_masks"].numpy() > 0.5,
                                  sample.instances.masks)
    x0, y0, x1, y1 = sample.instances.boxes_xyxy_px.T
    np.testing.assert_allclose(out["groundtruth_boxes"].numpy(),
                               np.stack([y0 / h, x0 / w, y1 / h, x1 / w], 1), atol=1e-6)
    np.testing.assert_allclose(out["groundtruth_area"].numpy(), sample.instances.areas_px)


def test_negative_example_decodes_to_empty_masks():
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    size_hw = (30, 40)
    sample = make_sample(1)
    empty = Sample(sample.image, Instances.empty(size_hw), 1)
    out = TfExampleDecoder(include_mask=True).decode(tf.constant(build_example(empty)))
    assert out["groundtruth_instance_masks"].shape == (0, *size_hw)
    ours = decode_example(build_example(empty))
    assert ours.masks.shape == (0, *size_hw) and ours.boxes_yxyx_norm.shape == (0, 4)


def test_numpy_decoder_round_trip():
    sample = make_sample(2)
    ex = decode_example(build_example(sample))
    np.testing.assert_array_equal(ex.masks, sample.instances.masks)
    np.testing.assert_allclose(ex.boxes_xyxy_px, sample.instances.boxes_xyxy_px, atol=1e-4)
    assert ex.class_names == ("speaker", "cup") and ex.is_crowd.tolist() == [False, True]


def test_sharded_writer_names_round_robin_and_atomicity(tmp_path):
    prefix = tmp_path / "train"
    assert [p.name for p in shard_paths(prefix, 2)] == ["train-00000-of-00002",
                                                        "train-00001-of-00002"]
    with ShardedWriter(prefix, 2) as w:
        for sid in range(1, 6):
            w.write(build_example(make_sample(1, source_id=sid)))
        assert not list(tmp_path.glob("train-*"))  # nothing final before completion
    ids = [[int(decode_example(r).source_id) for r in
            tf.data.TFRecordDataset(str(p)).as_numpy_iterator()] for p in w.paths]
    assert ids == [[1, 3, 5], [2, 4]]
    with pytest.raises(RuntimeError):
        with ShardedWriter(tmp_path / "bad", 1) as w:
            w.write(build_example(make_sample(1)))
            raise RuntimeError("killed")
    assert not list(tmp_path.glob("*bad*"))  # neither final nor temporary files


def test_expand_record_paths(tmp_path):
    for n in ("a-00000-of-00002", "a-00001-of-00002"):
        (tmp_path / n).write_bytes(b"")
    assert len(expand_record_paths(str(tmp_path / "a-*"))) == 2
    assert len(expand_record_paths(f"{tmp_path}/a-00000-of-00002,{tmp_path}/a-00001-of-00002")) == 2
    with pytest.raises(DataError, match="no TFRecord files match"):
        expand_record_paths(str(tmp_path / "zzz-*"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(masks=np.zeros((1, 4, 4), bool)), "at least one pixel"),
    (dict(boxes_xyxy_px=[[0, 0, 5, 4]]), "inside the 4x4 image"),
    (dict(boxes_xyxy_px=[[2, 0, 2, 4]]), "positive width"),
    (dict(class_ids=[0]), "class ids must be >= 1"),
    (dict(class_ids=[1.7]), "class ids must be integers"),
    (dict(boxes_xyxy_px=[[np.nan, 0, 4, 4]]), "boxes must be finite"),
    (dict(class_names=["a", "b"]), "one entry per instance"),
])
def test_instances_validate_themselves(kwargs, match):
    base = dict(masks=np.ones((1, 4, 4), bool), boxes_xyxy_px=[[0, 0, 4, 4]], class_ids=[1],
                class_names=["a"])
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Instances(**base)
