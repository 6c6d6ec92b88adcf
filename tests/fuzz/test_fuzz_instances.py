"""Property-based fuzzing of mask -> instances (class, components and box modes).

Random small gray/RGB masks, class maps, label maps and XML boxes: only
DataError may escape, and every instance is non-empty, inside the image,
within its class's pixels, with the box its mode promises. Run with
``python -m pytest tests/fuzz/test_fuzz_instances.py``.
"""

import math

import numpy as np
from hypothesis import HealthCheck, example, given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from scipy import ndimage

from tfmask.errors import DataError
from tfmask.data.instances import (class_map_from_mask, instances_by_class,
                              instances_by_class_from_gray, instances_by_components,
                              instances_in_boxes)
from tfmask.config.label_map import LabelClass, LabelMap
from tfmask.data.sources.voc_xml import VocObject

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SHAPES = array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24)
_EIGHT = np.ones((3, 3), bool)


@st.composite
def _label_map(draw, rgb=None):
    n = draw(st.integers(1, 5))
    ids = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n, unique=True))
    if rgb is None:
        rgb = draw(st.booleans())
    if rgb:
        values = draw(st.lists(st.tuples(*[st.integers(0, 255)] * 3).filter(any),
                               min_size=n, max_size=n, unique=True))
    else:
        values = [(v,) for v in draw(st.lists(st.integers(1, 255), min_size=n, max_size=n,
                                              unique=True))]
    return LabelMap(tuple(LabelClass(i, f"c{i}", v) for i, v in zip(ids, values)))


@st.composite
def _class_map(draw, label_map):
    n = len(label_map.classes)
    return draw(arrays(np.uint8, _SHAPES, elements=st.integers(0, n)))


def _check_instances(inst, class_map, label_map, tight=True):
    """Invariants every mode shares; ``tight``: boxes are the extent of the mask."""
    h, w = class_map.shape
    assert inst.masks.shape == (len(inst), h, w)
    by_id = {c.id: k for k, c in enumerate(label_map.classes, start=1)}
    for mask, box, cid, name in zip(inst.masks, inst.boxes_xyxy_px, inst.class_ids,
                                    inst.class_names):
        assert mask.any()  # never an empty instance
        k = by_id[int(cid)]
        assert label_map.classes[k - 1].name == name
        assert (class_map[mask] == k).all()  # instance pixels within its class's pixels
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h  # inside the image
        ys, xs = np.nonzero(mask)
        if tight:
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        else:  # the mask lies within the box rounded out to whole pixels
            assert math.floor(x0) <= xs.min() and xs.max() < math.ceil(x1)
            assert math.floor(y0) <= ys.min() and ys.max() < math.ceil(y1)


def _no_overlap(inst):
    if len(inst):
        assert inst.masks.sum(axis=0).max() == 1


# ------------------------------------------------ gray masks: both class routes

@st.composite
def _gray_case(draw):
    lm = draw(_label_map(rgb=False))
    palette = [0] + [c.pixel_value[0] for c in lm.classes]
    if draw(st.integers(0, 4)) == 0:  # sometimes values that match no class
        palette += draw(st.lists(st.integers(0, 255), min_size=1, max_size=3))
    gray = draw(arrays(np.uint8, _SHAPES, elements=st.sampled_from(palette)))
    return gray, lm


@settings(max_examples=400, **_SETTINGS)
@given(_gray_case())
def test_gray_mask_class_mode(case):
    gray, lm = case
    try:
        class_map = class_map_from_mask(gray, lm, "m.png")
    except DataError as slow_error:
        assert slow_error.kind == "unknown_pixel_values"
        try:
            instances_by_class_from_gray(gray, lm, "m.png")
        except DataError as fast_error:
            assert str(fast_error) == str(slow_error)
        else:
            raise AssertionError("the fast route accepted a mask the class-map route refused")
        return
    values = {c.pixel_value[0]: k for k, c in enumerate(lm.classes, start=1)}
    np.testing.assert_array_equal(class_map, np.vectorize(lambda v: values.get(v, 0))(gray))
    slow = instances_by_class(class_map, lm)
    fast = instances_by_class_from_gray(gray, lm, "m.png")
    for a, b in [(fast.masks, slow.masks), (fast.boxes_xyxy_px, slow.boxes_xyxy_px),
                 (fast.class_ids, slow.class_ids)]:
        np.testing.assert_array_equal(a, b)
    assert fast.class_names == slow.class_names
    _check_instances(slow, class_map, lm)
    _no_overlap(slow)
    # one instance per class present, its mask every pixel of the class
    present = [k for k in range(1, len(lm.classes) + 1) if (class_map == k).any()]
    assert [lm.classes[k - 1].id for k in present] == list(slow.class_ids)
    for mask, k in zip(slow.masks, present):
        np.testing.assert_array_equal(mask, class_map == k)


# ------------------------------------------------------------------- RGB masks

@st.composite
def _rgb_case(draw):
    lm = draw(_label_map(rgb=True))
    palette = [(0, 0, 0)] + [c.pixel_value for c in lm.classes]
    if draw(st.integers(0, 4)) == 0:
        palette.append(draw(st.tuples(*[st.integers(0, 255)] * 3)))
    index = draw(arrays(np.uint8, _SHAPES, elements=st.integers(0, len(palette) - 1)))
    return np.array(palette, np.uint8)[index], lm


@settings(max_examples=300, **_SETTINGS)
@given(_rgb_case())
def test_rgb_mask_class_mode(case):
    rgb, lm = case
    try:
        class_map = class_map_from_mask(rgb, lm, "m.png")
    except DataError as exc:
        assert exc.kind == "unknown_pixel_values" and exc.path == "m.png"
        return
    codes = {c.pixel_value: k for k, c in enumerate(lm.classes, start=1)}
    expected = [[codes.get(tuple(int(v) for v in px), 0) for px in row] for row in rgb]
    np.testing.assert_array_equal(class_map, expected)
    inst = instances_by_class(class_map, lm)
    _check_instances(inst, class_map, lm)
    _no_overlap(inst)


# ---------------------------------------------------------------- components mode

@st.composite
def _components_case(draw):
    lm = draw(_label_map())
    return draw(_class_map(lm)), lm, draw(st.integers(-1, 8))


@settings(max_examples=400, **_SETTINGS)
@given(_components_case())
@example((np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], np.uint8),
          LabelMap((LabelClass(1, "a", (10,)),)), 5))  # diagonal neighbours: one component
def test_components_mode(case):
    class_map, lm, min_area = case
    inst, dropped = instances_by_components(class_map, lm, min_area)
    _check_instances(inst, class_map, lm)
    _no_overlap(inst)
    kept = total = 0
    for k in range(1, len(lm.classes) + 1):
        labels, n = ndimage.label(class_map == k, structure=_EIGHT)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        kept += int((sizes >= min_area).sum())
        total += n
    assert len(inst) == kept and dropped == total - kept
    # each instance is exactly one whole 8-connected component
    for mask in inst.masks:
        labels, n = ndimage.label(mask, structure=_EIGHT)
        assert n == 1
        k = int(class_map[mask][0])
        grown = ndimage.binary_dilation(mask, structure=_EIGHT) & (class_map == k)
        np.testing.assert_array_equal(grown, mask)


# ----------------------------------------------------------------------- box mode

_COORD = st.one_of(st.integers(-5, 30).map(float),
                   st.floats(-5, 30, allow_nan=False, width=32).map(float),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e300, -1e300, 5.0000001, 5.0000002, 0.0, -0.0]))


@st.composite
def _boxes_case(draw):
    lm = draw(_label_map())
    class_map = draw(_class_map(lm))
    names = lm.names + ["unknown"]
    objects = draw(st.lists(st.builds(VocObject, st.sampled_from(names),
                                      st.tuples(_COORD, _COORD, _COORD, _COORD),
                                      st.integers(1, 99)), max_size=5))
    return class_map, lm, objects


_ONE = LabelMap((LabelClass(1, "a", (10,)),))


@settings(max_examples=600, **_SETTINGS)
@given(_boxes_case())
# float32 rounding made a positive-width box zero-width: ValueError from Instances
@example((np.ones((8, 8), np.uint8), _ONE, [VocObject("a", (5.0000001, 1, 5.0000002, 3), 1)]))
# the mask region came from the float64 box: column 5 lay outside the float32 box (1, 5.0)
@example((np.ones((8, 8), np.uint8), _ONE, [VocObject("a", (1, 1, 5.00000001, 3), 1)]))
@example((np.ones((8, 8), np.uint8), _ONE, [VocObject("a", (-1e300, -1, 1e300, math.inf), 1)]))
@example((np.ones((8, 8), np.uint8), _ONE, [VocObject("a", (math.nan, 1, 3, 3), 1)]))
def test_box_mode(case):
    class_map, lm, objects = case
    h, w = class_map.shape
    try:
        inst, problems = instances_in_boxes(class_map, lm, objects, "a.xml")
    except DataError as exc:
        assert exc.path == "a.xml" and exc.kind in ("unknown_class", "bad_box")
        return
    _check_instances(inst, class_map, lm, tight=False)
    index = {c.name: k for k, c in enumerate(lm.classes, start=1)}
    kept = iter(zip(inst.masks, inst.boxes_xyxy_px, inst.class_names))
    dropped = 0
    for obj in objects:
        x0, y0, x1, y1 = obj.box_xyxy_px
        clipped = np.array([max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)], np.float32)
        c0, r0 = math.floor(clipped[0]), math.floor(clipped[1])
        c1, r1 = math.ceil(clipped[2]), math.ceil(clipped[3])
        region = np.zeros((h, w), bool)
        region[r0:r1, c0:c1] = True
        expected = region & (class_map == index[obj.name])
        if not expected.any():
            dropped += 1
            continue
        mask, box, name = next(kept)
        assert name == obj.name
        np.testing.assert_array_equal(box, clipped)  # the clipped XML box
        np.testing.assert_array_equal(mask, expected)  # its class's pixels inside the box
    assert next(kept, None) is None
    assert sum(p.kind == "empty_box_dropped" for p in problems) == dropped
