"""The Predictor pastes each mask inside its box only: same pixels as a whole-image paste."""

from __future__ import annotations

import numpy as np

from tfmask.export.serving import MASK_THRESHOLD, paste_masks
from tfmask.inference.predictor import paste_in_boxes


def test_pasting_inside_the_boxes_equals_pasting_on_the_whole_image():
    rng = np.random.default_rng(4)
    h, w = 90, 130
    masks = rng.random((7, 28, 28)).astype(np.float32)
    boxes = np.float32([[10.3, 20.7, 60.2, 80.9],     # inside
                        [-15.0, -8.0, 30.5, 40.0],    # past the top-left corner
                        [70.0, 100.0, 120.0, 170.0],  # past the bottom-right corner
                        [5.0, 5.0, 5.0, 9.0],         # degenerate: no rows
                        [0.0, 0.0, float(h), float(w)],
                        [44.5, 60.5, 45.5, 61.5],     # one pixel
                        [95.0, 10.0, 120.0, 50.0]])   # outside the image
    want = paste_masks(masks, boxes, (h, w)).numpy() > MASK_THRESHOLD
    got = paste_in_boxes(masks, boxes, (h, w))
    assert got.shape == (7, h, w) and got.dtype == bool
    mismatch = got != want
    assert mismatch.sum() <= 2, np.argwhere(mismatch)  # float rounding at a 0.5 crossing
    assert got[0].any() and got[4].any() and not got[3].any() and not got[6].any()
    assert paste_in_boxes(masks[:0], boxes[:0], (h, w)).shape == (0, h, w)
