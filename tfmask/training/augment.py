"""Training augmentations Model Garden's Mask R-CNN parser lacks.

Model Garden's ``maskrcnn_input.Parser`` flips and scale-jitters. This module
adds, on the dict that ``TfExampleDecoder(include_mask=True)`` returns:

* ``random_rotation90`` (OD API semantics): with ``rotation90_probability``
  rotate image, masks and boxes 90 degrees counter-clockwise; height and
  width swap.
* ``random_rotation`` (tfmask extension): with ``rotation_probability``
  rotate by an angle drawn uniformly from ``[-rotation_max_degrees,
  +rotation_max_degrees]`` about the image centre, keeping the canvas size.
* Colour jitter with the OD API preprocessor's semantics (brightness,
  contrast, saturation, hue, ``random_distort_color``), image only.

:func:`augment_decoded` applies them in this fixed order: rotation90,
rotation, brightness, contrast, saturation, hue, distort_color.
:class:`AugmentingParser` is the Model Garden parser that calls it before its
own training preprocessing; evaluation parsing is untouched. The rotations
themselves are :mod:`tfmask.training.rotation`.

Box convention at every boundary here: normalized ``[ymin, xmin, ymax, xmax]``
in pixel *edges*; a mask covering pixel columns ``x0..x1-1`` has
``xmin = x0 / W`` and ``xmax = x1 / W`` (rows likewise).

Run its tests with ``python -m pytest tests/training/test_augment.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf
from official.modeling import hyperparams
from official.vision.dataloaders import maskrcnn_input

from tfmask.training.rotation import (AREA, ATTRIBUTES, BOXES, CLASSES, IMAGE, IS_CROWD, MASKS,
                                     MASKS_PNG, SIZE_KEYS, rotate90_decoded, rotate_decoded,
                                     to_pixel_dtype)

# Offsets added to the user's seed so that every random draw has its own op seed
# (two stateful ops with the same op seed would draw the same numbers).
_SALT = {"rotation90": 1, "rotation": 2, "angle": 3, "brightness": 4, "contrast": 5,
         "saturation": 6, "hue": 7, "distort": 10}


@dataclasses.dataclass
class Augmentation(hyperparams.Config):
    """Augmentation options; every default means "off".

    Attributes:
      rotation90_probability: chance per image of a 90 degree CCW rotation.
      rotation_max_degrees: largest rotation angle, in degrees, [0, 180].
      rotation_probability: chance per image of a rotation by a uniform angle
        in ``[-rotation_max_degrees, rotation_max_degrees]``.
      brightness_max_delta: OD API ``random_adjust_brightness.max_delta``
        (added to the image seen in [0, 1]).
      contrast_min, contrast_max: OD API ``random_adjust_contrast`` factor range.
      saturation_min, saturation_max: OD API ``random_adjust_saturation`` range.
      hue_max_delta: OD API ``random_adjust_hue.max_delta``, at most 0.5.
      distort_color_ordering: OD API ``random_distort_color.color_ordering``
        (0 or 1); -1 turns it off.
    """

    rotation90_probability: float = 0.0
    rotation_max_degrees: float = 0.0
    rotation_probability: float = 0.0
    brightness_max_delta: float = 0.0
    contrast_min: float = 1.0
    contrast_max: float = 1.0
    saturation_min: float = 1.0
    saturation_max: float = 1.0
    hue_max_delta: float = 0.0
    distort_color_ordering: int = -1

    @property
    def rotates(self) -> bool:
        """Whether rotation by an angle can happen."""
        return self.rotation_probability > 0 and self.rotation_max_degrees > 0

    @property
    def is_geometric(self) -> bool:
        """Whether image size, boxes or masks can change."""
        return self.rotation90_probability > 0 or self.rotates

    @property
    def has_colour(self) -> bool:
        """Whether any colour step is configured."""
        return bool(_colour_steps(self)) or self.distort_color_ordering != -1

    @property
    def is_identity(self) -> bool:
        """Whether :func:`augment_decoded` returns its input unchanged."""
        return not self.is_geometric and not self.has_colour

    def validate(self) -> None:
        """Raises ValueError naming the first out-of-range option."""
        super().validate()
        checks = [
            ("rotation90_probability", 0.0 <= self.rotation90_probability <= 1.0, "in [0, 1]"),
            ("rotation_probability", 0.0 <= self.rotation_probability <= 1.0, "in [0, 1]"),
            ("rotation_max_degrees", 0.0 <= self.rotation_max_degrees <= 180.0,
             "in [0, 180]"),
            ("brightness_max_delta", self.brightness_max_delta >= 0.0, ">= 0"),
            ("contrast_min", self.contrast_min >= 0.0, ">= 0"),
            ("contrast_max", self.contrast_max >= self.contrast_min,
             f">= contrast_min ({self.contrast_min})"),
            ("saturation_min", self.saturation_min >= 0.0, ">= 0"),
            ("saturation_max", self.saturation_max >= self.saturation_min,
             f">= saturation_min ({self.saturation_min})"),
            ("hue_max_delta", 0.0 <= self.hue_max_delta <= 0.5, "in [0, 0.5]"),
            ("distort_color_ordering", self.distort_color_ordering in (-1, 0, 1),
             "one of -1 (off), 0, 1"),
        ]
        for name, ok, expected in checks:
            if not ok:  # NaN fails every comparison, so it lands here too
                raise ValueError(f"augmentation option {name} must be {expected}, "
                                 f"got {getattr(self, name)!r}")


def augment_decoded(data: Dict[str, Any], cfg: Augmentation,
                    seed: Optional[int] = None) -> Dict[str, Any]:
    """Applies ``cfg``'s augmentations to one decoded example.

    Order: rotation90, rotation by an angle, then colour: brightness,
    contrast, saturation, hue, distort_color. Each step draws its own random
    numbers per call (per image under ``tf.data.Dataset.map``): a rotation
    applies when one uniform [0, 1) draw is below its probability (no draw
    when the probability is 1), and the angle is a second draw; colour steps
    always apply when configured, as in the OD API, each with its delta or
    factor drawn once per image. Fills of rotated-in areas: see
    :func:`rotate_decoded`. Works in graph mode; N may be 0.

    Args:
      data: ``TfExampleDecoder(include_mask=True)`` output: ``image`` uint8
        [H, W, 3]; ``groundtruth_boxes`` float32 [N, 4] normalized pixel-edge
        yxyx; ``groundtruth_instance_masks`` float32 [N, H, W] 0/1;
        ``groundtruth_classes`` int64 [N]; ``groundtruth_is_crowd`` bool [N];
        ``groundtruth_area`` float32 [N]; ``height``/``width`` int64; other
        keys pass through.
      cfg: the options; validated here.
      seed: op-level seed base for the stateful random ops (None: unseeded).
        Under ``Dataset.map`` a seed makes the sequence of draws
        reproducible, not every image's draw equal.

    Returns:
      A new dict with the same keys (minus ``groundtruth_instance_masks_png``
      when a geometric step is configured). ``image`` keeps its dtype; after
      rotation90 it is [W, H, 3] and ``height``/``width`` are swapped.
    """
    cfg.validate()
    out = dict(data)
    if cfg.is_geometric:
        out.pop(MASKS_PNG, None)
    if cfg.rotation90_probability > 0:
        out = _maybe(out, cfg.rotation90_probability, rotate90_decoded,
                     _seed(seed, "rotation90"))
    if cfg.rotates:
        max_deg = float(cfg.rotation_max_degrees)

        def rotate(sub):
            angle = tf.random.uniform([], -max_deg, max_deg, seed=_seed(seed, "angle"))
            return rotate_decoded(sub, angle)

        out = _maybe(out, cfg.rotation_probability, rotate, _seed(seed, "rotation"))
    if cfg.has_colour:
        image01 = _colour(tf.cast(out[IMAGE], tf.float32) / 255.0, cfg, seed)
        out[IMAGE] = to_pixel_dtype(image01 * 255.0, data[IMAGE].dtype)
    return out


class AugmentingParser(maskrcnn_input.Parser):
    """Model Garden's Mask R-CNN parser with :func:`augment_decoded` first.

    Training examples are augmented before the parser's own flips, scale
    jitter and target assignment; evaluation parsing is Model Garden's.

    Args:
      *args, **kwargs: ``maskrcnn_input.Parser`` arguments.
      augmentation: the options (None: no extra augmentation).
      augmentation_seed: op-level seed base for the augmentation draws.
    """

    def __init__(self, *args, augmentation: Optional[Augmentation] = None,
                 augmentation_seed: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if augmentation is not None:
            augmentation.validate()
            if augmentation.rotates and not self._include_mask:
                raise ValueError("rotation_max_degrees/rotation_probability need "
                                 "include_mask=True (boxes are recomputed from masks)")
        self._augmentation = augmentation
        self._augmentation_seed = augmentation_seed

    def _parse_train_data(self, data):
        if self._augmentation is not None and not self._augmentation.is_identity:
            data = augment_decoded(data, self._augmentation, seed=self._augmentation_seed)
        return super()._parse_train_data(data)


# --- helpers ---------------------------------------------------------------

_GEOMETRIC_KEYS = (IMAGE, BOXES, MASKS, CLASSES, IS_CROWD, AREA, ATTRIBUTES) + SIZE_KEYS


def _seed(seed: Optional[int], step: str) -> Optional[int]:
    return None if seed is None else seed + _SALT[step]


def _maybe(data, probability, fn, seed):
    """``fn(data)`` with ``probability``, drawn per call; graph-mode safe."""
    sub = {k: data[k] for k in _GEOMETRIC_KEYS if k in data}
    rest = {k: v for k, v in data.items() if k not in sub}
    if probability >= 1.0:
        new = fn(sub)
    else:
        apply = tf.random.uniform([], seed=seed) < probability
        new = tf.cond(apply, lambda: fn(sub), lambda: dict(sub))
    return {**rest, **new}


# --- colour (images in [0, 1], OD API preprocessor semantics) ----------------

_ADJUST = {
    "brightness": lambda image01, delta: image01 + delta,
    "contrast": tf.image.adjust_contrast,
    "saturation": tf.image.adjust_saturation,
    "hue": tf.image.adjust_hue,
}
# OD API distort_color: the jitters of each color_ordering, (kind, low, high).
_DISTORT_STEPS = {
    0: (("brightness", -32.0 / 255.0, 32.0 / 255.0), ("saturation", 0.5, 1.5),
        ("hue", -0.2, 0.2), ("contrast", 0.5, 1.5)),
    1: (("brightness", -32.0 / 255.0, 32.0 / 255.0), ("contrast", 0.5, 1.5),
        ("saturation", 0.5, 1.5), ("hue", -0.2, 0.2)),
}


def _colour_steps(cfg: Augmentation) -> List[Tuple[str, float, float]]:
    """The configured random_adjust_* steps, in order, as (kind, low, high)."""
    steps = []
    if cfg.brightness_max_delta > 0:
        steps.append(("brightness", -cfg.brightness_max_delta, cfg.brightness_max_delta))
    if (cfg.contrast_min, cfg.contrast_max) != (1.0, 1.0):
        steps.append(("contrast", cfg.contrast_min, cfg.contrast_max))
    if (cfg.saturation_min, cfg.saturation_max) != (1.0, 1.0):
        steps.append(("saturation", cfg.saturation_min, cfg.saturation_max))
    if cfg.hue_max_delta > 0:
        steps.append(("hue", -cfg.hue_max_delta, cfg.hue_max_delta))
    return [(kind, float(low), float(high)) for kind, low, high in steps]


def _jitter(image01, kind, low, high, seed):
    """One jitter with its value drawn uniformly from [low, high] for the image."""
    return _ADJUST[kind](image01, tf.random.uniform([], low, high, seed=seed))


def _colour(image01: tf.Tensor, cfg: Augmentation, seed: Optional[int]) -> tf.Tensor:
    """random_adjust_* steps (each clipped to [0, 1]), then distort_color."""
    for kind, low, high in _colour_steps(cfg):
        image01 = tf.clip_by_value(_jitter(image01, kind, low, high, _seed(seed, kind)),
                                   0.0, 1.0)
    if cfg.distort_color_ordering in _DISTORT_STEPS:
        base = _seed(seed, "distort")
        for i, (kind, low, high) in enumerate(_DISTORT_STEPS[cfg.distort_color_ordering]):
            image01 = _jitter(image01, kind, low, high, None if base is None else base + i)
        image01 = tf.clip_by_value(image01, 0.0, 1.0)  # distort_color clips once, at the end
    return image01
