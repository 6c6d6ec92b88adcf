"""torchvision's ``GeneralizedRCNNTransform`` for tfmask's training parser and export.

* :func:`resize` — normalize with ImageNet mean/std, scale by
  ``min(min_size / shorter side, max_size / longer side)`` (float64, as Python
  computes it), output size ``floor(side * scale)``, bilinear with half-pixel
  centres and no antialiasing (``F.interpolate(..., recompute_scale_factor=True,
  align_corners=False)``), zero padding at the bottom and right.
* :class:`TorchvisionParser` — Model Garden's Mask R-CNN parser with that
  resize and torchvision's anchors (:func:`.ops.multilevel_anchors`) for the RPN
  targets; flips, scale jitter (``random_image_scale`` scales both sizes; a
  larger result is cropped at a random offset) and tfmask's augmentations as
  for the other models.
* :class:`TorchvisionPreprocessing` — the export's preprocessing: that resize
  into the config's canvas, then (:meth:`~TorchvisionPreprocessing.batch`) the
  batch cut to torchvision's padded size, the largest image rounded up to 32 px,
  so the network sees the input torchvision's ``batch_images`` gives it; masks
  pasted as torchvision pastes them (:func:`.ops.paste_masks`), and always
  exported pasted (``detection_masks_reframed``).

``image_info`` follows Model Garden: rows input ``[h, w]``, scaled ``[h, w]``,
scale ``[y, x]`` (scaled / input), offset ``[y, x]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import tensorflow as tf
from official.vision.ops import anchor, box_ops, preprocess_ops

from tfmask.export.serving import Preprocessing
from tfmask.modeling.torchvision import ops
from tfmask.training.augment import AugmentingParser, augment_decoded

SIZE_DIVISIBLE = 32  # torchvision's batch_images


def resize(image: tf.Tensor, min_size: int, max_size: int, canvas_hw: Tuple[int, int],
           jitter: float = 1.0, random_offset: bool = False, seed=None):
    """Normalized [H, W, 3] float32 -> (canvas [ch, cw, 3], image_info [4, 2]).

    Args:
      jitter: scales ``min_size`` and ``max_size`` (training scale jitter).
      random_offset: when the scaled image is larger than the canvas, crop it at
        a random offset (else at 0, 0).
    """
    hw = tf.shape(image)[:2]
    hw64 = tf.cast(hw, tf.float64)
    jitter = tf.cast(jitter, tf.float64)
    scale = tf.minimum(jitter * min_size / tf.reduce_min(hw64),
                       jitter * max_size / tf.reduce_max(hw64))
    scaled = tf.maximum(tf.cast(tf.floor(hw64 * scale), tf.int32), 1)
    image = tf.image.resize(image, scaled, method="bilinear", antialias=False)
    canvas = tf.constant(canvas_hw, tf.int32)
    spare = tf.maximum(scaled - canvas, 0)
    offset = (tf.cast(tf.cast(spare, tf.float32) * tf.random.uniform([2], seed=seed), tf.int32)
              if random_offset else tf.zeros([2], tf.int32))
    kept = tf.minimum(scaled, canvas)
    image = image[offset[0]:offset[0] + kept[0], offset[1]:offset[1] + kept[1]]
    image = tf.image.pad_to_bounding_box(image, 0, 0, canvas_hw[0], canvas_hw[1])
    image_scale = tf.cast(scaled, tf.float32) / tf.cast(hw, tf.float32)
    info = tf.stack([tf.cast(hw, tf.float32), tf.cast(kept, tf.float32), image_scale,
                     tf.cast(offset, tf.float32)])
    return image, info


def canvas_anchors(canvas_hw: Tuple[int, int]):
    """torchvision's anchors of a canvas (a multiple of 32) in Model Garden's layout."""
    grids = {}
    for level in range(2, 6):
        grids[str(level)] = (canvas_hw[0] >> level, canvas_hw[1] >> level)
    p5 = grids["5"]
    grids["6"] = ((p5[0] + 1) // 2, (p5[1] + 1) // 2)  # LastLevelMaxPool: P5[::2, ::2]
    return ops.multilevel_anchors(grids, canvas_hw)


class TorchvisionParser(AugmentingParser):
    """Model Garden's Mask R-CNN parser with torchvision's resize and anchors.

    Args:
      min_size, max_size: the resize (``TorchvisionResNet50FPN``).
      **kwargs: ``AugmentingParser`` arguments (by name, as the task passes them).
    """

    def __init__(self, *, min_size: int, max_size: int, **kwargs):
        super().__init__(**kwargs)
        self.min_size, self.max_size = min_size, max_size
        out = [int(v) for v in kwargs["output_size"]]
        if out[0] % SIZE_DIVISIBLE or out[1] % SIZE_DIVISIBLE:
            raise ValueError(f"input_size {out} must be a multiple of {SIZE_DIVISIBLE}")
        self.canvas_hw = (out[0], out[1])
        self.options = kwargs

    def _labeler(self):
        o = self.options
        return anchor.RpnAnchorLabeler(o["rpn_match_threshold"], o["rpn_unmatched_threshold"],
                                       o["rpn_batch_size_per_im"], o["rpn_fg_fraction"])

    def _parse_train_data(self, data):
        o = self.options
        aug = o.get("augmentation")
        if aug is not None and not aug.is_identity:
            data = augment_decoded(data, aug, seed=o.get("augmentation_seed"))
        classes, boxes = data["groundtruth_classes"], data["groundtruth_boxes"]
        masks = data["groundtruth_instance_masks"]
        if o.get("skip_crowd_during_training", True):
            keep = tf.where(tf.logical_not(tf.cast(data["groundtruth_is_crowd"], tf.bool)))[:, 0]
            classes, boxes, masks = (tf.gather(t, keep) for t in (classes, boxes, masks))
        image = preprocess_ops.normalize_image(data["image"])
        image_hw = tf.shape(image)[:2]
        image, boxes, masks = preprocess_ops.random_horizontal_flip(
            image, boxes, masks=masks, prob=0.5 if o.get("aug_rand_hflip") else 0.0)
        image, boxes, masks = preprocess_ops.random_vertical_flip(
            image, boxes, masks=masks, prob=0.5 if o.get("aug_rand_vflip") else 0.0)
        lo, hi = o.get("aug_scale_min", 1.0), o.get("aug_scale_max", 1.0)
        jitter = tf.random.uniform([], lo, hi) if (lo, hi) != (1.0, 1.0) else 1.0
        image, info = resize(image, self.min_size, self.max_size, self.canvas_hw, jitter,
                             random_offset=True)
        boxes = box_ops.denormalize_boxes(boxes, image_hw)
        boxes = preprocess_ops.resize_and_crop_boxes(boxes, info[2], info[1], info[3])
        keep = box_ops.get_non_empty_box_indices(boxes)
        boxes, classes, masks = (tf.gather(t, keep) for t in (boxes, classes, masks))
        # Mask targets: each box's region of the input-resolution mask (Model Garden's way).
        source = (boxes + tf.tile(info[3][None], [1, 2])) / tf.tile(info[2][None], [1, 2])
        source = box_ops.normalize_boxes(source, image_hw)
        crop = o["mask_crop_size"]
        masks = tf.image.crop_and_resize(masks[..., None], source, tf.range(tf.shape(masks)[0]),
                                         [crop, crop], method="bilinear")[..., 0]
        anchors = canvas_anchors(self.canvas_hw)
        score_targets, box_targets = self._labeler().label_anchors(
            anchors, boxes, tf.cast(classes[:, None], tf.float32))
        n = o["max_num_instances"]
        pad = lambda t: preprocess_ops.clip_or_pad_to_fixed_size(t, n, -1)  # noqa: E731
        labels = {"anchor_boxes": anchors, "image_info": info,
                  "rpn_score_targets": score_targets, "rpn_box_targets": box_targets,
                  "gt_boxes": pad(boxes), "gt_classes": pad(classes),
                  "gt_outer_boxes": pad(boxes), "gt_masks": pad(masks)}
        return tf.cast(image, o.get("dtype", "float32")), labels

    def _parse_eval_data(self, data):
        _, labels = super()._parse_eval_data(data)  # ground truth as Model Garden builds it
        image = preprocess_ops.normalize_image(data["image"])
        image, labels["image_info"] = resize(image, self.min_size, self.max_size,
                                             self.canvas_hw)
        labels["anchor_boxes"] = canvas_anchors(self.canvas_hw)
        return tf.cast(image, self.options.get("dtype", "float32")), labels


@dataclass(frozen=True)
class TorchvisionPreprocessing(Preprocessing):
    """The export's preprocessing for ``torchvision_resnet50_fpn`` models."""

    min_size: int = 800
    max_size: int = 1333
    # torchvision pastes masks its own way (.ops.paste_masks): exports carry them pasted.
    always_full_image_masks = True

    @classmethod
    def from_model_config(cls, cfg) -> "TorchvisionPreprocessing":
        tv = cfg.backbone.get()
        hw = tuple(int(v) for v in cfg.input_size[:2])
        return cls(hw, hw, 2, 6, 1, tuple(ops.ASPECT_RATIOS), 8.0, tv.min_size, tv.max_size)

    def image(self, image: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """[H, W, 3] RGB 0..255 -> (canvas, image_info), torchvision's normalize and resize."""
        image = preprocess_ops.normalize_image(
            tf.cast(image, tf.float32), offset=preprocess_ops.MEAN_RGB,
            scale=preprocess_ops.STDDEV_RGB)
        return resize(image, self.min_size, self.max_size, self.padded_hw)

    def paste_masks(self, masks: tf.Tensor, boxes_yxyx_px: tf.Tensor, size_hw,
                    threshold: Optional[float] = None) -> tf.Tensor:
        """torchvision's ``paste_masks_in_image`` (:func:`.ops.paste_masks`); bool
        ``probabilities > threshold`` with ``threshold``."""
        probs = ops.paste_masks(masks, boxes_yxyx_px, size_hw)
        return probs if threshold is None else probs > threshold

    def batch(self, images: tf.Tensor, info: tf.Tensor) -> tf.Tensor:
        """Cuts [B, ch, cw, 3] canvases to the largest image rounded up to 32 px."""
        biggest = tf.cast(tf.reduce_max(info[:, 1, :], axis=0), tf.int32)
        hw = (biggest + SIZE_DIVISIBLE - 1) // SIZE_DIVISIBLE * SIZE_DIVISIBLE
        return images[:, :hw[0], :hw[1], :]
