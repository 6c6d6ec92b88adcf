"""COCO instance-segmentation JSON (polygons, RLE) -> the same records.

Image ids become ``image/source_id`` (so they must be positive integers) and
category ids the label-map ids, unless a label map is given, in which case
categories are matched to it by name. Masks are decoded with pycocotools;
``bbox`` ``[x, y, w, h]`` gives the box (the mask's tight box when absent).
Items are sorted by image id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from tfmask.annotation import Instances, Sample, tight_box_xyxy_px
from tfmask.boxes import xywh_to_xyxy
from tfmask.errors import DataError, PathLike
from tfmask.data.images import load_image
from tfmask.config.label_map import LabelClass, LabelMap
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, SourceOptions, finish, invalid_json, run_guarded


@dataclass(frozen=True)
class CocoItem:
    """One COCO image with its annotations (category ids already label-map ids)."""

    source_id: int
    image_path: str
    json_path: str
    size_hw: Tuple[int, int]
    annotations: Tuple[dict, ...]


class CocoOptions(SourceOptions):
    """How to convert a COCO JSON item: nothing beyond :class:`SourceOptions`."""


def _load(json_path: Path) -> dict:
    try:
        with open(json_path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise DataError(json_path, "COCO JSON file not found", kind="missing_file") from None
    except json.JSONDecodeError as exc:
        raise invalid_json(json_path, exc) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations", []), list) \
            or not isinstance(doc.get("categories"), list):
        raise DataError(json_path, "not a COCO instances file: needs 'images', "
                        "'annotations' and 'categories' lists", kind="bad_annotation")
    return doc


def _int_id(json_path, what: str, entry: dict) -> int:
    value = entry.get("id")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(json_path, f"{what} {entry!r:.80} needs a positive integer 'id'",
                        kind="bad_annotation")
    return value


def scan(json_path: PathLike, images_dir: PathLike, label_map: Optional[LabelMap] = None
         ) -> Tuple[List[CocoItem], LabelMap, List[Problem]]:
    """Reads a COCO JSON file into work items.

    Returns:
      (items, label_map, problems): the label map is built from the
      categories when none is given.

    Raises:
      DataError: malformed JSON or entries, annotations naming unknown images
        or categories, categories not in the given label map.
    """
    json_path = Path(json_path)
    doc = _load(json_path)
    cats = {_int_id(json_path, "category", c): str(c.get("name", "")) for c in doc["categories"]}
    if label_map is None:
        label_map = LabelMap(tuple(LabelClass(cid, name) for cid, name in sorted(cats.items())),
                             str(json_path))
    used = {a.get("category_id") for a in doc.get("annotations", [])}
    remap: Dict[int, int] = {}
    for cid, name in cats.items():
        c = label_map.by_name(name)
        if c is None:
            if cid in used:
                raise DataError(json_path, f"category '{name}' (id {cid}) is not in the label "
                                f"map {label_map.path}; known classes: "
                                f"{', '.join(label_map.names)}", kind="unknown_class")
            continue
        remap[cid] = c.id
    images: Dict[int, dict] = {}
    for img in doc["images"]:
        iid = _int_id(json_path, "image", img)
        if iid in images:
            raise DataError(json_path, f"image id {iid} is used twice", kind="bad_annotation")
        if not img.get("file_name") or not img.get("width") or not img.get("height"):
            raise DataError(json_path, f"image {iid} needs file_name, width and height",
                            kind="bad_annotation")
        images[iid] = img
    per_image: Dict[int, List[dict]] = {iid: [] for iid in images}
    for ann in doc.get("annotations", []):
        iid, cid = ann.get("image_id"), ann.get("category_id")
        if iid not in images:
            raise DataError(json_path, f"annotation {ann.get('id')} refers to image id {iid}, "
                            "which is not in 'images'", kind="bad_annotation")
        if cid not in remap:
            raise DataError(json_path, f"annotation {ann.get('id')} has category id {cid}, "
                            "which is not in 'categories'", kind="bad_annotation")
        per_image[iid].append(dict(ann, category_id=remap[cid]))
    items = [CocoItem(iid, str(Path(images_dir) / images[iid]["file_name"]), str(json_path),
                      (int(images[iid]["height"]), int(images[iid]["width"])),
                      tuple(per_image[iid])) for iid in sorted(images)]
    return items, label_map, []


def _decode_segmentation(item: CocoItem, ann: dict) -> np.ndarray:
    h, w = item.size_hw
    seg = ann.get("segmentation")
    try:
        if isinstance(seg, list):
            if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                                  for p in seg):
                raise ValueError("polygons need at least 3 (x, y) points")
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), str):
            if list(seg.get("size", [])) != [h, w]:
                raise ValueError(f"RLE size {seg.get('size')} is not the image's [{h}, {w}]")
            rle = {"size": [h, w], "counts": seg["counts"].encode("ascii")}
        else:
            raise ValueError("segmentation must be polygons or RLE")
        return mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(item.json_path, f"annotation {ann.get('id')} of image "
                        f"{Path(item.image_path).name}: {exc}", kind="bad_annotation") from None


def _convert(item: CocoItem, opts: CocoOptions) -> ItemResult:
    loaded = load_image(item.image_path, opts.max_image_pixels)
    image = loaded.encoded
    problems: List[Problem] = []
    if loaded.reencoded:
        problems.append(Problem("reencoded", item.image_path, loaded.reencoded))
    if tuple(image.size_hw) != item.size_hw:
        raise DataError(item.image_path, f"image is {image.size_hw[1]}x{image.size_hw[0]} but "
                        f"{Path(item.json_path).name} says {item.size_hw[1]}x{item.size_hw[0]}",
                        kind="size_mismatch")
    h, w = item.size_hw
    masks, boxes, ids, names, crowd = [], [], [], [], []
    for ann in item.annotations:
        mask = _decode_segmentation(item, ann)
        if not mask.any():
            problems.append(Problem("empty_annotation_dropped", item.json_path,
                                    f"annotation {ann.get('id')} of "
                                    f"{Path(item.image_path).name} has an empty mask; dropped"))
            continue
        box = tight_box_xyxy_px(mask)
        bbox = ann.get("bbox")
        if isinstance(bbox, list) and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0:
            given = xywh_to_xyxy([[float(v) for v in bbox]])[0]
            clipped = np.clip(given, 0, [w, h, w, h]).astype(np.float32)
            if clipped[2] > clipped[0] and clipped[3] > clipped[1]:
                if not np.allclose(clipped, given, atol=1e-3):
                    problems.append(Problem("box_clipped", item.json_path,
                                            f"annotation {ann.get('id')} bbox clipped to the "
                                            f"{w}x{h} image"))
                box = clipped
        c = opts.label_map.by_id(ann["category_id"])
        masks.append(mask)
        boxes.append(box)
        ids.append(c.id)
        names.append(c.name)
        crowd.append(bool(ann.get("iscrowd", 0)))
    instances = (Instances(np.stack(masks), np.stack(boxes), ids, names, crowd)
                 if masks else Instances.empty((h, w)))
    return finish(Sample(image, instances, item.source_id), problems, opts.want_coco)


def convert_item(item: CocoItem, opts: CocoOptions) -> ItemResult:
    """Converts one COCO image; input errors are returned in ``ItemResult.error``."""
    return run_guarded(item.image_path, partial(_convert, item, opts))
