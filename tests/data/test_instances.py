"""Mask -> instances: class maps and the three instance modes."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import ndimage

from tfmask.errors import DataError
from tfmask.annotation import tight_box_xyxy_px
from tfmask.data.instances import (class_map_from_mask, instances_by_class,
                              instances_by_class_from_gray, instances_by_components,
                              instances_in_boxes)
from tfmask.config.label_map import LabelClass, LabelMap
from tfmask.data.sources.voc_xml import VocObject

GRAY = LabelMap((LabelClass(1, "a", (10,)), LabelClass(2, "b", (20,))))
RGB = LabelMap((LabelClass(1, "a", (255, 0, 0)), LabelClass(2, "b", (0, 0, 255))))


def test_gray_and_rgb_class_maps():
    gray = np.array([[0, 10], [20, 10]], np.uint8)
    np.testing.assert_array_equal(class_map_from_mask(gray, GRAY, "m.png"), [[0, 1], [2, 1]])
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = (255, 0, 0)
    rgb[1, 0] = (0, 0, 255)
    np.testing.assert_array_equal(class_map_from_mask(rgb, RGB, "m.png"), [[0, 1], [2, 0]])


def test_unknown_values_are_listed_with_counts():
    with pytest.raises(DataError) as exc:
        class_map_from_mask(np.array([[0, 11, 11, 12]], np.uint8), GRAY, "m.png")
    assert "mask values 11 (2 px), 12 (1 px) match no class (label map: a=10, b=20)" in \
        str(exc.value)
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, 1] = (1, 2, 3)
    with pytest.raises(DataError, match=r"\(1,2,3\) \(1 px\)"):
        class_map_from_mask(rgb, RGB, "m.png")


def test_class_mode_one_instance_per_class_in_label_map_order():
    cm = np.zeros((6, 6), np.uint8)
    cm[0:2, 0:2] = 2
    cm[4:6, 3:5] = 1
    cm[0, 5] = 1
    inst = instances_by_class(cm, GRAY)
    assert inst.class_names == ("a", "b")
    np.testing.assert_array_equal(inst.boxes_xyxy_px, [[3, 0, 6, 6], [0, 0, 2, 2]])


def test_box_mode_mask_is_class_pixels_inside_box():
    cm = np.zeros((6, 6), np.uint8)
    cm[:, :] = 1
    inst, problems = instances_in_boxes(cm, GRAY, [VocObject("a", (1, 1, 3, 4), 1)], "x.xml")
    assert inst.masks[0].sum() == 6 and inst.masks[0][1:4, 1:3].all() and not problems


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2), min_size=8, max_size=8), min_size=8, max_size=8),
       st.integers(1, 4))
def test_components_invariants(rows, min_area):
    cm = np.array(rows, np.uint8)
    inst, dropped = instances_by_components(cm, GRAY, min_area)
    expected = 0
    total = 0
    for k in (1, 2):
        labels, n = ndimage.label(cm == k, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        expected += int((sizes >= min_area).sum())
        total += n
    assert len(inst) == expected and dropped == total - expected
    for mask, box, cid in zip(inst.masks, inst.boxes_xyxy_px, inst.class_ids):
        assert mask.any() and (cm[mask] == cid).all()  # instance pixels within its class
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    if len(inst):  # instances never overlap
        assert inst.masks.sum(axis=0).max() == 1


# ------------------------------------------------ fast class mode (gray masks)

@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0, 10, 20]), min_size=1, max_size=9),
                min_size=1, max_size=9).filter(lambda r: len({len(x) for x in r}) == 1))
def test_fast_class_mode_equals_class_map_route(rows):
    gray = np.array(rows, np.uint8)
    fast = instances_by_class_from_gray(gray, GRAY, "m.png")
    slow = instances_by_class(class_map_from_mask(gray, GRAY, "m.png"), GRAY)
    np.testing.assert_array_equal(fast.masks, slow.masks)
    np.testing.assert_array_equal(fast.boxes_xyxy_px, slow.boxes_xyxy_px)
    np.testing.assert_array_equal(fast.class_ids, slow.class_ids)
    np.testing.assert_array_equal(fast.areas_px, slow.areas_px)


def test_fast_class_mode_reports_unknown_values_like_class_map():
    gray = np.array([[0, 11, 11, 12, 10]], np.uint8)
    with pytest.raises(DataError) as fast:
        instances_by_class_from_gray(gray, GRAY, "m.png")
    with pytest.raises(DataError) as slow:
        class_map_from_mask(gray, GRAY, "m.png")
    assert str(fast.value) == str(slow.value)
    assert "mask values 11 (2 px), 12 (1 px) match no class" in str(fast.value)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2 ** 32 - 1))
def test_tight_box_is_the_extent_of_the_pixels(h, w, seed):
    mask = np.random.default_rng(seed).random((h, w)) < 0.05
    mask[seed % h, seed % w] = True
    rows, cols = np.nonzero(mask)
    np.testing.assert_array_equal(tight_box_xyxy_px(mask),
                                  [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
