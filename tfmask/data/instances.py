"""From a class-colour mask to object instances: the three instance modes.

* ``class`` (the tutorial's ``bboxes_provided=False``): one instance per class
  present; its mask is every pixel of that class, its box the tight box.
* ``components``: each class split into 8-connected components, so several
  separate objects of one class become several instances (the tutorial's
  known failure); components smaller than ``min_area`` pixels are dropped
  and counted.
* ``box`` (the tutorial's ``bboxes_provided=True``): one instance per XML
  box; its mask is the pixels of its class inside the box, its box the XML
  box (clipped to the image and reported if it sticks out).

Every function takes a *class map*: [H, W] uint8 where 0 is background and
``k`` (1-based) means ``label_map.classes[k - 1]``.
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

from tfmask.annotation import Instances, tight_box_xyxy_px
from tfmask.errors import DataError, PathLike
from tfmask.config.label_map import LabelClass, LabelMap, format_pixel_value
from tfmask.data.report import Problem
from tfmask.data.sources.voc_xml import VocObject

INSTANCE_MODES = ("class", "components", "box")
_UNKNOWN = 255  # class-map value of pixels that match no class
_EIGHT_CONNECTED = np.ones((3, 3), bool)


def class_map_from_mask(mask: np.ndarray, label_map: LabelMap, path: PathLike) -> np.ndarray:
    """Maps mask colours to 1-based class indices.

    Args:
      mask: [H, W] uint8 gray levels, or [H, W, 3] uint8 RGB when the label
        map's pixel values are RGB triples.
      label_map: classes with pixel values; value 0 / (0, 0, 0) is background.
      path: the mask file, for errors.

    Returns:
      [H, W] uint8 class map.

    Raises:
      DataError: (kind ``unknown_pixel_values``) listing every mask value that
        is neither background nor a class, with pixel counts.
    """
    if len(label_map.classes) >= _UNKNOWN:
        raise DataError(label_map.path, f"at most {_UNKNOWN - 1} classes are supported")
    if mask.ndim == 2:
        lut = np.full(256, _UNKNOWN, np.uint8)
        lut[0] = 0
        for k, c in enumerate(label_map.classes, start=1):
            lut[c.pixel_value[0]] = k
        class_map = lut[mask]
        unknown = class_map == _UNKNOWN
        if unknown.any():
            values, counts = np.unique(mask[unknown], return_counts=True)
            _raise_unknown(path, [(f"{v}", n) for v, n in zip(values, counts)], label_map)
        return class_map
    codes = (mask[..., 0].astype(np.uint32) << 16) | (mask[..., 1].astype(np.uint32) << 8) \
        | mask[..., 2].astype(np.uint32)
    uniq, inverse = np.unique(codes, return_inverse=True)
    by_code = {(r << 16) | (g << 8) | b: k
               for k, c in enumerate(label_map.classes, start=1)
               for (r, g, b) in [c.pixel_value]}
    by_code[0] = 0
    lut = np.array([by_code.get(int(u), _UNKNOWN) for u in uniq], np.uint8)
    bad = np.flatnonzero(lut == _UNKNOWN)
    if len(bad):
        counts = np.bincount(inverse.ravel(), minlength=len(uniq))
        _raise_unknown(path, [(f"({uniq[i] >> 16},{(uniq[i] >> 8) & 255},{uniq[i] & 255})",
                               counts[i]) for i in bad], label_map)
    return lut[inverse.reshape(codes.shape)]


def instances_by_class_from_gray(gray: np.ndarray, label_map: LabelMap, path: PathLike
                                 ) -> Instances:
    """``instances_by_class(class_map_from_mask(gray, ...))`` for gray-level masks, faster.

    One histogram of the gray levels finds the classes present and any unknown
    values (same error as :func:`class_map_from_mask`); each present class then
    costs one comparison of the whole mask, and no class map is built.

    Args:
      gray: [H, W] uint8 gray levels; the label map's pixel values are gray.
    """
    if len(label_map.classes) >= _UNKNOWN:
        raise DataError(label_map.path, f"at most {_UNKNOWN - 1} classes are supported")
    counts = Image.fromarray(gray).histogram()  # 256 counts; faster than np.bincount
    known = {c.pixel_value[0] for c in label_map.classes}
    unknown = [(f"{v}", counts[v]) for v in range(1, 256) if counts[v] and v not in known]
    if unknown:
        _raise_unknown(path, unknown, label_map)
    masks, boxes, ks = [], [], []
    for k, c in enumerate(label_map.classes, start=1):
        if counts[c.pixel_value[0]]:
            mask = gray == c.pixel_value[0]
            masks.append(mask)
            boxes.append(tight_box_xyxy_px(mask))
            ks.append(k)
    return _build(masks, boxes, ks, label_map, gray.shape)


def _raise_unknown(path, values: List[Tuple[str, int]], label_map: LabelMap):
    listed = ", ".join(f"{v} ({n} px)" for v, n in values[:12])
    more = f" and {len(values) - 12} more" if len(values) > 12 else ""
    known = ", ".join(f"{c.name}={format_pixel_value(c.pixel_value)}" for c in label_map.classes)
    raise DataError(path, f"mask values {listed}{more} match no class (label map: {known}); "
                    "check the label map, or run `tfmask check-pixels` on the masks",
                    kind="unknown_pixel_values")


def _present(class_map: np.ndarray, num_classes: int) -> np.ndarray:
    """1-based indices of the classes present, in label-map order."""
    counts = np.bincount(class_map.ravel(), minlength=num_classes + 1)
    return np.flatnonzero(counts[1:num_classes + 1]) + 1


def stack_instances(masks: Sequence[np.ndarray], boxes: Sequence[np.ndarray],
                    classes: Sequence[LabelClass], size_hw: Tuple[int, int]) -> Instances:
    """Instances of parallel lists: [H, W] bool masks, ``box_xyxy_px`` boxes, classes.

    No masks give ``Instances.empty(size_hw)``.
    """
    if not classes:
        return Instances.empty(size_hw)
    return Instances(np.stack(masks), np.stack(boxes), [c.id for c in classes],
                     [c.name for c in classes])


def _build(masks, boxes, ks, label_map: LabelMap, size_hw) -> Instances:
    return stack_instances(masks, boxes, [label_map.classes[k - 1] for k in ks], size_hw)


def instances_by_class(class_map: np.ndarray, label_map: LabelMap) -> Instances:
    """One instance per class present (the tutorial without XML boxes)."""
    masks, boxes, ks = [], [], []
    for k in _present(class_map, len(label_map.classes)):
        mask = class_map == k
        masks.append(mask)
        boxes.append(tight_box_xyxy_px(mask))
        ks.append(int(k))
    return _build(masks, boxes, ks, label_map, class_map.shape)


def instances_by_components(class_map: np.ndarray, label_map: LabelMap, min_area: int = 1
                            ) -> Tuple[Instances, int]:
    """One instance per 8-connected component of each class.

    Returns:
      (instances, dropped): ``dropped`` counts components below ``min_area``.
    """
    masks, boxes, ks = [], [], []
    dropped = 0
    for k in _present(class_map, len(label_map.classes)):
        labels, n = ndimage.label(class_map == k, structure=_EIGHT_CONNECTED)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        for j, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sizes[j] < min_area:
                dropped += 1
                continue
            mask = np.zeros(class_map.shape, bool)
            mask[sl] = labels[sl] == j
            ys, xs = sl
            boxes.append(np.array([xs.start, ys.start, xs.stop, ys.stop], np.float32))
            masks.append(mask)
            ks.append(int(k))
    return _build(masks, boxes, ks, label_map, class_map.shape), dropped


def instances_in_boxes(class_map: np.ndarray, label_map: LabelMap,
                       objects: Sequence[VocObject], xml_path: PathLike
                       ) -> Tuple[Instances, List[Problem]]:
    """One instance per XML box: its class's pixels inside the box.

    Returns:
      (instances, warnings): warnings report clipped boxes and boxes with no
      pixels of their class (those objects are dropped).

    Raises:
      DataError: unknown class (naming it and the known classes), an inverted
        or zero-area box, or a box entirely outside the image.
    """
    h, w = class_map.shape
    index = {c.name: k for k, c in enumerate(label_map.classes, start=1)}
    masks, boxes, ks, problems = [], [], [], []
    for obj in objects:
        k = index.get(obj.name)
        where = f"line {obj.line}: '{obj.name}' box {_fmt_box(obj.box_xyxy_px)}"
        if k is None:
            raise DataError(xml_path, f"line {obj.line}: class '{obj.name}' is not in the "
                            f"label map {label_map.path}; known classes: "
                            f"{', '.join(label_map.names)}", kind="unknown_class")
        x0, y0, x1, y1 = obj.box_xyxy_px
        if not (x1 > x0 and y1 > y0):
            raise DataError(xml_path, f"{where} is inverted or has zero area "
                            "(needs xmin < xmax and ymin < ymax)", kind="bad_box")
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
        if not (cx1 > cx0 and cy1 > cy0):
            raise DataError(xml_path, f"{where} lies entirely outside the {w}x{h} image",
                            kind="bad_box")
        # Boxes are stored as float32, so the mask region is taken from the float32
        # box (else 5.00000001 -> 5.0 would leave mask column 5 outside it) and a box
        # narrower than that precision (5.0000001 to 5.0000002) is zero-width.
        box = np.array([cx0, cy0, cx1, cy1], np.float32)
        fx0, fy0, fx1, fy1 = (float(v) for v in box)
        if not (fx1 > fx0 and fy1 > fy0):
            raise DataError(xml_path, f"{where} is narrower than float32 precision after "
                            "clipping (zero area)", kind="bad_box")
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            problems.append(Problem("box_clipped", str(xml_path),
                                    f"{where} clipped to the {w}x{h} image"))
        r0, r1 = int(math.floor(fy0)), int(math.ceil(fy1))
        c0, c1 = int(math.floor(fx0)), int(math.ceil(fx1))
        mask = np.zeros((h, w), bool)
        mask[r0:r1, c0:c1] = class_map[r0:r1, c0:c1] == k
        if not mask.any():
            problems.append(Problem("empty_box_dropped", str(xml_path),
                                    f"{where} holds no '{obj.name}' pixels in the mask; "
                                    "object dropped"))
            continue
        masks.append(mask)
        boxes.append(box)
        ks.append(k)
    return _build(masks, boxes, ks, label_map, (h, w)), problems


def _fmt_box(box) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"
