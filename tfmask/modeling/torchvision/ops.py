"""torchvision's detection arithmetic in TensorFlow: anchors, box coding, ROI align.

Boxes are ``[ymin, xmin, ymax, xmax]`` pixels of the padded model input
(``box_yxyx_px``, Model Garden's order); torchvision computes the same numbers
as ``[x1, y1, x2, y2]``. Every function works on dynamic shapes.

* :func:`cell_anchors` / :func:`grid_anchors` — ``AnchorGenerator``: per level
  one size (32, 64, ..., 512 px) and aspect ratios (0.5, 1, 2) as height/width,
  base boxes rounded to whole pixels, centred on ``(col * stride, row * stride)``
  (cell corners, not centres) with ``stride = padded_size // grid_size``
  (61 px, not 64, on a 13-cell P6 of an 800 px input: torchvision's integer division).
* :func:`decode` / :func:`clip` — ``BoxCoder.decode_single`` (weights 1 for the
  RPN, 10/10/5/5 for the box head; dw, dh clipped at log(1000/16)) and
  ``clip_boxes_to_image``.
* :func:`paste_masks` — ``paste_masks_in_image`` (mask probabilities onto the image).
* :func:`roi_align` — ``MultiScaleRoIAlign(["0".."3"], size, sampling_ratio=2)``
  with ``roi_align(aligned=False)``: level ``floor(4 + log2(sqrt(area) / 224)
  + 1e-6)`` clamped to 2-5, bins of ``max(roi_size * scale, 1) / size``, 2x2
  bilinear samples per bin averaged; a sample more than one pixel outside the map
  is 0, one within a pixel takes the edge value. Model Garden's
  ``MultilevelROIAligner`` samples once per bin at other positions, so this is
  tfmask's own: ``tf.image.crop_and_resize`` samples the 2s x 2s points on the
  map padded by one edge-replicated pixel (which gives torchvision's edge rules),
  then 2x2 average pooling.
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import numpy as np
import tensorflow as tf

ANCHOR_SIZES = {2: 32, 3: 64, 4: 128, 5: 256, 6: 512}
ASPECT_RATIOS = (0.5, 1.0, 2.0)
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # (wx, wy, ww, wh) of the box head's coder
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
ROI_LEVELS = (2, 3, 4, 5)


def cell_anchors(size: float, ratios: Sequence[float] = ASPECT_RATIOS) -> np.ndarray:
    """``AnchorGenerator.generate_anchors``: [A, 4] ``[y1, x1, y2, x2]`` around 0, float32."""
    ar = np.asarray(ratios, np.float32)
    h_ratios = np.sqrt(ar)
    w_ratios = np.float32(1.0) / h_ratios
    ws = (w_ratios[:, None] * np.float32([size])[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * np.float32([size])[None, :]).reshape(-1)
    base = np.round(np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2.0))  # x1 y1 x2 y2
    return base[:, [1, 0, 3, 2]].astype(np.float32)


def grid_anchors(grid_hw, padded_hw, size: float,
                 ratios: Sequence[float] = ASPECT_RATIOS) -> tf.Tensor:
    """Anchors of one level: [gh * gw * A, 4] ``box_yxyx_px``, location-major, anchor-minor.

    Args:
      grid_hw: the level's feature size ``(gh, gw)`` (ints or scalar int32 tensors).
      padded_hw: the padded input size; strides are ``padded // grid`` per axis.
    """
    gh, gw = tf.cast(grid_hw[0], tf.int32), tf.cast(grid_hw[1], tf.int32)
    sh = tf.cast(padded_hw[0], tf.int32) // gh
    sw = tf.cast(padded_hw[1], tf.int32) // gw
    ys = tf.cast(tf.range(gh) * sh, tf.float32)
    xs = tf.cast(tf.range(gw) * sw, tf.float32)
    yy, xx = tf.meshgrid(ys, xs, indexing="ij")
    shifts = tf.reshape(tf.stack([yy, xx, yy, xx], axis=-1), [-1, 1, 4])
    return tf.reshape(shifts + cell_anchors(size, ratios)[None], [-1, 4])


def multilevel_anchors(grids: Dict[str, Tuple], padded_hw) -> Dict[str, tf.Tensor]:
    """``{level: [gh, gw, A * 4]}`` anchors in Model Garden's layout, for its RPN labeler."""
    out = {}
    for level, (gh, gw) in grids.items():
        boxes = grid_anchors((gh, gw), padded_hw, ANCHOR_SIZES[int(level)])
        out[level] = tf.reshape(boxes, [gh, gw, 4 * len(ASPECT_RATIOS)])
    return out


def decode(deltas: tf.Tensor, boxes: tf.Tensor,
           weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> tf.Tensor:
    """``BoxCoder.decode_single``: ``(dy, dx, dh, dw)`` deltas on ``boxes`` -> boxes.

    Args:
      deltas: [..., 4] (dy, dx, dh, dw).
      boxes: [..., 4] reference ``box_yxyx_px`` (broadcast against ``deltas``).
      weights: torchvision's ``(wx, wy, ww, wh)``.
    """
    wx, wy, ww, wh = weights
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    cy = boxes[..., 0] + 0.5 * h
    cx = boxes[..., 1] + 0.5 * w
    dy, dx = deltas[..., 0] / wy, deltas[..., 1] / wx
    dh = tf.minimum(deltas[..., 2] / wh, BBOX_XFORM_CLIP)
    dw = tf.minimum(deltas[..., 3] / ww, BBOX_XFORM_CLIP)
    pcy, pcx = dy * h + cy, dx * w + cx
    ph, pw = tf.exp(dh) * h, tf.exp(dw) * w
    half_h, half_w = 0.5 * ph, 0.5 * pw
    return tf.stack([pcy - half_h, pcx - half_w, pcy + half_h, pcx + half_w], axis=-1)


def clip(boxes: tf.Tensor, image_hw: tf.Tensor) -> tf.Tensor:
    """``clip_boxes_to_image``: y in [0, h], x in [0, w]; ``image_hw`` broadcasts to [..., 2]."""
    hw = tf.cast(image_hw, boxes.dtype)
    limit = tf.concat([hw, hw], axis=-1)
    return tf.minimum(tf.maximum(boxes, 0.0), limit)


def roi_levels(boxes: tf.Tensor) -> tf.Tensor:
    """``LevelMapper``: FPN level (2-5) of each [..., 4] box, int32."""
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    s = tf.sqrt(area)
    lvl = tf.floor(4.0 + tf.math.log(s / 224.0) / math.log(2.0) + 1e-6)
    return tf.cast(tf.clip_by_value(lvl, ROI_LEVELS[0], ROI_LEVELS[-1]), tf.int32)


def _align_level(feature: tf.Tensor, boxes: tf.Tensor, batch_idx: tf.Tensor, level: int,
                 size: int, sampling: int) -> tf.Tensor:
    """ROI align of [n, 4] boxes on one [B, H, W, C] map -> [n, size, size, C]."""
    scale = 1.0 / (2 ** level)
    padded = tf.pad(feature, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    hw = tf.cast(tf.shape(feature)[1:3], tf.float32)
    n = size * sampling  # samples per side: 2 per bin
    corners = []
    for k in (0, 1):  # y, x
        start = boxes[:, k] * scale
        step = tf.maximum(boxes[:, k + 2] * scale - start, 1.0) / n
        first = start + 0.5 * step + 1.0  # +1: the replicated edge pixel
        # crop_and_resize maps normalized c to c * (padded_size - 1) = c * (size + 1) px.
        corners.append((first / (hw[k] + 1.0), (first + (n - 1) * step) / (hw[k] + 1.0)))
    crop_boxes = tf.stack([corners[0][0], corners[1][0], corners[0][1], corners[1][1]], axis=1)
    samples = tf.image.crop_and_resize(padded, crop_boxes, batch_idx, [n, n],
                                       method="bilinear", extrapolation_value=0.0)
    return tf.nn.avg_pool2d(samples, sampling, sampling, "VALID")


def roi_align(features: Dict[str, tf.Tensor], boxes: tf.Tensor, size: int,
              sampling: int = 2) -> tf.Tensor:
    """ROI features of [B, N, 4] ``box_yxyx_px`` boxes -> [B, N, size, size, C].

    ``features`` holds the FPN levels by name ("2".."6"); levels 2-5 are used.
    """
    shape = tf.shape(boxes)
    flat = tf.reshape(boxes, [-1, 4])
    batch_idx = tf.repeat(tf.range(shape[0]), shape[1])
    levels = roi_levels(flat)
    ids = tf.range(tf.shape(flat)[0])
    parts, part_ids = [], []
    for level in ROI_LEVELS:
        pick = tf.where(tf.equal(levels, level))[:, 0]
        part_ids.append(tf.gather(ids, pick))
        parts.append(_align_level(features[str(level)], tf.gather(flat, pick),
                                  tf.gather(batch_idx, pick), level, size, sampling))
    channels = features[str(ROI_LEVELS[0])].shape[-1]
    out = tf.dynamic_stitch(part_ids, parts)
    return tf.reshape(out, tf.concat([shape[:2], [size, size, channels]], axis=0))


def _paste_weights(start: tf.Tensor, length: tf.Tensor, n_out, cells: int) -> tf.Tensor:
    """[K, n_out, cells] bilinear weights of one axis of ``paste_mask_in_image``.

    Image pixel ``p`` holds resized-mask pixel ``u = p - start`` when ``0 <= u < length``;
    ``F.interpolate(..., align_corners=False)`` samples the ``cells``-long padded mask at
    ``max((u + 0.5) * cells / length - 0.5, 0)``.
    """
    u = tf.cast(tf.range(n_out), tf.float32)[None, :] - tf.cast(start, tf.float32)[:, None]
    length_f = tf.cast(length, tf.float32)[:, None]
    src = tf.maximum((u + 0.5) * (cells / length_f) - 0.5, 0.0)
    low = tf.floor(src)
    frac = src - low
    low_i = tf.cast(low, tf.int32)
    high_i = tf.minimum(low_i + 1, cells - 1)
    inside = tf.cast((u >= 0) & (u < length_f), tf.float32)
    w = (tf.one_hot(tf.minimum(low_i, cells - 1), cells) * (1.0 - frac)[..., None]
         + tf.one_hot(high_i, cells) * frac[..., None])
    return w * inside[..., None]


def paste_masks(masks: tf.Tensor, boxes: tf.Tensor, size_hw) -> tf.Tensor:
    """``paste_masks_in_image(masks, boxes, size, padding=1)``: [K, m, m] -> [K, H, W].

    Args:
      masks: [K, m, m] box-relative probabilities.
      boxes: [K, 4] ``box_yxyx_px`` of the input image.
      size_hw: the image size.

    torchvision pads the mask with a row of zeros on each side, widens the box
    by ``(m + 2) / m`` about its centre, truncates it to whole pixels
    ``[x1, x2]`` (both inclusive) and resizes the padded mask to that span.
    """
    masks = tf.convert_to_tensor(masks, tf.float32)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    m = masks.shape[-1]
    padded = tf.pad(masks, [[0, 0], [1, 1], [1, 1]])
    scale = (m + 2.0) / m
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale
    centre = (boxes[:, 2:] + boxes[:, :2]) * 0.5
    first = tf.cast(centre - half, tf.int32)  # .to(torch.int64) truncates toward zero
    last = tf.cast(centre + half, tf.int32)
    length = tf.maximum(last - first + 1, 1)
    h, w = size_hw
    wy = _paste_weights(first[:, 0], length[:, 0], h, m + 2)  # [K, H, m + 2]
    wx = _paste_weights(first[:, 1], length[:, 1], w, m + 2)  # [K, W, m + 2]
    return tf.matmul(tf.matmul(wy, padded), wx, transpose_b=True)
