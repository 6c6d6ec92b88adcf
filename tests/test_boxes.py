"""The box conventions: each conversion checked against hand-computed values and its inverse."""

import numpy as np
import pytest

from tfmask import boxes

# A 40x30 (HxW) image; the box covers columns 3..11 and rows 8..27 (pixel edges 3..12, 8..28).
SIZE_HW = (40, 30)
XYXY_PX = np.array([[3.0, 8.0, 12.0, 28.0]], np.float32)
YXYX_NORM = np.array([[8 / 40, 3 / 30, 28 / 40, 12 / 30]])


def test_xyxy_px_to_yxyx_norm_divides_by_height_and_width():
    out = boxes.xyxy_px_to_yxyx_norm(XYXY_PX, SIZE_HW)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, YXYX_NORM)


def test_yxyx_norm_to_xyxy_px_is_the_inverse():
    out = boxes.yxyx_norm_to_xyxy_px(YXYX_NORM.astype(np.float32), SIZE_HW)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, XYXY_PX, atol=1e-5)


def test_float32_products_equal_float32_arithmetic():
    # The record reader used float32 arithmetic; the conversion must give the same bits.
    rng = np.random.default_rng(0)
    norm = rng.random((500, 4)).astype(np.float32)
    h, w = 383, 511
    ref = np.stack([norm[:, 1] * w, norm[:, 0] * h, norm[:, 3] * w, norm[:, 2] * h], axis=1)
    np.testing.assert_array_equal(boxes.yxyx_norm_to_xyxy_px(norm, (h, w)), ref)


def test_coco_xywh_round_trip():
    xywh = boxes.xyxy_to_xywh(XYXY_PX)
    np.testing.assert_array_equal(xywh, [[3, 8, 9, 20]])
    np.testing.assert_array_equal(boxes.xywh_to_xyxy(xywh), XYXY_PX)


def test_coco_bbox_is_a_list_of_floats_rounded_on_request():
    assert boxes.coco_bbox([1.23456, 2, 3.5, 4.25]) == [1.23456, 2.0, 2.26544, 2.25]
    assert boxes.coco_bbox([1.23456, 2, 3.5, 4.25], decimals=3) == [1.235, 2.0, 2.265, 2.25]
    assert all(type(v) is float for v in boxes.coco_bbox(np.float32([1, 2, 3, 4])))


def test_yxyx_to_xyxy_swaps_axes_only():
    np.testing.assert_array_equal(boxes.yxyx_to_xyxy([[1, 2, 3, 4]]), [[2, 1, 4, 3]])


def test_empty_and_bad_shapes():
    assert boxes.yxyx_norm_to_xyxy_px(np.zeros((0, 4)), SIZE_HW).shape == (0, 4)
    assert boxes.xyxy_to_xywh([]).shape == (0, 4)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        boxes.xyxy_to_xywh([[1, 2, 3]])
