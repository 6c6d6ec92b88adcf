"""Instance-ID mask PNGs -> the same records (``--instance-masks-dir DIR``).

::

    DIR/images/NAME.jpg        (or .jpeg / .png)
    DIR/instances/NAME.png     one value per instance, 0 = background: 8-bit gray or
                               palette index, 16-bit gray, or RGB (R * 65536 + G * 256 + B)
    classes, the first that exists:
      DIR/instances/NAME.json  {"1": "cup", "2": "speaker"}   (instance value -> class)
      DIR/instances/NAME.csv   value,class per line (a header line is allowed)
      DIR/classes.json | DIR/classes.csv   the same mapping for every image
    or, when DIR/class_masks/ exists:
      DIR/class_masks/NAME.png class-colour mask as in the tutorial layout, with
                               DIR/label.pbtxt (pixel-suffix names or --class-pixel)

An instance is every pixel of one value, however many parts it has. With
class masks, each instance takes the class under its pixels; an instance
over two classes (or over background) is an error naming both. Items are
sorted by image name; item ``i`` gets ``source_id = i + 1``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from tfmask.config.label_map import LabelMap, load_label_map
from tfmask.data.images import find_images, load_mask
from tfmask.data.instances import class_map_from_mask
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, SourceOptions, invalid_json, run_guarded
from tfmask.data.sources.shapes import (Part, finish_parts, label_map_for,
                                        load_checked_image)
from tfmask.errors import DataError, PathLike

_SHARED_MAPPINGS = ("classes.json", "classes.csv")


@dataclass(frozen=True)
class InstanceItem:
    source_id: int
    image_path: str
    instance_path: str
    classes_path: Optional[str]  # mapping file or class mask; None in neither mode
    class_mask: bool  # classes_path is a class mask


class InstanceOptions(SourceOptions):
    """How to convert an instance-mask item: nothing beyond :class:`SourceOptions`."""


def read_mapping(path: Path) -> Dict[int, str]:
    """A value -> class mapping from JSON (``{"1": "cup"}``) or CSV (``1,cup``).

    Raises:
      DataError: unreadable, malformed, a value that is not an integer >= 1.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the class mapping: {exc}", kind="unreadable") \
            from None
    pairs: List[Tuple[str, object, str]] = []
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid_json(path, exc) from None
        if not isinstance(doc, dict):
            raise DataError(path, "expected an object mapping instance values to class "
                            'names, e.g. {"1": "cup"}', kind="bad_annotation")
        pairs = [(f"key {k!r}", k, v) for k, v in doc.items()]
    else:
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise DataError(path, f"line {n}: expected 'value,class', got {row!r:.60}",
                                kind="bad_annotation")
            if n == 1 and not row[0].strip().isdigit():
                continue  # header
            pairs.append((f"line {n}", row[0].strip(), row[1].strip()))
    out: Dict[int, str] = {}
    for where, key, name in pairs:
        value = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else None
        if value is None or value < 1 or not isinstance(name, str) or not name:
            raise DataError(path, f"{where}: expected an instance value >= 1 and a class "
                            f"name, got {key!r}: {name!r}", kind="bad_annotation")
        out[value] = name
    return out


def read_instance_png(path: PathLike, max_pixels: int) -> np.ndarray:
    """[H, W] int64 instance values of an instance PNG (see the module docstring)."""
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise DataError(path, "instance mask not found", kind="missing_mask") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DataError(path, f"instance mask is not a readable image ({exc})",
                        kind="unreadable") from None
    with img:
        if img.format != "PNG":
            raise DataError(path, f"instance mask is {img.format}; save instance ids as PNG "
                            "(lossy formats change them)", kind="bad_mask")
        if img.size[0] * img.size[1] > max_pixels:
            raise DataError(path, f"instance mask is {img.size[0]}x{img.size[1]}, above the "
                            f"limit of {max_pixels} pixels", kind="too_large")
        try:
            if img.mode == "RGB":
                rgb = np.asarray(img).astype(np.int64)
                return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
            if img.mode in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                return np.asarray(img).astype(np.int64)
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(path, f"instance mask is truncated or corrupt ({exc})",
                            kind="unreadable") from None
        raise DataError(path, f"instance mask has pixel mode {img.mode}; use 8- or 16-bit "
                        "gray, palette or RGB", kind="bad_mask")


def scan(root: PathLike, label_map_path: Optional[PathLike] = None,
         class_pixels: Sequence[str] = ()) -> Tuple[List[InstanceItem], LabelMap, List[Problem]]:
    """Pairs images with instance masks and their classes.

    Raises:
      DataError: missing folders, an image without instance mask or classes,
        a malformed mapping, a class not in the given label map.
    """
    root = Path(root)
    images, ignored = find_images(root / "images")
    if not images:
        raise DataError(root / "images", "no JPEG or PNG images in this folder",
                        kind="missing_file")
    inst_dir, class_dir = root / "instances", root / "class_masks"
    if not inst_dir.is_dir():
        raise DataError(inst_dir, "instance masks folder not found", kind="missing_file")
    use_class_masks = class_dir.is_dir()
    shared = next((root / n for n in _SHARED_MAPPINGS if (root / n).is_file()), None)
    problems = [Problem("ignored_file", str(p), "not a .jpg/.jpeg/.png image; ignored")
                for p in ignored]
    items, names = [], set()
    for i, image in enumerate(images, start=1):
        inst = inst_dir / f"{image.stem}.png"
        if not inst.is_file():
            raise DataError(image, f"no instance mask: expected {inst}", kind="missing_mask")
        if use_class_masks:
            classes: Optional[Path] = class_dir / f"{image.stem}.png"
            if not classes.is_file():
                raise DataError(image, f"no class mask: expected {classes}",
                                kind="missing_mask")
        else:
            classes = next((c for c in (inst.with_suffix(".json"), inst.with_suffix(".csv"))
                            if c.is_file()), shared)
            if classes is None:
                raise DataError(image, f"no classes for {inst.name}: expected {image.stem}.json "
                                f"or {image.stem}.csv beside it, {root}/classes.json|csv, or "
                                f"class masks in {class_dir}", kind="missing_file")
            names.update(read_mapping(classes).values())
        items.append(InstanceItem(i, str(image), str(inst), str(classes), use_class_masks))
    if use_class_masks:
        label_map = load_label_map(label_map_path or root / "label.pbtxt", class_pixels)
    else:
        label_map = label_map_for(names, label_map_path, root)
    return items, label_map, problems


def _classes_by_value(item: InstanceItem, ids: np.ndarray, values: np.ndarray,
                      label_map: LabelMap) -> Dict[int, str]:
    if not item.class_mask:
        mapping = read_mapping(Path(item.classes_path))
        missing = [v for v in values.tolist() if v not in mapping]
        if missing:
            counts = ", ".join(f"{v} ({int((ids == v).sum())} px)" for v in missing[:8])
            raise DataError(item.classes_path, f"gives no class for instance value(s) "
                            f"{counts} of {Path(item.instance_path).name}",
                            kind="unknown_pixel_values")
        return mapping
    mask = load_mask(item.classes_path, label_map.matches_rgb)
    if mask.shape[:2] != ids.shape:
        raise DataError(item.classes_path, f"class mask is {mask.shape[1]}x{mask.shape[0]} "
                        f"but the instance mask is {ids.shape[1]}x{ids.shape[0]}",
                        kind="size_mismatch")
    class_map = class_map_from_mask(mask, label_map, item.classes_path)
    out = {}
    for v in values.tolist():
        under = np.bincount(class_map[ids == v], minlength=len(label_map.classes) + 1)
        present = np.flatnonzero(under)
        if len(present) != 1 or present[0] == 0:
            what = ", ".join(f"{'background' if k == 0 else label_map.classes[k - 1].name} "
                             f"({under[k]} px)" for k in present)
            raise DataError(item.classes_path, f"instance value {v} of "
                            f"{Path(item.instance_path).name} lies over {what}; an instance "
                            "has one class", kind="bad_mask")
        out[v] = label_map.classes[present[0] - 1].name
    return out


def _convert(item: InstanceItem, opts: InstanceOptions) -> ItemResult:
    image, problems = load_checked_image(item.image_path, None, item.image_path,
                                         opts.max_image_pixels)
    ids = read_instance_png(item.instance_path, opts.max_image_pixels)
    if ids.shape != tuple(image.size_hw):
        raise DataError(item.instance_path, f"instance mask is {ids.shape[1]}x{ids.shape[0]} "
                        f"but image {Path(item.image_path).name} is {image.size_hw[1]}x"
                        f"{image.size_hw[0]}", kind="size_mismatch")
    values = np.unique(ids)
    values = values[values != 0]
    classes = _classes_by_value(item, ids, values, opts.label_map)
    parts = [Part(classes[v], v, ids == v, f"instance value {v}") for v in values.tolist()]
    return finish_parts(image, item.source_id, parts, problems, opts, item.classes_path)


def convert_item(item: InstanceItem, opts: InstanceOptions) -> ItemResult:
    """Converts one image; input errors are returned in ``ItemResult.error``."""
    return run_guarded(item.image_path, partial(_convert, item, opts))
