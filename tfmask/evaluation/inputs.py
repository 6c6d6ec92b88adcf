"""Ground truth and detections for :mod:`tfmask.evaluation.coco_eval`, as COCO dicts.

Ground truth comes from tfmask TFRecords (:func:`ground_truth_from_records`)
or a COCO JSON such as ``tfmask tfrecord --coco-json-out`` writes
(:func:`read_coco_ground_truth`); both give the same dict for the same data.
Detections are a COCO results list (see :mod:`tfmask.evaluation.coco_eval`), checked and
mapped to ground-truth image ids by :func:`prepare_results`. Every problem is
a :class:`~tfmask.errors.DataError` naming the file and the entry.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from tfmask.data import coco
from tfmask.annotation import Instances
from tfmask.errors import DataError, PathLike


def ground_truth_from_records(patterns: Union[PathLike, Sequence[PathLike]],
                              label_map_path: Optional[PathLike] = None) -> dict:
    """A COCO ground-truth dict of tfmask TFRecords.

    Image ids are the records' ``image/source_id`` numbers, ``file_name`` is
    ``image/filename`` and categories come from the label map, so the result
    equals the ``--coco-json-out`` file of the same conversion (boxes are
    rounded to 1/1000 px to undo the float32 noise of normalized coordinates).

    Args:
      patterns: record files: glob(s) or a comma-separated list.
      label_map_path: defaults to ``label_map.pbtxt`` beside the first record file.

    Raises:
      DataError: no matching records, a missing or invalid label map, a
        non-numeric or repeated source_id, a class id not in the label map.
    """
    from tfmask.data.convert import LABEL_MAP_NAME
    from tfmask.config.label_map import read_label_map
    from tfmask.data.records.reader import expand_record_paths, read_examples

    paths = expand_record_paths(patterns)
    if label_map_path is None:
        label_map_path = os.path.join(os.path.dirname(paths[0]), LABEL_MAP_NAME)
        if not os.path.exists(label_map_path):
            raise DataError(label_map_path, "no label map beside the records; give one with "
                            "label_map_path", kind="missing_file", params=("label_map_path",))
    label_map = read_label_map(label_map_path, pixel_suffix=False)
    images: List[dict] = []
    annotations: List[dict] = []
    seen: Dict[int, str] = {}
    for ex in read_examples(paths):
        where = f"example {ex.filename} (source_id {ex.source_id!r})"
        try:
            image_id = int(ex.source_id)
        except ValueError:
            raise DataError(paths[0], f"{where}: source_id is not a number") from None
        if image_id in seen:
            raise DataError(paths[0], f"{where}: source_id {image_id} is also used by "
                            f"{seen[image_id]}; image ids must be unique")
        seen[image_id] = ex.filename
        for cid, name in zip(ex.class_ids.tolist(), ex.class_names):
            if label_map.by_id(cid) is None:
                raise DataError(label_map_path, f"{where} has class id {cid} ('{name}'), "
                                f"which this label map does not define", kind="label_map")
        h, w = ex.size_hw
        boxes = np.clip(np.round(ex.boxes_xyxy_px.astype(np.float64), 3), 0, [w, h, w, h])
        try:
            inst = Instances(ex.masks, boxes, ex.class_ids, ex.class_names, ex.is_crowd)
        except ValueError as exc:
            raise DataError(paths[0], f"{where}: {exc}") from None
        images.append(coco.image_entry(image_id, ex.filename, ex.size_hw))
        annotations.extend(coco.annotation_entries(image_id, inst))
    return {"images": images, "categories": coco.categories(label_map),
            "annotations": [dict(a, id=i) for i, a in enumerate(annotations, start=1)]}


def _read_json(path: PathLike, what: str):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(path, f"no such {what} file", kind="missing_file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not a valid JSON {what} file: {exc}", kind="syntax") from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror}", kind="unreadable") from None


def check_ground_truth(gt: dict, source: Optional[PathLike] = None) -> dict:
    """Validates a COCO ground-truth dict; returns a copy ready for pycocotools.

    Fills ``iscrowd`` (0) and ``area`` (box area) when missing, and numbers the
    annotations 1..N when an id is missing, repeated or 0 (pycocotools treats
    a match with annotation id 0 as no match).
    """
    if not isinstance(gt, dict) or not all(isinstance(gt.get(k), list)
                                           for k in ("images", "annotations", "categories")):
        raise DataError(source, "not a COCO ground-truth file: needs 'images', 'annotations' "
                        "and 'categories' lists")
    gt = copy.deepcopy(gt)
    if not gt["images"]:
        raise DataError(source, "the ground truth has no images")
    try:
        image_ids = {img["id"] for img in gt["images"]}
        cat_ids = {c["id"] for c in gt["categories"]}
        names = [c["name"] for c in gt["categories"]]
    except (KeyError, TypeError) as exc:
        raise DataError(source, f"every image needs an 'id', every category an 'id' and a "
                        f"'name' (missing {exc})") from None
    if len(set(names)) != len(names):
        raise DataError(source, "category names must be unique; per-class results use them")
    ann_ids = [a.get("id") for a in gt["annotations"]]
    renumber = 0 in ann_ids or None in ann_ids or len(set(ann_ids)) != len(ann_ids)
    for i, ann in enumerate(gt["annotations"]):
        if ann.get("image_id") not in image_ids or ann.get("category_id") not in cat_ids:
            raise DataError(source, f"annotations[{i}] refers to image_id "
                            f"{ann.get('image_id')!r} / category_id {ann.get('category_id')!r}"
                            ", which the file does not define")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DataError(source, f"annotations[{i}] needs a 'bbox' [x, y, width, height]")
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(bbox[2]) * float(bbox[3]))
        if renumber:
            ann["id"] = i + 1
    return gt


def read_coco_ground_truth(path: PathLike) -> dict:
    """Reads and validates a COCO ground-truth JSON (see :func:`check_ground_truth`)."""
    return check_ground_truth(_read_json(path, "COCO ground-truth"), path)


def load_ground_truth(source: PathLike, label_map_path: Optional[PathLike] = None) -> dict:
    """Ground truth from a COCO JSON (a ``*.json`` path) or from records (anything else)."""
    if os.fspath(source).lower().endswith(".json"):
        return read_coco_ground_truth(source)
    return ground_truth_from_records(source, label_map_path)


def read_detections(path: PathLike) -> list:
    """Reads a COCO results JSON (a list of detections)."""
    results = _read_json(path, "detections")
    if not isinstance(results, list):
        raise DataError(path, "a COCO results file must hold a JSON list of detections")
    return results


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def prepare_results(gt: dict, results: Sequence[dict], iou_types: Sequence[str] = ("bbox", "segm"),
                    source: Optional[PathLike] = None) -> List[dict]:
    """Validates detections and maps them to ground-truth image ids.

    Returns new dicts with ``image_id``, ``category_id``, ``score`` and the
    ``bbox`` / ``segmentation`` the requested IoU types need.

    Raises:
      DataError (naming ``source``): a ``file_name`` or ``image_id`` not in the
        ground truth, a category not in the ground truth, a malformed field.
    """
    by_name: Dict[str, List[int]] = {}
    by_base: Dict[str, List[int]] = {}
    for img in gt["images"]:
        name = str(img.get("file_name", ""))
        by_name.setdefault(name, []).append(img["id"])
        by_base.setdefault(os.path.basename(name), []).append(img["id"])
    image_ids = {img["id"] for img in gt["images"]}
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    out = []
    for i, r in enumerate(results):
        where = f"detections[{i}]"
        if not isinstance(r, dict):
            raise DataError(source, f"{where} is not a JSON object")
        if "file_name" in r:
            fname = str(r["file_name"])
            ids = by_name.get(fname) or by_base.get(os.path.basename(fname), [])
            if len(ids) != 1:
                sample = ", ".join(sorted(by_name)[:3])
                raise DataError(source, f"{where} has file_name '{fname}', which "
                                + ("is not an image of the ground truth (images: "
                                   f"{sample}{', ...' if len(by_name) > 3 else ''})"
                                   if not ids else "names several ground-truth images"))
            image_id = ids[0]
        else:
            image_id = r.get("image_id")
            if isinstance(image_id, bool) or image_id not in image_ids:
                raise DataError(source, f"{where} has image_id {image_id!r}, which is not an "
                                "image id of the ground truth (and no file_name)")
        cid = r.get("category_id")
        if isinstance(cid, bool) or cid not in cats:
            valid = ", ".join(f"{k} {v}" for k, v in sorted(cats.items()))
            raise DataError(source, f"{where} has category_id {cid!r}, which is not a "
                            f"ground-truth category (valid: {valid})")
        if not _is_number(r.get("score")):
            raise DataError(source, f"{where} needs a finite number 'score'")
        item = {"image_id": image_id, "category_id": cid, "score": float(r["score"])}
        if "bbox" in iou_types:
            bbox = r.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox))):
                raise DataError(source, f"{where} needs a 'bbox' [x, y, width, height] (pixels)")
            item["bbox"] = [float(v) for v in bbox]
        if "segm" in iou_types:
            seg = r.get("segmentation")
            if not (isinstance(seg, dict) and "size" in seg and "counts" in seg):
                raise DataError(source, f"{where} needs a 'segmentation' compressed RLE "
                                "{'size': [H, W], 'counts': str} for mask evaluation")
            item["segmentation"] = seg
        out.append(item)
    return out


def detections_on_records(export_dir: PathLike, patterns, min_score: float = 0.05,
                          progress: bool = False, predictor=None) -> List[dict]:
    """COCO results of an exported model on the images inside records.

    Each result carries the record's ``image/source_id`` as ``image_id`` and
    its ``image/filename``, so it matches :func:`ground_truth_from_records`.
    ``min_score`` is low on purpose: COCO AP integrates over all scores.
    ``predictor``: an already loaded :class:`~tfmask.inference.predictor.Predictor`
    of ``export_dir`` (its ``min_score`` applies).
    """
    from tqdm import tqdm

    from tfmask.inference.infer import coco_results
    from tfmask.inference.predictor import Predictor
    from tfmask.data.records.reader import read_examples

    if predictor is None:
        predictor = Predictor(export_dir, min_score=min_score)
    results: List[dict] = []
    for example in tqdm(read_examples(patterns), desc="detect", unit="img",
                        disable=not progress):
        detections = predictor.predict(example.image())
        results.extend(coco_results(int(example.source_id), example.filename, detections))
    return results
