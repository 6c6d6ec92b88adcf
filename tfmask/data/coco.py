"""COCO-format ground truth: instances <-> COCO annotation dicts, via pycocotools.

COCO ``bbox`` is ``[x, y, width, height]`` in pixels (top-left origin, pixel
edges), ``segmentation`` a compressed RLE ``{"size": [H, W], "counts": str}``,
``area`` the mask pixel count. Image ids are the records' ``image/source_id``
numbers and category ids the label-map ids, so metrics computed from records
and from this JSON agree.
"""

from __future__ import annotations

import json
from typing import Dict, List, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from tfmask.annotation import Instances
from tfmask.atomic import atomic_write
from tfmask.boxes import coco_bbox
from tfmask.errors import PathLike
from tfmask.config.label_map import LabelMap


def encode_rle(mask: np.ndarray) -> dict:
    """[H, W] bool -> compressed RLE with a str ``counts`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def image_entry(image_id: int, file_name: str, size_hw) -> dict:
    return {"id": int(image_id), "file_name": file_name,
            "height": int(size_hw[0]), "width": int(size_hw[1])}


def annotation_entries(image_id: int, instances: Instances) -> List[dict]:
    """COCO annotations (without ``id``) of one image's instances."""
    out = []
    for mask, box, cid, crowd, area in zip(instances.masks, instances.boxes_xyxy_px,
                                           instances.class_ids, instances.is_crowd,
                                           instances.areas_px):
        out.append({"image_id": int(image_id), "category_id": int(cid),
                    "bbox": coco_bbox(box), "area": float(area),
                    "iscrowd": int(crowd), "segmentation": encode_rle(mask)})
    return out


def categories(label_map: LabelMap) -> List[dict]:
    return [{"id": c.id, "name": c.name, "supercategory": "object"} for c in label_map.classes]


def write_coco_json(path: PathLike, images: Sequence[dict], annotations: Sequence[dict],
                    label_map: LabelMap) -> None:
    """Writes a COCO ground-truth file; annotation ids are numbered 1..N."""
    anns = [dict(a, id=i) for i, a in enumerate(annotations, start=1)]
    doc: Dict = {"info": {"description": "written by tfmask"}, "images": list(images),
                 "annotations": anns, "categories": categories(label_map)}
    atomic_write(path, json.dumps(doc))
