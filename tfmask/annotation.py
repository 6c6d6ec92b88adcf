"""The annotation vocabulary: what every stage says about the objects in an image.

* :class:`Instances` -- ground truth: a source reader (:mod:`tfmask.data.sources`)
  turns one input image and its labels into a :class:`Sample` holding them,
  and :mod:`tfmask.data.records.writer` turns the Sample into a
  ``tf.train.Example``; :class:`~tfmask.data.records.reader.DecodedExample`
  gives them back from a record (``.instances``).
* :class:`Detections` -- predictions: the same fields plus ``scores``
  (:class:`tfmask.inference.predictor.Predictor` returns them).

Both use the same field names and dtypes and validate themselves when built
with the same checks (:func:`check_instance_arrays`), so a bad instance never
reaches a record or a caller. Class ids are label-map ids (>= 1, as in the
OD API; 0 is the background), and ``class_names`` are the label map's plain
names for them (:meth:`tfmask.config.label_map.LabelMap.names_of`).

Coordinate convention: boxes are ``boxes_xyxy_px``, ``[xmin, ymin, xmax,
ymax]`` in pixel *edges* (float), ``0 <= xmin < xmax <= width``; a box
covering pixel columns 2..4 is ``xmin=2, xmax=5``. Conversions to the other
layouts are in :mod:`tfmask.boxes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class EncodedImage:
    """An image file as it goes into ``image/encoded``.

    Attributes:
      data: the encoded bytes (the original file unless it had to be re-encoded,
        e.g. to apply EXIF orientation).
      format: ``"jpeg"`` or ``"png"``.
      size_hw: (height, width) in pixels of the image as decoded from ``data``.
      filename: the file name stored in ``image/filename``.
    """

    data: bytes
    format: str
    size_hw: Tuple[int, int]
    filename: str

    def __post_init__(self):
        if self.format not in ("jpeg", "png"):
            raise ValueError(f"image format must be 'jpeg' or 'png', got {self.format!r}")
        if len(self.size_hw) != 2 or min(self.size_hw) < 1:
            raise ValueError(f"bad image size {self.size_hw}")


@dataclass(frozen=True)
class Instances:
    """The N object instances of one image.

    Attributes:
      masks: [N, H, W] bool, each instance's pixels; never empty.
      boxes_xyxy_px: [N, 4] float32, pixel edges (see module docstring).
      class_ids: [N] int64 label-map ids (>= 1).
      class_names: N plain class names, matching ``class_ids``.
      is_crowd: [N] bool, COCO ``iscrowd``.
    """

    masks: np.ndarray
    boxes_xyxy_px: np.ndarray
    class_ids: np.ndarray
    class_names: Tuple[str, ...]
    is_crowd: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        masks, boxes, ids, names = check_instance_arrays(
            self.masks, self.boxes_xyxy_px, self.class_ids, self.class_names)
        n = len(ids)
        crowd = (np.zeros(n, bool) if self.is_crowd is None
                 else np.asarray(self.is_crowd, dtype=bool).reshape(-1))
        if len(crowd) != n:
            raise ValueError(f"is_crowd must have one entry per instance ({n}), "
                             f"got {len(crowd)}")
        for name, value in (("masks", masks), ("boxes_xyxy_px", boxes), ("class_ids", ids),
                            ("class_names", names), ("is_crowd", crowd)):
            object.__setattr__(self, name, value)
        if n == 0:
            return
        h, w = masks.shape[1:]
        if (ids < 1).any():
            raise ValueError(f"class ids must be >= 1, got {ids.tolist()}")
        if not masks.reshape(n, -1).any(axis=1).all():
            raise ValueError("every instance mask must hold at least one pixel")
        if not np.isfinite(boxes).all():
            raise ValueError(f"boxes must be finite: {boxes.tolist()}")
        x0, y0, x1, y1 = boxes.T
        if (x0 < 0).any() or (y0 < 0).any() or (x1 > w).any() or (y1 > h).any():
            raise ValueError(f"boxes must lie inside the {w}x{h} image: {boxes.tolist()}")
        if (x1 <= x0).any() or (y1 <= y0).any():
            raise ValueError(f"boxes must have positive width and height: {boxes.tolist()}")

    def __len__(self) -> int:
        return len(self.class_ids)

    @property
    def areas_px(self) -> np.ndarray:
        """[N] float32 mask pixel counts (COCO ``area`` of a segmentation)."""
        return np.array([np.count_nonzero(m) for m in self.masks], np.float32)

    @staticmethod
    def empty(size_hw: Tuple[int, int]) -> "Instances":
        return Instances(np.zeros((0, *size_hw), bool), np.zeros((0, 4), np.float32),
                         np.zeros(0, np.int64), ())


def check_instance_arrays(masks, boxes_xyxy_px, class_ids, class_names,
                          size_hw: Optional[Tuple[int, int]] = None):
    """The checks every per-image instance container shares.

    Args:
      masks: [N, H, W], anything convertible to bool.
      boxes_xyxy_px: [N, 4] (or empty), convertible to float32.
      class_ids: [N] integers.
      class_names: N strings.
      size_hw: when given, masks must be [N, *size_hw].

    Returns:
      ``(masks [N, H, W] bool, boxes [N, 4] float32, class_ids [N] int64,
      class_names tuple)``.

    Raises:
      ValueError: naming the field whose shape or type is wrong.
    """
    masks = np.asarray(masks, dtype=bool)
    boxes = np.asarray(boxes_xyxy_px, dtype=np.float32).reshape(-1, 4)
    raw_ids = np.asarray(class_ids).reshape(-1)
    if raw_ids.size and not np.issubdtype(raw_ids.dtype, np.integer):
        raise ValueError(f"class ids must be integers, got {raw_ids.tolist()}")
    ids = raw_ids.astype(np.int64)
    names = tuple(class_names)
    n = len(ids)
    if masks.ndim != 3 or masks.shape[0] != n:
        raise ValueError(f"masks must be [N={n}, H, W], got {masks.shape}")
    if size_hw is not None and masks.shape[1:] != tuple(size_hw):
        raise ValueError(f"masks must be [N, {size_hw[0]}, {size_hw[1]}], got {masks.shape}")
    if len(boxes) != n or len(names) != n:
        raise ValueError(f"boxes_xyxy_px, class_ids and class_names must have one entry per "
                         f"instance, got {len(boxes)}, {n} and {len(names)}")
    return masks, boxes, ids, names


@dataclass(frozen=True)
class Detections:
    """The K detections of one image, best first: :class:`Instances` plus scores.

    Attributes:
      boxes_xyxy_px: [K, 4] float32 pixel edges on the original image.
      class_ids: [K] int64 label-map ids.
      class_names: K plain class names (the export's label map).
      scores: [K] float32 in [0, 1].
      masks: [K, H, W] bool instance masks on the original image (a mask may
        be empty: the model's mask for a box can fall below the threshold).
      size_hw: (H, W) of the image.
    """

    boxes_xyxy_px: np.ndarray
    class_ids: np.ndarray
    class_names: Tuple[str, ...]
    scores: np.ndarray
    masks: np.ndarray
    size_hw: Tuple[int, int]

    def __post_init__(self):
        size_hw = tuple(int(v) for v in self.size_hw)
        masks, boxes, ids, names = check_instance_arrays(
            self.masks, self.boxes_xyxy_px, self.class_ids, self.class_names, size_hw)
        scores = np.asarray(self.scores, dtype=np.float32)
        if scores.shape != (len(ids),):
            raise ValueError(f"scores must have shape ({len(ids)},), got {scores.shape}")
        for name, value in (("masks", masks), ("boxes_xyxy_px", boxes), ("class_ids", ids),
                            ("class_names", names), ("scores", scores), ("size_hw", size_hw)):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.class_ids)


def class_names_for(class_ids, names_by_id: Mapping[int, str]) -> Tuple[str, ...]:
    """The name of each label-map id; an id the label map lacks is shown as its number."""
    return tuple(names_by_id.get(int(c), str(int(c))) for c in np.asarray(class_ids).reshape(-1))


def tight_box_xyxy_px(mask: np.ndarray) -> np.ndarray:
    """[4] float32 pixel-edge box around the True pixels of a [H, W] mask.

    ``max(axis=1)`` rather than ``any(axis=1)``: numpy's ``any`` along
    contiguous rows is ~25x slower (measured on 512x384 masks), and the
    column scan is limited to the rows that hold the object.
    """
    rows = np.flatnonzero(mask.max(axis=1))
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[r0:r1].any(axis=0))
    return np.array([cols[0], r0, cols[-1] + 1, r1], np.float32)


@dataclass(frozen=True)
class Sample:
    """One image with its instances, ready to become a ``tf.train.Example``.

    Attributes:
      image: the encoded image.
      instances: its objects; masks are ``image.size_hw`` in size.
      source_id: a positive integer, unique in the dataset (written as a
        decimal string to ``image/source_id``; Model Garden's COCO evaluator
        casts it to a number).
    """

    image: EncodedImage
    instances: Instances
    source_id: int

    def __post_init__(self):
        if self.instances.masks.shape[1:] != tuple(self.image.size_hw):
            raise ValueError(f"instance masks are {self.instances.masks.shape[1:]}, "
                             f"image is {self.image.size_hw}")
        if isinstance(self.source_id, bool) or not isinstance(self.source_id, (int, np.integer)) \
                or self.source_id < 1:
            raise ValueError(f"source_id must be a positive integer, got {self.source_id!r}")
