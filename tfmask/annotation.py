"""The small annotation dataclasses every input format produces.

A source reader (:mod:`tfmask.data.sources`) turns one input image and its labels
into a :class:`Sample`; :mod:`tfmask.data.records.writer` turns a Sample into a
``tf.train.Example``. Both dataclasses validate themselves when built, so a
bad instance can never reach a record.

Coordinate convention: boxes are ``[xmin, ymin, xmax, ymax]`` in pixel
*edges* (float), ``0 <= xmin < xmax <= width``; a box covering pixel columns
2..4 is ``xmin=2, xmax=5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

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
        masks = np.asarray(self.masks, dtype=bool)
        boxes = np.asarray(self.boxes_xyxy_px, dtype=np.float32).reshape(-1, 4)
        raw_ids = np.asarray(self.class_ids).reshape(-1)
        if raw_ids.size and not np.issubdtype(raw_ids.dtype, np.integer):
            raise ValueError(f"class ids must be integers, got {raw_ids.tolist()}")
        ids = raw_ids.astype(np.int64)
        crowd = (np.zeros(len(ids), bool) if self.is_crowd is None
                 else np.asarray(self.is_crowd, dtype=bool).reshape(-1))
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "boxes_xyxy_px", boxes)
        object.__setattr__(self, "class_ids", ids)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "is_crowd", crowd)
        n = len(ids)
        if masks.ndim != 3 or masks.shape[0] != n:
            raise ValueError(f"masks must be [N={n}, H, W], got {masks.shape}")
        if not (len(boxes) == len(self.class_names) == len(crowd) == n):
            raise ValueError("boxes, class ids, names and is_crowd must have one entry "
                             "per instance")
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
