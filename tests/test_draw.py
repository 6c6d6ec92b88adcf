"""Instance overlays: blended masks, box outlines, label tags, untouched background."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tfmask.draw import instance_colour, overlay

H, W = 80, 120


def scene(n: int = 2):
    """A flat gray image and n rectangle instances on its right half."""
    image = np.full((H, W, 3), 100, np.uint8)
    rects = [(60, 40, 100, 70), (105, 30, 118, 60)][:n]  # x0, y0, x1, y1 (pixel edges)
    masks = np.zeros((n, H, W), bool)
    for i, (x0, y0, x1, y1) in enumerate(rects):
        masks[i, y0:y1, x0:x1] = True
    return image, masks, np.array(rects, np.float32).reshape(-1, 4)


def test_colours_are_deterministic_and_distinct():
    assert [instance_colour(i) for i in range(10)] == [instance_colour(i) for i in range(10)]
    colours = np.array([instance_colour(i) for i in range(10)], float)
    assert colours.min() >= 0 and colours.max() <= 255
    closest = min(np.abs(a - b).sum() for a, b in itertools.combinations(colours, 2))
    assert closest > 40


def test_masks_blend_toward_the_instance_colour_and_background_is_unchanged():
    image, masks, boxes = scene()
    before = image.copy()
    out = overlay(image, masks, boxes, ["speaker", "cup"])
    np.testing.assert_array_equal(image, before)  # input untouched
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    for i in range(2):
        colour = np.array(instance_colour(i), float)
        ys, xs = np.nonzero(masks[i])
        interior = (slice(ys.min() + 4, ys.max() - 3), slice(xs.min() + 4, xs.max() - 3))
        got = out[interior].reshape(-1, 3).astype(float)
        np.testing.assert_allclose(got, np.broadcast_to(0.5 * 100 + 0.5 * colour, got.shape),
                                   atol=1)
    # Everything left of the instances (and of their tags) is untouched.
    np.testing.assert_array_equal(out[:, :55], image[:, :55])
    # The two instances got different colours.
    assert not np.array_equal(out[55, 80], out[45, 111])


def test_box_outline_and_label_tag_use_the_instance_colour():
    image, masks, boxes = scene(1)
    masks[0] = False
    masks[0, 50:60, 70:90] = True  # mask well inside its box
    colour = instance_colour(0)
    out = overlay(image, masks, boxes, ["speaker"])
    x0, y0, x1, y1 = boxes[0].astype(int)
    for y, x in [(y0, x0 + 20), (y1 - 1, x0 + 20), (y0 + 15, x0), (y0 + 15, x1 - 1)]:
        assert tuple(out[y, x]) == colour, (y, x)
    assert tuple(out[y0 + 3, x0 + 3]) == (100, 100, 100)  # inside the box, outside the mask
    assert tuple(out[y1, x0 + 20]) == (100, 100, 100)  # just below the box
    # The tag sits above the box, filled with the colour, holding text pixels.
    tag = out[y0 - 12:y0, x0:x0 + 30].reshape(-1, 3)
    assert (tag == colour).all(axis=1).mean() > 0.5
    assert (~(tag == colour).all(axis=1)).sum() > 5


def test_tag_goes_inside_a_box_at_the_top_edge():
    image, masks, boxes = scene(1)
    masks[0] = False
    masks[0, 0:20, 10:50] = True
    out = overlay(image, masks, np.array([[10, 0, 50, 20]], np.float32), ["cup"])
    tag = out[0:12, 10:30].reshape(-1, 3)
    assert (tag == instance_colour(0)).all(axis=1).mean() > 0.5
    np.testing.assert_array_equal(out[25:], image[25:])


def test_scores_are_written():
    image, masks, boxes = scene(1)
    plain = overlay(image, masks, boxes, ["speaker"])
    scored = overlay(image, masks, boxes, ["speaker"], scores=[0.93])
    assert not np.array_equal(plain, scored)
    # Only the tag, above the box, differs.
    top = int(boxes[0, 1])
    np.testing.assert_array_equal(plain[top:], scored[top:])


def test_no_instances_returns_the_image():
    image, _, _ = scene()
    out = overlay(image, np.zeros((0, H, W), bool), np.zeros((0, 4)), [])
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("change,match", [
    (dict(masks=np.zeros((2, H, W + 1), bool)), "masks must be"),
    (dict(masks=np.zeros((1, H, W), bool)), "masks must be"),
    (dict(boxes=np.zeros((3, 4))), "boxes must be"),
    (dict(scores=[0.5]), "scores must have"),
    (dict(image=np.zeros((H, W, 3), np.float32)), "uint8"),
    (dict(image=np.zeros((H, W), np.uint8)), "uint8"),
])
def test_bad_shapes_are_refused(change, match):
    image, masks, boxes = scene()
    args = dict(image=image, masks=masks, boxes=boxes, scores=None)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        overlay(args["image"], args["masks"], args["boxes"], ["a", "b"], args["scores"])
