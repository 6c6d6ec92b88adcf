"""Ultralytics YOLO segmentation datasets -> the same records (``--yolo-data data.yaml``).

The layout Ultralytics trains on::

    data.yaml        path: .            # dataset root (relative: to the yaml's folder)
                     train: images/train   # a folder, a .txt list of images, or a list
                     val: images/val
                     names: {0: speaker, 1: cup}   # or a list
    images/train/NAME.jpg
    labels/train/NAME.txt   one object per line: CLASS x1 y1 x2 y2 ... (normalized)

A label file is the image path with its last ``images`` folder replaced by
``labels`` and the extension by ``.txt`` (Ultralytics' rule); an image
without one has no objects. Coordinates are fractions of the image width and
height, in pixel edges (``x = 1`` is the right border), and each line is one
instance (Ultralytics joins multi-part objects into one polygon). The
``train``/``val`` split is kept: train images are written to the train
records and val images to the val records. Classes keep their order:
YOLO class ``k`` becomes label-map id ``k + 1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfmask.config.label_map import LabelMap
from tfmask.data import polygons
from tfmask.data.images import DEFAULT_MAX_IMAGE_PIXELS, IMAGE_EXTENSIONS
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, run_guarded
from tfmask.data.sources.shapes import (Part, finish_parts, label_map_for,
                                        load_checked_image)
from tfmask.errors import DataError, PathLike

SPLITS = ("train", "val")
_COORD_TOLERANCE = 1e-6  # rounding of exporters that write 6 decimals


@dataclass(frozen=True)
class YoloItem:
    source_id: int
    image_path: str
    label_path: str
    split: str  # "train" or "val"


@dataclass(frozen=True)
class YoloOptions:
    label_map: LabelMap
    class_names: Tuple[str, ...]  # YOLO class index -> name
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    want_coco: bool = False


def read_data_yaml(path: Path) -> dict:
    """``data.yaml`` as a dict with ``root`` (Path), ``names`` (list) and the splits.

    Raises:
      DataError: not found, not YAML, or missing ``train``/``names``.
    """
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "data.yaml not found", kind="missing_file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DataError(path, f"invalid YAML{where}: {getattr(exc, 'problem', exc)}",
                        kind="bad_annotation") from None
    if not isinstance(doc, dict) or "train" not in doc or "names" not in doc:
        raise DataError(path, "not an Ultralytics dataset file: needs 'train' and 'names' "
                        "(and usually 'path' and 'val')", kind="bad_annotation")
    names = doc["names"]
    if isinstance(names, dict):
        keys = sorted(names) if all(isinstance(k, int) for k in names) else None
        if keys != list(range(len(names))):
            raise DataError(path, "'names' must map 0, 1, ..., N-1 to class names",
                            kind="bad_annotation")
        names = [names[k] for k in keys]
    if not isinstance(names, list) or not names or not all(
            isinstance(n, (str, int)) and str(n) for n in names):
        raise DataError(path, "'names' must be a non-empty list (or 0..N-1 mapping) of class "
                        "names", kind="bad_annotation")
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise DataError(path, "'names' lists a class twice", kind="bad_annotation")
    root = Path(str(doc.get("path") or "."))
    if not root.is_absolute():
        root = path.parent / root
    if not root.is_dir():
        raise DataError(path, f"'path' {doc.get('path')!r} is not a folder ({root})",
                        kind="missing_file")
    return {"root": root, "names": names, "train": doc.get("train"), "val": doc.get("val")}


def _images_of(entry, root: Path, yaml_path: Path, split: str) -> List[Path]:
    """The images a ``train``/``val`` entry names: folders (recursive), .txt lists."""
    entries = entry if isinstance(entry, list) else [entry]
    out: List[Path] = []
    for e in entries:
        if not isinstance(e, str) or not e:
            raise DataError(yaml_path, f"'{split}' must be a path or a list of paths",
                            kind="bad_annotation")
        p = Path(e) if Path(e).is_absolute() else root / e
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file()
                          and q.suffix.lower() in IMAGE_EXTENSIONS and not q.name.startswith("."))
        elif p.is_file() and p.suffix.lower() == ".txt":
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    q = Path(line)
                    out.append(q if q.is_absolute() else
                               (p.parent / q if line.startswith("./") else root / q))
        else:
            raise DataError(yaml_path, f"'{split}': {e} is neither an image folder nor a .txt "
                            f"list of images ({p})", kind="missing_file")
    return out


def label_path_for(image_path: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = str(image_path)
    head, sep, tail = text.rpartition(sa)
    text = head + sb + tail if sep else text
    return Path(text).with_suffix(".txt")


def scan(yaml_path: PathLike, label_map_path: Optional[PathLike] = None
         ) -> Tuple[List[YoloItem], LabelMap, List[Problem], Tuple[str, ...]]:
    """Lists train then val images with their label files.

    Returns:
      (items, label_map, problems, class_names).

    Raises:
      DataError: malformed data.yaml, missing folders, no images, an image in
        both splits.
    """
    yaml_path = Path(yaml_path)
    doc = read_data_yaml(yaml_path)
    items: List[YoloItem] = []
    seen: Dict[str, str] = {}
    for split in SPLITS:
        if doc[split] is None:
            continue
        for image in _images_of(doc[split], doc["root"], yaml_path, split):
            key = str(image.resolve())
            if key in seen:
                raise DataError(image, f"is in both '{seen[key]}' and '{split}'; an image "
                                "belongs to one split", kind="invalid")
            seen[key] = split
            items.append(YoloItem(len(items) + 1, str(image), str(label_path_for(image)),
                                  split))
    if not items:
        raise DataError(yaml_path, "its train/val entries hold no JPEG or PNG images",
                        kind="missing_file")
    names = tuple(doc["names"])
    label_map = label_map_for(names, label_map_path, yaml_path, order=names)
    return items, label_map, [], names


def _parse_line(path: str, n: int, line: str, num_classes: int) -> Tuple[int, np.ndarray]:
    values = line.split()
    where = f"line {n}"
    try:
        cls = int(values[0])
        coords = np.array([float(v) for v in values[1:]], np.float64)
    except ValueError:
        raise DataError(path, f"{where}: expected 'CLASS x1 y1 x2 y2 ...' numbers, got "
                        f"'{line[:60]}'", kind="bad_annotation") from None
    if not 0 <= cls < num_classes:
        raise DataError(path, f"{where}: class {cls} is not in data.yaml's names (0.."
                        f"{num_classes - 1})", kind="unknown_class")
    if len(coords) == 4:
        raise DataError(path, f"{where}: 4 numbers after the class is a detection box "
                        "(cx cy w h); segmentation needs a polygon x1 y1 x2 y2 x3 y3 ...",
                        kind="bad_annotation")
    if len(coords) % 2 or len(coords) < 6:
        raise DataError(path, f"{where}: {len(coords)} coordinates; a polygon needs an even "
                        "number, at least 6 (3 points)", kind="bad_annotation")
    if not np.isfinite(coords).all() or coords.min() < -_COORD_TOLERANCE \
            or coords.max() > 1 + _COORD_TOLERANCE:
        raise DataError(path, f"{where}: coordinates must be normalized to 0..1 (fractions of "
                        "the image size)", kind="bad_box")
    return cls, coords.reshape(-1, 2)


def _convert(item: YoloItem, opts: YoloOptions) -> ItemResult:
    image, problems = load_checked_image(item.image_path, None, item.image_path,
                                         opts.max_image_pixels)
    h, w = image.size_hw
    parts = []
    label = Path(item.label_path)
    if label.is_file():
        try:
            text = label.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(label, "not a UTF-8 text file", kind="bad_annotation") from None
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            cls, points = _parse_line(item.label_path, n, line, len(opts.class_names))
            mask = polygons.rasterize([points * [w, h]], (h, w))
            parts.append(Part(opts.class_names[cls], n, mask, f"line {n}"))
    return finish_parts(image, item.source_id, parts, problems, opts, item.label_path)


def convert_item(item: YoloItem, opts: YoloOptions) -> ItemResult:
    """Converts one image and its label file; input errors go to ``ItemResult.error``."""
    return run_guarded(item.image_path, partial(_convert, item, opts))
