"""Box conventions, and the only conversions between them (numpy, no TensorFlow).

tfmask uses three box layouts, each named by its suffix wherever it crosses a
module boundary:

* ``boxes_xyxy_px`` -- ``[xmin, ymin, xmax, ymax]`` in pixel *edges* of the
  image (float): a box covering pixel columns 2..4 has ``xmin=2, xmax=5``.
  The annotation vocabulary (:mod:`tfmask.annotation`) and every user-facing
  output use it.
* ``boxes_yxyx_norm`` -- ``[ymin, xmin, ymax, xmax]`` divided by the image
  height/width: the TFRecord schema (``image/object/bbox/*``) and the OD API's
  exported ``detection_boxes``.
* ``bbox_xywh_px`` -- COCO's ``[x, y, width, height]`` in pixels, top-left
  origin, the same pixel edges as ``xyxy_px``.

Model Garden's own tensors use ``[ymin, xmin, ymax, xmax]`` in pixels of the
model frame (``yxyx_px``); :func:`yxyx_to_xyxy` swaps the axes.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def _as_boxes(boxes) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4], got shape {array.shape}")
    return array


def _scale(size_hw: Tuple[int, int]) -> np.ndarray:
    h, w = size_hw
    return np.array([h, w, h, w], np.float64)


def yxyx_to_xyxy(boxes) -> np.ndarray:
    """[N, 4] ``[y0, x0, y1, x1]`` -> ``[x0, y0, x1, y1]`` (same units), float32."""
    return _as_boxes(boxes)[:, [1, 0, 3, 2]].astype(np.float32)


def yxyx_norm_to_xyxy_px(boxes_yxyx_norm, size_hw: Tuple[int, int]) -> np.ndarray:
    """[N, 4] normalized ``[ymin, xmin, ymax, xmax]`` -> float32 pixel-edge ``xyxy``."""
    return yxyx_to_xyxy(_as_boxes(boxes_yxyx_norm) * _scale(size_hw))


def xyxy_px_to_yxyx_norm(boxes_xyxy_px, size_hw: Tuple[int, int]) -> np.ndarray:
    """[N, 4] pixel-edge ``xyxy`` -> float64 normalized ``[ymin, xmin, ymax, xmax]``.

    float64, so the record writer stores the exact quotient as float32 once.
    """
    return _as_boxes(boxes_xyxy_px)[:, [1, 0, 3, 2]] / _scale(size_hw)


def xyxy_to_xywh(boxes_xyxy) -> np.ndarray:
    """[N, 4] ``[x0, y0, x1, y1]`` -> COCO ``[x, y, width, height]`` (same units), float64."""
    b = _as_boxes(boxes_xyxy)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def xywh_to_xyxy(boxes_xywh) -> np.ndarray:
    """[N, 4] COCO ``[x, y, width, height]`` -> ``[x0, y0, x1, y1]`` (same units), float64."""
    b = _as_boxes(boxes_xywh)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def coco_bbox(box_xyxy_px: Sequence[float], decimals: int = -1) -> list:
    """One pixel-edge box as a COCO ``bbox`` list of Python floats.

    ``decimals >= 0`` rounds each value (results files); -1 keeps them exact.
    """
    x, y, w, h = (float(v) for v in xyxy_to_xywh([box_xyxy_px])[0])
    if decimals >= 0:
        return [round(x, decimals), round(y, decimals), round(w, decimals), round(h, decimals)]
    return [x, y, w, h]
