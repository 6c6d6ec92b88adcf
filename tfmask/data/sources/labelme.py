"""labelme JSON files -> the same records (``tfmask tfrecord --labelme-dir DIR``).

One ``DIR/NAME.json`` per image, as labelme saves it::

    {"version": "5.5.0", "flags": {}, "imagePath": "NAME.jpg", "imageData": null,
     "imageHeight": 480, "imageWidth": 640,
     "shapes": [{"label": "cup", "points": [[x, y], ...], "group_id": null,
                 "shape_type": "polygon", "flags": {}, "description": "", "mask": null}]}

The image is ``imagePath`` relative to the JSON (Windows separators
accepted), or the base64 ``imageData`` when it is embedded. Shapes of type
``polygon``, ``rectangle`` (two corners), ``circle`` (centre, then a point
on the circle) and ``mask`` (a base64 PNG covering pixels ``x1..x2``,
``y1..y2`` of its two integer ``points``, inclusive, as labelme pastes it)
become masks; point coordinates are pixel edges (see
:mod:`tfmask.data.polygons`). Shapes sharing a ``group_id`` (and label) are one
instance; without one, each shape is its own. Line and point shapes have no
area: they are skipped and reported. Items are sorted by file name; item ``i``
gets ``source_id = i + 1``. Classes: the labels, sorted, unless a label map
is given.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PureWindowsPath
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from tfmask.config.label_map import LabelMap
from tfmask.data import polygons
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, SourceOptions, invalid_json, run_guarded
from tfmask.data.sources.shapes import (Part, finish_parts, finite_number, first_few,
                                        label_map_for, load_checked_image)
from tfmask.errors import DataError, PathLike

AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
LINE_SHAPES = ("line", "linestrip", "point", "points")
_MAX_JSON_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class LabelmeItem:
    source_id: int
    json_path: str


class LabelmeOptions(SourceOptions):
    """How to convert a labelme item: nothing beyond :class:`SourceOptions`."""


def read_json(path: Path) -> dict:
    """A labelme file's top level, checked.

    Raises:
      DataError: not found, not JSON (line, column), or not a labelme file.
    """
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise DataError(path, f"file is above {_MAX_JSON_BYTES} bytes", kind="bad_annotation")
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise DataError(path, "labelme JSON file not found", kind="missing_file") from None
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text; labelme writes UTF-8 JSON",
                        kind="bad_annotation") from None
    except json.JSONDecodeError as exc:
        raise invalid_json(path, exc) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise DataError(path, "not a labelme file: needs a 'shapes' list",
                        kind="bad_annotation")
    if not doc.get("imageData") and not isinstance(doc.get("imagePath"), str):
        raise DataError(path, "names no image: needs 'imagePath' or 'imageData'",
                        kind="bad_annotation")
    for k, shape in enumerate(doc["shapes"]):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) \
                or not shape["label"]:
            raise DataError(path, f"shape {k} has no 'label' string", kind="bad_annotation")
    return doc


def scan(labelme_dir: PathLike, label_map_path: Optional[PathLike] = None
         ) -> Tuple[List[LabelmeItem], LabelMap, List[Problem]]:
    """Lists ``DIR/*.json`` and gathers their labels.

    Raises:
      DataError: a missing or empty folder, a malformed file, a label not in
        the given label map.
    """
    folder = Path(labelme_dir)
    if not folder.is_dir():
        raise DataError(folder, "labelme folder not found", kind="missing_file")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json"
                   and p.is_file() and not p.name.startswith("."))
    if not paths:
        raise DataError(folder, "no labelme .json files in this folder", kind="missing_file")
    names = set()
    for path in paths:
        doc = read_json(path)
        names.update(s["label"] for s in doc["shapes"]
                     if s.get("shape_type", "polygon") not in LINE_SHAPES)
    label_map = label_map_for(names, label_map_path, folder)
    items = [LabelmeItem(i, str(p)) for i, p in enumerate(paths, start=1)]
    return items, label_map, []


def _points(path, where: str, shape: dict) -> np.ndarray:
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 for p in pts):
        raise DataError(path, f"{where}: 'points' must be a list of [x, y] pairs",
                        kind="bad_annotation")
    return np.array([[finite_number(v, path, where) for v in p] for p in pts],
                    np.float64).reshape(-1, 2)


def _decode_png(path, where: str, text) -> np.ndarray:
    try:
        data = base64.b64decode(text, validate=True)
        return np.asarray(Image.open(io.BytesIO(data)))
    except (binascii.Error, TypeError, ValueError, OSError, UnidentifiedImageError) as exc:
        raise DataError(path, f"{where}: 'mask' is not a base64 PNG ({exc})",
                        kind="bad_annotation") from None


def shape_mask(path, where: str, shape: dict, size_hw: Tuple[int, int]) -> np.ndarray:
    """[H, W] bool pixels of one area shape (see the module docstring)."""
    kind = shape.get("shape_type") or "polygon"
    pts = _points(path, where, shape)
    if kind == "polygon":
        if len(pts) < 3:
            raise DataError(path, f"{where}: a polygon needs at least 3 points, got "
                            f"{len(pts)}", kind="bad_annotation")
        return polygons.rasterize([pts], size_hw)
    if len(pts) != 2:
        raise DataError(path, f"{where}: a {kind} needs 2 points, got {len(pts)}",
                        kind="bad_annotation")
    (x0, y0), (x1, y1) = pts
    if kind == "rectangle":
        ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return polygons.rasterize([ring], size_hw)
    if kind == "circle":
        return polygons.disk((x0, y0), float(np.hypot(x1 - x0, y1 - y0)), size_hw)
    crop = _decode_png(path, where, shape.get("mask"))
    if crop.ndim == 3:
        crop = crop[..., 0]
    c0, r0, c1, r1 = (int(v) for v in (x0, y0, x1, y1))
    if crop.shape != (r1 - r0 + 1, c1 - c0 + 1):
        raise DataError(path, f"{where}: the mask PNG is {crop.shape[1]}x{crop.shape[0]} but "
                        f"its points span {c1 - c0 + 1}x{r1 - r0 + 1} pixels",
                        kind="bad_annotation")
    h, w = size_hw
    if c0 < 0 or r0 < 0 or c1 >= w or r1 >= h:
        raise DataError(path, f"{where}: the mask spans pixels ({c0},{r0})-({c1},{r1}), "
                        f"outside the {w}x{h} image", kind="bad_annotation")
    mask = np.zeros(size_hw, bool)
    mask[r0:r1 + 1, c0:c1 + 1] = crop > 0
    return mask


def _image(item: LabelmeItem, doc: dict, max_pixels: int):
    json_path = Path(item.json_path)
    rel = PureWindowsPath(doc.get("imagePath") or "").as_posix()
    name = Path(rel).name or json_path.with_suffix(".jpg").name
    declared = None
    if isinstance(doc.get("imageHeight"), int) and isinstance(doc.get("imageWidth"), int):
        declared = (doc["imageHeight"], doc["imageWidth"])
    if doc.get("imageData"):
        try:
            data = base64.b64decode(doc["imageData"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise DataError(json_path, "'imageData' is not base64", kind="bad_annotation") \
                from None
        return load_checked_image(json_path, declared, json_path, max_pixels, data, name)
    image_path = json_path.parent / rel
    if not image_path.is_file():
        raise DataError(json_path, f"imagePath '{doc.get('imagePath')}' names a missing "
                        f"file ({image_path})", kind="missing_image")
    return load_checked_image(image_path, declared, json_path, max_pixels)


def _convert(item: LabelmeItem, opts: LabelmeOptions) -> ItemResult:
    doc = read_json(Path(item.json_path))
    image, problems = _image(item, doc, opts.max_image_pixels)
    parts = []
    skipped = []
    for k, shape in enumerate(doc["shapes"]):
        kind = shape.get("shape_type") or "polygon"
        where = f"shape {k} ({kind} '{shape['label']}')"
        if kind in LINE_SHAPES:
            skipped.append(where)
            continue
        if kind not in AREA_SHAPES:
            raise DataError(item.json_path, f"{where}: unknown shape_type '{kind}'; valid: "
                            f"{', '.join(AREA_SHAPES + LINE_SHAPES)}", kind="bad_annotation")
        group = shape.get("group_id")
        if group is not None and (not isinstance(group, int) or isinstance(group, bool)):
            raise DataError(item.json_path, f"{where}: group_id {group!r} is not an integer",
                            kind="bad_annotation")
        key = ("group", shape["label"], group) if group is not None else ("shape", k)
        parts.append(Part(shape["label"], key, shape_mask(item.json_path, where, shape,
                                                          image.size_hw), where))
    if skipped:
        problems.append(Problem("ignored_shape", item.json_path,
                                f"{len(skipped)} line/point shape(s) have no area; skipped "
                                f"({first_few(skipped)})"))
    return finish_parts(image, item.source_id, parts, problems, opts, item.json_path)


def convert_item(item: LabelmeItem, opts: LabelmeOptions) -> ItemResult:
    """Converts one labelme file; input errors are returned in ``ItemResult.error``."""
    return run_guarded(item.json_path, partial(_convert, item, opts))
