"""Picks the reader of the labelme, YOLO, CVAT and instance-mask inputs for the converter.

:func:`tfmask.data.convert.plan_conversion` asks :func:`scan_other` first; it
returns None for the tutorial layout and COCO JSON, which the converter reads
itself. A source with a split of its own (YOLO's train/val) returns it, and
the converter keeps it instead of drawing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Sequence

import numpy as np

from tfmask.config.label_map import LabelMap
from tfmask.data.report import Problem
from tfmask.data.sources import cvat_xml, instance_masks, labelme, yolo_seg
from tfmask.errors import ConfigError

# ConvertConfig field -> the command-line flag that sets it.
SOURCE_FLAGS = {"labelme_dir": "--labelme-dir", "yolo_data": "--yolo-data",
                "cvat_xml": "--cvat-xml", "instance_masks_dir": "--instance-masks-dir"}


@dataclass
class Scanned:
    """A scanned source: its items, the picklable ``item -> ItemResult``, the label
    map, scan problems, and [len(items)] bool ``is_val`` when the source has its
    own split (else None)."""

    items: Sequence
    convert_item: Callable
    label_map: LabelMap
    problems: List[Problem]
    is_val: Optional[np.ndarray] = None


def chosen(cfg) -> Optional[str]:
    """The ConvertConfig field naming the new-format source, or None.

    Raises:
      ConfigError: two sources given (these, or one of these with --coco-json).
    """
    given = [f for f in SOURCE_FLAGS if getattr(cfg, f, None) is not None]
    flags = [SOURCE_FLAGS[f] for f in given] + (["--coco-json"] if cfg.coco_json else [])
    if len(flags) > 1:
        raise ConfigError(f"{' and '.join(flags)} name two inputs; give one")
    return given[0] if given else None


def scan_other(cfg) -> Optional[Scanned]:
    """Scans the labelme/YOLO/CVAT/instance-mask source of ``cfg``, or returns None."""
    field = chosen(cfg)
    if field is None:
        return None
    lm = cfg.path(cfg.label_map_path) if cfg.label_map_path else None
    common = dict(max_image_pixels=cfg.max_image_pixels, want_coco=cfg.write_coco_json)
    source = cfg.path(getattr(cfg, field))
    if field == "labelme_dir":
        items, label_map, problems = labelme.scan(source, lm)
        fn = partial(labelme.convert_item, opts=labelme.LabelmeOptions(label_map, **common))
        return Scanned(items, fn, label_map, problems)
    if field == "cvat_xml":
        items, label_map, problems = cvat_xml.scan(source, lm)
        fn = partial(cvat_xml.convert_item, opts=cvat_xml.CvatOptions(label_map, **common))
        return Scanned(items, fn, label_map, problems)
    if field == "instance_masks_dir":
        items, label_map, problems = instance_masks.scan(source, lm, cfg.class_pixels)
        fn = partial(instance_masks.convert_item,
                     opts=instance_masks.InstanceOptions(label_map, **common))
        return Scanned(items, fn, label_map, problems)
    items, label_map, problems, names = yolo_seg.scan(source, lm)
    fn = partial(yolo_seg.convert_item, opts=yolo_seg.YoloOptions(label_map, names, **common))
    return Scanned(items, fn, label_map, problems,
                   np.array([item.split == "val" for item in items], bool))
