"""Rotations of decoded examples: image, masks and boxes turned together.

The geometric steps of :mod:`tfmask.training.augment`, on the dict that
``TfExampleDecoder(include_mask=True)`` returns:

* :func:`rotate90_decoded`: 90 degrees counter-clockwise (OD API
  ``random_rotation90``); height and width swap.
* :func:`rotate_decoded`: by any angle about the image centre, keeping the
  canvas size (tfmask's ``random_rotation``); boxes are recomputed from the
  rotated masks (:func:`boxes_from_masks`).

Box convention at every boundary here: normalized ``[ymin, xmin, ymax, xmax]``
in pixel *edges*; a mask covering pixel columns ``x0..x1-1`` has
``xmin = x0 / W`` and ``xmax = x1 / W`` (rows likewise).

Run its tests with ``python -m pytest tests/training/test_augment.py``.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import tensorflow as tf
from official.vision.ops import preprocess_ops

IMAGE = "image"
BOXES = "groundtruth_boxes"
MASKS = "groundtruth_instance_masks"
# Per-instance keys that are gathered when rotation drops instances.
CLASSES = "groundtruth_classes"
IS_CROWD = "groundtruth_is_crowd"
AREA = "groundtruth_area"
ATTRIBUTES = "groundtruth_attributes"
# The encoded instance PNGs no longer match the masks once they are rotated.
MASKS_PNG = "groundtruth_instance_masks_png"
SIZE_KEYS = ("height", "width")

# Rotated-in image corners get Model Garden's normalization mean, so that after
# the parser's normalize_image they are 0, like the parser's own padding.
FILL_PIXEL_VALUE_RGB = tuple(float(v) for v in preprocess_ops.MEAN_RGB)


def boxes_from_masks(masks: tf.Tensor) -> tf.Tensor:
    """Tight boxes around instance masks.

    Args:
      masks: [N, H, W] masks, bool or numeric (a pixel is "on" when > 0).

    Returns:
      [N, 4] float32 normalized pixel-edge ``[ymin, xmin, ymax, xmax]``; an
      empty mask gives ``[0, 0, 0, 0]``.
    """
    masks = tf.convert_to_tensor(masks)
    on = masks if masks.dtype == tf.bool else masks > 0
    size = tf.shape(on)
    rows = tf.cast(tf.reduce_any(on, axis=2), tf.int32)  # [N, H]
    cols = tf.cast(tf.reduce_any(on, axis=1), tf.int32)  # [N, W]

    def edges(hits, length):
        first = tf.argmax(hits, axis=1, output_type=tf.int32)
        end = length - tf.argmax(tf.reverse(hits, [1]), axis=1, output_type=tf.int32)
        length = tf.cast(length, tf.float32)
        return tf.cast(first, tf.float32) / length, tf.cast(end, tf.float32) / length

    ymin, ymax = edges(rows, size[1])
    xmin, xmax = edges(cols, size[2])
    boxes = tf.stack([ymin, xmin, ymax, xmax], axis=1)
    nonempty = tf.reduce_any(rows > 0, axis=1, keepdims=True)
    return tf.where(nonempty, boxes, tf.zeros_like(boxes))


def rotate90_decoded(data: Dict[str, Any]) -> Dict[str, Any]:
    """Rotates a decoded example 90 degrees counter-clockwise.

    Image and masks go through ``tf.image.rot90(k=1)``; boxes are mapped
    analytically, ``[ymin, xmin, ymax, xmax] -> [1 - xmax, ymin, 1 - xmin,
    ymax]``; ``height`` and ``width`` swap. Masks are optional.

    Args:
      data: a decoded example (see :func:`augment_decoded`).

    Returns:
      A new dict; keys not listed above are passed through.
    """
    out = dict(data)
    out[IMAGE] = tf.image.rot90(data[IMAGE], k=1)
    ymin, xmin, ymax, xmax = tf.unstack(data[BOXES], num=4, axis=-1)
    out[BOXES] = tf.stack([1.0 - xmax, ymin, 1.0 - xmin, ymax], axis=-1)
    if MASKS in data:
        out[MASKS] = tf.image.rot90(data[MASKS][..., None], k=1)[..., 0]
    _set_size(out)
    return out


def rotate_decoded(data: Dict[str, Any], angle_degrees) -> Dict[str, Any]:
    """Rotates a decoded example about the image centre by ``angle_degrees``.

    Positive angles turn the content counter-clockwise (as seen on screen, y
    down), like :func:`rotate90_decoded`; the canvas keeps its size. The image
    is sampled bilinearly and its uncovered corners are filled with
    :data:`FILL_PIXEL_VALUE_RGB` (Model Garden's normalization mean). Masks
    are sampled nearest-neighbour, so they stay 0/1, with 0 outside. Boxes
    become the tight pixel-edge boxes of the rotated masks (so they are
    recomputed even for tiny angles), instances whose mask left the frame
    are dropped together with their classes, is_crowd, area and attributes,
    and ``groundtruth_area`` becomes the rotated masks' pixel counts.

    Args:
      data: a decoded example with masks (see :func:`augment_decoded`).
      angle_degrees: scalar angle, a float or a float32 tensor.

    Returns:
      A new dict; ``groundtruth_instance_masks_png`` is removed (stale).
    """
    if MASKS not in data:
        raise ValueError("rotation by an angle needs instance masks: decode with "
                         "include_mask=True")
    image = data[IMAGE]
    size_hw = tf.shape(image)[:2]
    transform = _rotation_transform(angle_degrees, size_hw)

    def warp(pixels, interpolation):
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=pixels, transforms=transform, output_shape=size_hw,
            fill_value=0.0, interpolation=interpolation, fill_mode="CONSTANT")

    # Warping (image - fill) with fill 0 gives a per-channel fill colour.
    fill = tf.constant(FILL_PIXEL_VALUE_RGB, tf.float32)
    pixels = warp(tf.cast(image, tf.float32)[None] - fill, "BILINEAR")[0] + fill
    masks = tf.cast(data[MASKS], tf.float32)
    masks = warp(masks[..., None], "NEAREST")[..., 0]
    masks = tf.cast(masks > 0.5, data[MASKS].dtype)

    keep = tf.where(tf.reduce_any(masks > 0, axis=[1, 2]))[:, 0]
    out = {k: v for k, v in data.items() if k != MASKS_PNG}
    out[IMAGE] = to_pixel_dtype(pixels, image.dtype)
    out[MASKS] = tf.gather(masks, keep)
    out[BOXES] = boxes_from_masks(out[MASKS])
    for key in (CLASSES, IS_CROWD):
        if key in data:
            out[key] = tf.gather(data[key], keep)
    if ATTRIBUTES in data:
        out[ATTRIBUTES] = {k: tf.gather(v, keep) for k, v in data[ATTRIBUTES].items()}
    if AREA in data:
        area = tf.reduce_sum(tf.cast(out[MASKS], tf.float32), axis=[1, 2])
        out[AREA] = tf.cast(area, data[AREA].dtype)
    return out


def _set_size(data) -> None:
    size_hw = tf.shape(data[IMAGE])[:2]
    for i, key in enumerate(SIZE_KEYS):
        if key in data:
            data[key] = tf.cast(size_hw[i], tf.convert_to_tensor(data[key]).dtype)


def _rotation_transform(angle_degrees, size_hw) -> tf.Tensor:
    """[1, 8] ImageProjectiveTransform that rotates content CCW about the centre.

    The transform maps an output pixel (x, y) (pixel centres at integers) to
    the input point it samples: the output pixel rotated by -angle on screen.
    """
    theta = tf.cast(angle_degrees, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    cy = (tf.cast(size_hw[0], tf.float32) - 1.0) / 2.0
    cx = (tf.cast(size_hw[1], tf.float32) - 1.0) / 2.0
    # x_in = cx + cos*(x - cx) - sin*(y - cy); y_in = cy + sin*(x - cx) + cos*(y - cy)
    zero = tf.zeros_like(cos)
    return tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                     sin, cos, cy - sin * cx - cos * cy, zero, zero])[None]


def to_pixel_dtype(pixels: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Float pixel values in [0, 255] scale -> ``dtype``, rounded and clipped."""
    if dtype.is_floating:
        return tf.cast(pixels, dtype)
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), dtype)
