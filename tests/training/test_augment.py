"""Training augmentations: rotation90, rotation by an angle, colour jitter, the parser.

Geometry is checked against independent references: numpy's ``rot90`` for
the 90 degree case, and for arbitrary angles the mask centroid, which must
move like the instance's centre rotated counter-clockwise (on screen) about
the image centre. Boxes must always be the tight pixel-edge boxes of the
masks, and per-instance fields must stay aligned when instances are dropped.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfmask.annotation import EncodedImage, Instances, Sample
from tfmask.data.records.writer import build_example
from tfmask.training import augment, rotation
from tfmask.training.augment import Augmentation, augment_decoded
from tfmask.training.rotation import boxes_from_masks

SIZE_HW = (40, 48)  # non-square on purpose: rotation90 must swap it


def decoded(rects, size_hw=SIZE_HW, classes=None, crowd=None, image=None):
    """A dict shaped like TfExampleDecoder(include_mask=True) output.

    ``rects`` are pixel-edge ``(y0, x0, y1, x1)``; boxes are their normalized
    tight boxes, areas their pixel counts.
    """
    h, w = size_hw
    n = len(rects)
    masks = np.zeros((n, h, w), np.float32)
    for i, (y0, x0, y1, x1) in enumerate(rects):
        masks[i, y0:y1, x0:x1] = 1.0
    boxes = np.array([[y0 / h, x0 / w, y1 / h, x1 / w] for y0, x0, y1, x1 in rects],
                     np.float32).reshape(-1, 4)
    if image is None:
        image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return {
        "image": tf.constant(image, tf.uint8),
        "groundtruth_boxes": tf.constant(boxes),
        "groundtruth_instance_masks": tf.constant(masks),
        "groundtruth_classes": tf.constant(
            classes if classes is not None else np.arange(1, n + 1), tf.int64),
        "groundtruth_is_crowd": tf.constant(
            crowd if crowd is not None else np.zeros(n, bool), tf.bool),
        "groundtruth_area": tf.constant(masks.sum(axis=(1, 2)), tf.float32),
        "height": tf.constant(h, tf.int64),
        "width": tf.constant(w, tf.int64),
        "source_id": tf.constant("7"),
    }


def np_dict(data):
    return {k: v.numpy() for k, v in data.items()}


def assert_boxes_are_tight(out, atol=0.0):
    expected = boxes_from_masks(out["groundtruth_instance_masks"]).numpy()
    np.testing.assert_allclose(out["groundtruth_boxes"].numpy(), expected, rtol=0, atol=atol)


def centroid_yx(mask):
    ys, xs = np.nonzero(mask)
    return np.array([ys.mean(), xs.mean()])


# --- boxes_from_masks ----------------------------------------------------------------

def test_boxes_from_masks_pixel_edges_and_empty():
    masks = np.zeros((3, 10, 20), np.float32)
    masks[0, 2:5, 3:7] = 1  # rows 2..4, cols 3..6 -> edges 2, 3, 5, 7
    masks[1, 9, 19] = 1  # bottom-right pixel -> ymax = xmax = 1
    boxes = boxes_from_masks(masks).numpy()
    np.testing.assert_allclose(boxes[0], [2 / 10, 3 / 20, 5 / 10, 7 / 20], rtol=1e-6)
    np.testing.assert_allclose(boxes[1], [0.9, 0.95, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(boxes[2], [0, 0, 0, 0])
    assert boxes_from_masks(np.zeros((0, 10, 20), bool)).shape == (0, 4)


# --- rotation90 ----------------------------------------------------------------------

def test_rotation90_rotates_image_masks_boxes_counter_clockwise():
    h, w = SIZE_HW
    rects = [(3, 5, 4, 6),  # the single pixel (row 3, col 5)
             (10, 30, 16, 44)]  # a wide rectangle near the right edge
    data = decoded(rects)
    out = augment_decoded(data, Augmentation(rotation90_probability=1.0))

    image, masks = out["image"].numpy(), out["groundtruth_instance_masks"].numpy()
    assert image.shape == (w, h, 3) and masks.shape == (2, w, h)
    assert (int(out["height"]), int(out["width"])) == (w, h)
    # CCW: pixel (r, c) of an H x W image lands at (W - 1 - c, r).
    np.testing.assert_array_equal(image[w - 1 - 5, 3], data["image"].numpy()[3, 5])
    assert masks[0, w - 1 - 5, 3] == 1 and masks[0].sum() == 1
    np.testing.assert_array_equal(image, np.rot90(data["image"].numpy()))
    np.testing.assert_array_equal(masks, np.rot90(data["groundtruth_instance_masks"].numpy(),
                                                  axes=(1, 2)))
    # The wide rectangle near the right edge becomes a tall one near the top.
    y0, x0, y1, x1 = rects[1]
    np.testing.assert_allclose(out["groundtruth_boxes"].numpy()[1],
                               [(w - x1) / w, y0 / h, (w - x0) / w, y1 / h], atol=1e-6)
    assert_boxes_are_tight(out, atol=1e-6)  # analytic boxes, so equal up to float rounding
    for key in ("groundtruth_classes", "groundtruth_is_crowd", "groundtruth_area"):
        np.testing.assert_array_equal(out[key].numpy(), data[key].numpy())


def test_rotation_probability_is_drawn_per_image_in_graph_mode():
    data = decoded([(0, 0, 1, 1)], size_hw=(4, 6))
    cfg = Augmentation(rotation90_probability=0.5)
    ds = tf.data.Dataset.from_tensors(data).repeat(200).map(
        lambda d: augment_decoded(d, cfg, seed=3))
    rotated = [int(d["height"]) == 6 for d in ds.as_numpy_iterator()]
    assert 60 <= sum(rotated) <= 140, sum(rotated)


# --- rotation by an angle --------------------------------------------------------------

CENTRE_RECTS = [(12, 14, 20, 26), (18, 22, 28, 30)]  # stay inside for any |angle| <= 30
CORNER_RECT = (0, 0, 2, 3)  # a few pixels in the top-left corner


@pytest.mark.parametrize("angle", [30.0, -30.0])
def test_rotation_moves_masks_and_image_together_and_drops_corner(angle):
    h, w = SIZE_HW
    image = np.full((h, w, 3), 90, np.uint8)
    y0, x0, y1, x1 = CENTRE_RECTS[0]
    image[y0:y1, x0:x1] = (250, 10, 10)
    rects = [CENTRE_RECTS[0], CORNER_RECT, CENTRE_RECTS[1]]
    data = decoded(rects, classes=[3, 5, 8], crowd=[False, False, True], image=image)
    out = rotation.rotate_decoded(data, angle)

    # The corner instance left the frame and took its class/crowd/area entry with it.
    np.testing.assert_array_equal(out["groundtruth_classes"].numpy(), [3, 8])
    np.testing.assert_array_equal(out["groundtruth_is_crowd"].numpy(), [False, True])
    masks = out["groundtruth_instance_masks"].numpy()
    assert masks.shape == (2, h, w) and set(np.unique(masks)) <= {0.0, 1.0}
    np.testing.assert_array_equal(out["groundtruth_area"].numpy(), masks.sum(axis=(1, 2)))
    assert_boxes_are_tight(out)
    assert "groundtruth_instance_masks_png" not in out

    theta = math.radians(angle)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    for k, rect in zip(range(2), (rects[0], rects[2])):
        before = data["groundtruth_instance_masks"].numpy()[rects.index(rect)]
        assert abs(masks[k].sum() - before.sum()) <= 0.1 * before.sum(), (k, masks[k].sum())
        dy, dx = centroid_yx(before) - centre
        # Counter-clockwise on screen (y down): right goes up.
        expected = centre + [-math.sin(theta) * dx + math.cos(theta) * dy,
                             math.cos(theta) * dx + math.sin(theta) * dy]
        np.testing.assert_allclose(centroid_yx(masks[k]), expected, atol=0.5)
    # The red rectangle in the image moved with its mask.
    red = (out["image"].numpy()[..., 0] > 200) & (out["image"].numpy()[..., 1] < 60)
    inside = red[masks[0] > 0].mean()
    assert inside > 0.8, inside
    # Uncovered corners get the documented fill (Model Garden's mean pixel).
    np.testing.assert_array_equal(out["image"].numpy()[0, 0],
                                  np.round(rotation.FILL_PIXEL_VALUE_RGB).astype(np.uint8))


def test_rotation_by_90_degrees_matches_rot90_on_a_square_image():
    data = decoded([(2, 3, 5, 9), (10, 1, 12, 2)], size_hw=(16, 16))
    out = rotation.rotate_decoded(data, 90.0)
    np.testing.assert_array_equal(out["groundtruth_instance_masks"].numpy(),
                                  rotation.rotate90_decoded(data)["groundtruth_instance_masks"])


def test_random_rotation_keeps_fields_aligned():
    tf.random.set_seed(11)
    rects = [CENTRE_RECTS[0], CENTRE_RECTS[1]]
    data = decoded(rects, classes=[4, 9], crowd=[True, False])
    cfg = Augmentation(rotation_max_degrees=30.0, rotation_probability=1.0)
    out = augment_decoded(data, cfg, seed=5)
    assert not np.array_equal(out["image"].numpy(), data["image"].numpy())
    masks = out["groundtruth_instance_masks"].numpy()
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert_boxes_are_tight(out)
    np.testing.assert_array_equal(out["groundtruth_classes"].numpy(), [4, 9])
    np.testing.assert_array_equal(out["groundtruth_is_crowd"].numpy(), [True, False])
    before = data["groundtruth_area"].numpy()
    after = out["groundtruth_area"].numpy()
    np.testing.assert_array_equal(after, masks.sum(axis=(1, 2)))
    np.testing.assert_allclose(after, before, rtol=0.1)


# --- identity --------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    Augmentation(),
    Augmentation(rotation90_probability=0.0, rotation_max_degrees=30.0),
    Augmentation(rotation_probability=1.0, rotation_max_degrees=0.0),
    Augmentation(contrast_min=1.0, contrast_max=1.0, brightness_max_delta=0.0),
])
def test_identity_configs_return_identical_tensors(cfg):
    assert cfg.is_identity
    data = decoded([CENTRE_RECTS[0], CORNER_RECT])
    data["groundtruth_instance_masks_png"] = tf.constant([b"a", b"b"])
    out = augment_decoded(data, cfg, seed=1)
    assert set(out) == set(data)
    for key, value in np_dict(data).items():
        np.testing.assert_array_equal(out[key].numpy(), value, err_msg=key)


def test_non_identity_is_detected():
    assert not Augmentation(rotation90_probability=0.5).is_identity
    assert not Augmentation(contrast_min=0.9, contrast_max=0.9).is_identity
    assert not Augmentation(distort_color_ordering=0).is_identity


# --- colour ----------------------------------------------------------------------------

COLOUR_CONFIGS = {
    "brightness": Augmentation(brightness_max_delta=0.2),
    "contrast": Augmentation(contrast_min=0.5, contrast_max=0.7),
    "saturation": Augmentation(saturation_min=0.2, saturation_max=0.4),
    "hue": Augmentation(hue_max_delta=0.2),
    "distort_color_0": Augmentation(distort_color_ordering=0),
    "distort_color_1": Augmentation(distort_color_ordering=1),
    "all": Augmentation(brightness_max_delta=0.2, contrast_min=0.8, contrast_max=1.25,
                        saturation_min=0.8, saturation_max=1.25, hue_max_delta=0.02),
}


@pytest.mark.parametrize("name", sorted(COLOUR_CONFIGS))
def test_colour_ops_change_only_the_image(name):
    tf.random.set_seed(2)
    data = decoded([CENTRE_RECTS[0], CORNER_RECT])
    out = augment_decoded(data, COLOUR_CONFIGS[name], seed=4)
    assert out["image"].dtype == tf.uint8 and out["image"].shape == data["image"].shape
    assert np.abs(out["image"].numpy().astype(int) - data["image"].numpy()).max() > 2
    for key, value in np_dict(data).items():
        if key != "image":
            np.testing.assert_array_equal(out[key].numpy(), value, err_msg=key)


def test_brightness_adds_one_delta_within_max_delta():
    tf.random.set_seed(3)
    image = np.random.default_rng(1).integers(70, 180, (*SIZE_HW, 3), dtype=np.uint8)
    data = decoded([], image=image)
    out = augment_decoded(data, Augmentation(brightness_max_delta=0.2), seed=9)
    shift = out["image"].numpy().astype(int) - image
    # One delta for the whole image (no clipping in this value range), rounded.
    assert shift.max() - shift.min() <= 1
    assert 0 < abs(shift.mean()) <= 0.2 * 255 + 1


def test_zero_brightness_delta_leaves_the_image_unchanged():
    data = decoded([CENTRE_RECTS[0]])
    out = augment_decoded(data, Augmentation(brightness_max_delta=0.0), seed=1)
    np.testing.assert_array_equal(out["image"].numpy(), data["image"].numpy())


# --- validation ------------------------------------------------------------------------

@pytest.mark.parametrize("field,kwargs", [
    ("rotation90_probability", dict(rotation90_probability=1.5)),
    ("rotation90_probability", dict(rotation90_probability=-0.1)),
    ("rotation90_probability", dict(rotation90_probability=float("nan"))),
    ("rotation_probability", dict(rotation_probability=2.0)),
    ("rotation_max_degrees", dict(rotation_max_degrees=-1.0)),
    ("rotation_max_degrees", dict(rotation_max_degrees=181.0)),
    ("brightness_max_delta", dict(brightness_max_delta=-0.2)),
    ("contrast_min", dict(contrast_min=-0.5)),
    ("contrast_max", dict(contrast_min=1.25, contrast_max=0.8)),
    ("saturation_min", dict(saturation_min=-1.0)),
    ("saturation_max", dict(saturation_min=1.5, saturation_max=1.0)),
    ("hue_max_delta", dict(hue_max_delta=0.6)),
    ("hue_max_delta", dict(hue_max_delta=-0.01)),
    ("distort_color_ordering", dict(distort_color_ordering=2)),
])
def test_validate_rejects_out_of_range_values(field, kwargs):
    cfg = Augmentation(**kwargs)
    with pytest.raises(ValueError, match=field):
        cfg.validate()
    with pytest.raises(ValueError, match=field):
        augment_decoded(decoded([]), cfg)


def test_validate_accepts_od_api_defaults():
    Augmentation(rotation90_probability=0.5, rotation_max_degrees=180.0,
                 rotation_probability=1.0, brightness_max_delta=0.2, contrast_min=0.8,
                 contrast_max=1.25, saturation_min=0.8, saturation_max=1.25,
                 hue_max_delta=0.02, distort_color_ordering=1).validate()


# --- real records: Model Garden's decoder and parser ---------------------------------

def serialized(rects_yxyx, size_hw=SIZE_HW, source_id=1) -> bytes:
    h, w = size_hw
    buf = io.BytesIO()
    pixels = np.random.default_rng(source_id).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "PNG")
    masks = np.zeros((len(rects_yxyx), h, w), bool)
    for i, (y0, x0, y1, x1) in enumerate(rects_yxyx):
        masks[i, y0:y1, x0:x1] = True
    inst = Instances(masks, [[x0, y0, x1, y1] for y0, x0, y1, x1 in rects_yxyx],
                     [1 + i % 2 for i in range(len(rects_yxyx))],
                     ["speaker" if i % 2 == 0 else "cup" for i in range(len(rects_yxyx))])
    return build_example(Sample(EncodedImage(buf.getvalue(), "png", size_hw, "x.png"),
                                inst, source_id))


def decoder():
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder
    return TfExampleDecoder(include_mask=True, regenerate_source_id=False)


ALL_ON = Augmentation(rotation90_probability=0.5, rotation_max_degrees=30.0,
                      rotation_probability=0.5, brightness_max_delta=0.2, contrast_min=0.8,
                      contrast_max=1.25, saturation_min=0.8, saturation_max=1.25,
                      hue_max_delta=0.02, distort_color_ordering=0)


def test_graph_mode_dataset_with_an_empty_example():
    records = [serialized([(3, 4, 12, 20), (20, 30, 35, 46)], source_id=1),
               serialized([], source_id=2)]
    ds = (tf.data.Dataset.from_tensor_slices(records).map(decoder().decode)
          .map(lambda d: augment_decoded(d, ALL_ON, seed=7)))
    outs = list(ds.as_numpy_iterator())
    assert [len(o["groundtruth_classes"]) for o in outs][1] == 0
    for o in outs:
        h, w = o["image"].shape[:2]
        assert o["image"].dtype == np.uint8 and {h, w} == set(SIZE_HW)
        assert (o["height"], o["width"]) == (h, w)
        assert o["groundtruth_instance_masks"].shape[1:] == (h, w)
        n = len(o["groundtruth_classes"])
        assert len(o["groundtruth_boxes"]) == len(o["groundtruth_area"]) == n
        np.testing.assert_allclose(o["groundtruth_boxes"],
                                   boxes_from_masks(o["groundtruth_instance_masks"]), atol=1e-6)


PARSER_ARGS = dict(output_size=[64, 64], min_level=2, max_level=4, num_scales=1,
                   aspect_ratios=[1.0], anchor_size=2.0, include_mask=True,
                   mask_crop_size=28, max_num_instances=8)


def test_augmenting_parser_rotates_ground_truth():
    from official.vision.dataloaders.maskrcnn_input import Parser

    h, w = SIZE_HW
    rects = [(3, 4, 12, 20), (20, 30, 35, 46)]  # no symmetry: rotation must show
    record = tf.constant(serialized(rects))
    plain = Parser(**PARSER_ARGS).parse_fn(is_training=True)
    rotating = augment.AugmentingParser(
        augmentation=Augmentation(rotation90_probability=1.0), **PARSER_ARGS
    ).parse_fn(is_training=True)
    dec = decoder()
    (img0, lab0), (img1, lab1) = (
        next(iter(tf.data.Dataset.from_tensors(record).map(dec.decode).map(fn)))
        for fn in (plain, rotating))

    assert img1.shape == img0.shape == (64, 64, 3)
    assert lab1["gt_boxes"].shape == (8, 4) and lab1["gt_masks"].shape == (8, 28, 28)
    np.testing.assert_array_equal(lab1["image_info"].numpy()[0], [w, h])  # rotated size
    # image_info[2] is the per-axis (y, x) scale to the resized image.
    sy0, sx0 = lab0["image_info"].numpy()[2]
    sy1, sx1 = lab1["image_info"].numpy()[2]
    r = np.array(rects, np.float64)  # pixel-edge (y0, x0, y1, x1)
    np.testing.assert_allclose(lab0["gt_boxes"].numpy()[:2], r * [sy0, sx0, sy0, sx0],
                               atol=1e-3)
    # CCW in the original's pixels: (y0, x0, y1, x1) -> (W - x1, y0, W - x0, y1).
    rotated = np.stack([w - r[:, 3], r[:, 0], w - r[:, 1], r[:, 2]], 1)
    np.testing.assert_allclose(lab1["gt_boxes"].numpy()[:2], rotated * [sy1, sx1, sy1, sx1],
                               atol=1e-3)
    assert not np.allclose(lab0["gt_boxes"].numpy(), lab1["gt_boxes"].numpy())
    np.testing.assert_array_equal(lab1["gt_boxes"].numpy()[2:], -1)  # padding
    np.testing.assert_array_equal(lab1["gt_classes"].numpy(), lab0["gt_classes"].numpy())


def test_augmenting_parser_rejects_bad_config():
    with pytest.raises(ValueError, match="hue_max_delta"):
        augment.AugmentingParser(augmentation=Augmentation(hue_max_delta=1.0), **PARSER_ARGS)
    with pytest.raises(ValueError, match="include_mask"):
        augment.AugmentingParser(
            augmentation=Augmentation(rotation_max_degrees=10.0, rotation_probability=1.0),
            **{**PARSER_ARGS, "include_mask": False})
