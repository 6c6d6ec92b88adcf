"""What the labelme, YOLO, CVAT and instance-mask readers share.

Each of them turns an annotation file into *parts* — a class name, an
instance key and a [H, W] bool mask — and :func:`instances_from_parts`
merges parts with the same key into one instance (labelme ``group_id``, CVAT
``group_id``, one instance value), drops empty ones with a warning and looks
the classes up in the label map (:func:`finish_parts` then finishes the
item). :func:`label_map_for` builds that label map from the class names the
scan found, or matches them to a given one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Hashable, Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from tfmask.annotation import EncodedImage, Instances, Sample, tight_box_xyxy_px
from tfmask.config.label_map import LabelClass, LabelMap, read_label_map
from tfmask.data.images import load_image
from tfmask.data.instances import stack_instances
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, finish
from tfmask.errors import DataError, PathLike


@dataclass
class Part:
    """One drawn shape.

    Attributes:
      class_name: the tool's label.
      key: parts with equal keys (and class) form one instance.
      mask: [H, W] bool pixels of the shape.
      what: how to name the shape in messages (``shape 3 (polygon)``).
    """

    class_name: str
    key: Hashable
    mask: np.ndarray
    what: str


class PartsOptions(Protocol):
    """What :func:`finish_parts` reads of a source's options."""

    label_map: LabelMap
    want_coco: bool


def label_map_for(names: Iterable[str], label_map_path: Optional[PathLike],
                  source: PathLike, order: Optional[Sequence[str]] = None) -> LabelMap:
    """The label map of a conversion.

    Args:
      names: every class name the annotations use.
      label_map_path: a label map to match them to (plain names, no pixel
        suffix); None builds one: ``order`` (the tool's own class list) if
        given, else the names sorted, with ids 1..K.
      source: the annotation file or folder, for errors.

    Raises:
      DataError: a used class is not in the given label map (kind
        ``unknown_class``), or no class at all.
    """
    names = set(names)
    if label_map_path is not None:
        label_map = read_label_map(label_map_path, pixel_suffix=False)
        unknown = sorted(n for n in names if label_map.by_name(n) is None)
        if unknown:
            raise DataError(source, f"class(es) {', '.join(map(repr, unknown))} are not in "
                            f"the label map {label_map_path}; known classes: "
                            f"{', '.join(label_map.names)}", kind="unknown_class")
        return label_map
    ordered = list(order) if order is not None else sorted(names)
    if not ordered:
        raise DataError(source, "no class names found: the annotations label nothing; give "
                        "a label map with --label-map", kind="invalid")
    return LabelMap(tuple(LabelClass(i, n) for i, n in enumerate(ordered, start=1)),
                    str(source))


def instances_from_parts(parts: Sequence[Part], label_map: LabelMap, path: PathLike,
                         size_hw: Tuple[int, int]) -> Tuple[Instances, List[Problem]]:
    """Merges parts by (class, key) into instances, in first-appearance order.

    Raises:
      DataError: a class not in the label map, or one key used by two classes.
    """
    groups: Dict[Hashable, List[Part]] = {}
    classes: Dict[Hashable, str] = {}
    for part in parts:
        if part.key in classes and classes[part.key] != part.class_name:
            raise DataError(path, f"{part.what} ('{part.class_name}') is grouped with a "
                            f"'{classes[part.key]}' shape; one object has one class",
                            kind="bad_annotation")
        classes[part.key] = part.class_name
        groups.setdefault(part.key, []).append(part)
    masks, boxes, kept, problems = [], [], [], []
    for key, group in groups.items():
        name = classes[key]
        c = label_map.by_name(name)
        if c is None:
            raise DataError(path, f"{group[0].what}: class '{name}' is not in the label map "
                            f"{label_map.path}; known classes: {', '.join(label_map.names)}",
                            kind="unknown_class")
        mask = np.logical_or.reduce([p.mask for p in group])
        if not mask.any():
            problems.append(Problem("empty_annotation_dropped", str(path),
                                    f"{group[0].what} ('{name}') covers no pixel centre of "
                                    "the image; dropped"))
            continue
        masks.append(mask)
        boxes.append(tight_box_xyxy_px(mask))
        kept.append(c)
    return stack_instances(masks, boxes, kept, size_hw), problems


def finish_parts(image: EncodedImage, source_id: int, parts: Sequence[Part],
                 problems: List[Problem], opts: PartsOptions, path: PathLike) -> ItemResult:
    """Merges ``parts`` into the image's instances and finishes the item.

    ``path`` is the annotation file that errors and the warnings of
    :func:`instances_from_parts` name; they follow ``problems``.
    """
    instances, more = instances_from_parts(parts, opts.label_map, path, image.size_hw)
    return finish(Sample(image, instances, source_id), problems + more, opts.want_coco)


def first_few(items: Sequence[str], most: int = 3) -> str:
    """``a, b, c, ...``: the first ``most`` items, and an ellipsis when there are more."""
    return ", ".join(items[:most]) + (", ..." if len(items) > most else "")


def load_checked_image(image_path: PathLike, declared_size_hw: Optional[Tuple[int, int]],
                       annotation_path: PathLike, max_pixels: int,
                       data: Optional[bytes] = None, filename: Optional[str] = None
                       ) -> Tuple[EncodedImage, List[Problem]]:
    """The image of an annotation file, its size checked against the declared one.

    Args:
      image_path: the image (or, with ``data``, the name errors give).
      declared_size_hw: the annotation's (height, width), None when it has none.
      annotation_path: the annotation file, for the size error.
      data: image bytes embedded in the annotation.
      filename: the ``image/filename`` to store (default: the image's name).

    Raises:
      DataError: unreadable image, or a size other than the declared one.
    """
    loaded = load_image(image_path, max_pixels, data)
    image = loaded.encoded
    if filename is not None:
        image = dataclasses.replace(image, filename=filename)
    problems = [Problem("reencoded", str(image_path), loaded.reencoded)] if loaded.reencoded \
        else []
    if declared_size_hw is not None and tuple(declared_size_hw) != tuple(image.size_hw):
        h, w = declared_size_hw
        raise DataError(annotation_path, f"says the image is {w}x{h} but "
                        f"{Path(str(image_path)).name} is {image.size_hw[1]}x"
                        f"{image.size_hw[0]}", kind="size_mismatch")
    return image, problems


def finite_number(value, path: PathLike, where: str) -> float:
    """``value`` as a finite float, else a DataError naming ``where``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(path, f"{where}: {value!r:.40} is not a number",
                        kind="bad_annotation") from None
    if not np.isfinite(number) or isinstance(value, bool):
        raise DataError(path, f"{where}: {value!r:.40} is not a finite number",
                        kind="bad_annotation")
    return number
