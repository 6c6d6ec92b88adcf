"""The evaluation page: AP tables, PR curves and the worst images of a ``tfmask eval`` folder.

Reads ``OUT/metrics.json``, ``OUT/pr_curves/*.png`` and ``OUT/detections.json``
(written by ``tfmask eval``) and the ground-truth records named in
``metrics.json`` (or given). AP per class at IoU 0.50, 0.75 and 0.50:0.95 is
recomputed from those detections with pycocotools. Each image's detections
with ``score >= min_score`` are matched to its ground truth by mask IoU >= 0.5
(same class, highest score first): unmatched detections are false positives,
unmatched ground truth are misses. The images with the most errors are shown
with ground truth (misses outlined red, ``MISS``) beside predictions (false
positives outlined red, ``FP``). Run::

    tfmask eval --gt 'dataset/records/val-*' --model runs/tiny/export --output runs/tiny/eval
    tfmask report --eval runs/tiny/eval --out eval_report.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from PIL import Image, ImageDraw

from tfmask.data import coco
from tfmask.annotation import Instances
from tfmask.errors import DataError, PathLike
from tfmask.reporting.dataset import iter_examples
from tfmask.reporting.page import Page, esc, file_uri, image_uri

MATCH_IOU = 0.5
_RED = (230, 20, 20)


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, f"no {what}: is this a `tfmask eval` output folder? (run "
                        "tfmask eval again to write detections.json)", kind="missing_file") \
            from None
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON at line {exc.lineno}: {exc.msg}",
                        kind="bad_annotation") from None


def _ground_truth(patterns, label_map_path: Optional[PathLike]) -> dict:
    """The COCO ground-truth dict of records, read without TensorFlow."""
    from tfmask.config.label_map import read_label_map
    from tfmask.data.records.reader import expand_record_paths

    paths = expand_record_paths(patterns)
    lm_path = Path(label_map_path) if label_map_path else Path(paths[0]).parent / "label_map.pbtxt"
    label_map = read_label_map(lm_path, pixel_suffix=False)
    images, anns = [], []
    for _, ex in iter_examples(paths):
        h, w = ex.size_hw
        boxes = np.clip(np.round(ex.boxes_xyxy_px.astype(np.float64), 3), 0, [w, h, w, h])
        inst = Instances(ex.masks, boxes, ex.class_ids, ex.class_names, ex.is_crowd)
        images.append(coco.image_entry(int(ex.source_id), ex.filename, ex.size_hw))
        anns.extend(coco.annotation_entries(int(ex.source_id), inst))
    return {"images": images, "categories": coco.categories(label_map),
            "annotations": [dict(a, id=i) for i, a in enumerate(anns, start=1)]}


def match_image(gt_anns: List[dict], dets: List[dict]) -> Dict[str, list]:
    """Greedy class-aware matching by mask IoU (see the module docstring).

    Returns:
      ``{"tp": [(det, gt, iou)], "fp": [det], "fn": [gt]}``.
    """
    from pycocotools import mask as mask_utils

    dets = sorted(dets, key=lambda d: -d["score"])
    used = set()
    out = {"tp": [], "fp": [], "fn": []}
    for d in dets:
        cands = [k for k, g in enumerate(gt_anns)
                 if k not in used and g["category_id"] == d["category_id"]]
        best, best_iou = None, MATCH_IOU
        if cands:
            rles = [gt_anns[k]["segmentation"] for k in cands]
            ious = mask_utils.iou([_rle(d["segmentation"])], [_rle(r) for r in rles],
                                  [0] * len(rles))[0]
            for k, iou in zip(cands, np.atleast_1d(ious)):
                if iou >= best_iou:
                    best, best_iou = k, float(iou)
        if best is None:
            out["fp"].append(d)
        else:
            used.add(best)
            out["tp"].append((d, gt_anns[best], best_iou))
    out["fn"] = [g for k, g in enumerate(gt_anns) if k not in used]
    return out


def _rle(seg: dict) -> dict:
    counts = seg["counts"]
    return {"size": seg["size"], "counts": counts.encode("ascii") if isinstance(counts, str)
            else counts}


def _draw(image: np.ndarray, anns: List[dict], names: Dict[int, str], bad: List[bool],
          scores: Optional[List[float]], tag: str) -> np.ndarray:
    from pycocotools import mask as mask_utils
    from tfmask.draw import overlay

    h, w = image.shape[:2]
    masks = np.zeros((len(anns), h, w), bool)
    boxes = np.zeros((len(anns), 4), np.float32)
    for k, a in enumerate(anns):
        masks[k] = mask_utils.decode(_rle(a["segmentation"])).astype(bool)
        x, y, bw, bh = a.get("bbox") or coco_box(masks[k])
        boxes[k] = [x, y, x + bw, y + bh]
    labels = [(f"{tag} " if b else "") + names.get(a["category_id"], "?")
              for a, b in zip(anns, bad)]
    picture = Image.fromarray(overlay(image, masks, boxes, labels, scores))
    draw = ImageDraw.Draw(picture)
    for box, b in zip(boxes, bad):
        if b:
            draw.rectangle([float(box[0]), float(box[1]), float(box[2]) - 1,
                            float(box[3]) - 1], outline=_RED, width=max(2, round(w / 160)))
    return np.asarray(picture)


def coco_box(mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [0.0, 0.0, 1.0, 1.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()),
            float(ys.max() + 1 - ys.min())]


def eval_page(eval_dir: PathLike, out_html: PathLike, gt=None,
              label_map_path: Optional[PathLike] = None, worst: int = 12,
              min_score: float = 0.5) -> Path:
    """Writes the evaluation page of a ``tfmask eval`` folder; returns its path.

    Args:
      eval_dir: the folder ``tfmask eval --output`` wrote.
      out_html: the page to write.
      gt: ground-truth records; default ``metrics.json``'s ``sources.ground_truth``.
      worst: images to show, most errors first.
      min_score: detections below this score are not drawn or counted as errors.

    Raises:
      DataError: a missing or malformed file, or ground truth given as COCO JSON
        (which holds no images to draw).
    """
    from tfmask.evaluation.coco_eval import evaluate_coco

    eval_dir = Path(eval_dir)
    metrics = _read_json(eval_dir / "metrics.json", "metrics.json")
    detections = _read_json(eval_dir / "detections.json", "detections.json")
    gt_source = gt or (metrics.get("sources") or {}).get("ground_truth")
    if not gt_source or str(gt_source).lower().endswith(".json"):
        raise DataError(eval_dir / "metrics.json", "the evaluation's ground truth is not "
                        "records (a COCO JSON holds no images); give --gt RECORDS",
                        kind="invalid")
    gt_dict = _ground_truth(gt_source, label_map_path)
    names = {c["id"]: c["name"] for c in gt_dict["categories"]}
    result = evaluate_coco(gt_dict, detections)
    page = Page(f"Evaluation report: {eval_dir}")
    _ap_tables(page, result, metrics)
    curves = sorted((eval_dir / "pr_curves").glob("*.png"))
    page.section("Precision-recall curves", '<div class="gallery">' + "".join(
        Page.figure(file_uri(p.read_bytes()), p.stem) for p in curves) + "</div>",
        note="IoU 0.50 and 0.75, area all, 100 detections; from tfmask eval")
    _worst_section(page, gt_dict, detections, names, gt_source, worst, min_score)
    out_html = Path(out_html)
    page.write(out_html)
    return out_html


def _ap_tables(page: Page, result, metrics: dict) -> None:
    def f(v):
        return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"

    rows = []
    for k, name in enumerate(result.class_names):
        row = [name]
        for t in ("bbox", "segm"):
            m = result.metrics[t]
            ap50, ap75 = (np.nanmean(m.pr_curves[i][k]) if np.isfinite(m.pr_curves[i][k]).any()
                          else None for i in (0.5, 0.75))
            row += [f(ap50), f(ap75), f(m.per_class[name])]
        rows.append(row)
    overall = ["all"]
    for t in ("bbox", "segm"):
        s = result.metrics[t].stats
        overall += [f(s["AP50"]), f(s["AP75"]), f(s["AP"])]
    header = ["class"] + [f"{t} {i}" for t in ("box", "mask") for i in ("AP50", "AP75",
                                                                          "AP 0.50:0.95")]
    c = result.counts
    page.section("AP per class and IoU", Page.table(header, rows + [overall]),
                 note=f"{c['images']} images, {c['ground_truth']} ground-truth instances, "
                 f"{c['detections']} detections; '-' = no ground truth of that class")


def _worst_section(page, gt_dict, detections, names, gt_source, worst, min_score) -> None:
    by_image: Dict[int, List[dict]] = {}
    for a in gt_dict["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    dets: Dict[int, List[dict]] = {}
    for d in detections:
        if d["score"] >= min_score:
            dets.setdefault(d["image_id"], []).append(d)
    scored = []
    for img in gt_dict["images"]:
        m = match_image(by_image.get(img["id"], []), dets.get(img["id"], []))
        scored.append((len(m["fp"]) + len(m["fn"]), img["id"], m))
    scored.sort(key=lambda s: (-s[0], s[1]))
    chosen = {iid: m for errors, iid, m in scored[:worst]}
    cards = {}
    for _, ex in iter_examples(gt_source):
        iid = int(ex.source_id)
        if iid not in chosen:
            continue
        m = chosen[iid]
        image = ex.image()
        gts = by_image.get(iid, [])
        missed = {id(g) for g in m["fn"]}
        left = _draw(image, gts, names, [id(g) in missed for g in gts], None, "MISS")
        shown = [d for d, _, _ in m["tp"]] + m["fp"]
        right = _draw(image, shown, names, [False] * len(m["tp"]) + [True] * len(m["fp"]),
                      [d["score"] for d in shown], "FP")
        caption = (f"{ex.filename}: {len(m['tp'])} correct, {len(m['fp'])} false positive(s), "
                   f"{len(m['fn'])} miss(es)")
        cards[iid] = (f'<div class="card"><div class="pair"><img src="{image_uri(left)}" '
                      f'alt="ground truth of {esc(ex.filename)}"><img src="{image_uri(right)}" '
                      f'alt="predictions on {esc(ex.filename)}"></div>'
                      f"<div>{esc(caption)}</div></div>")
    body = "".join(cards[iid] for _, iid, _ in scored[:worst] if iid in cards)
    page.section("Worst images", f'<div class="gallery">{body}</div>',
                 note=f"ground truth (left, misses marked MISS) and predictions with score >= "
                 f"{min_score:g} (right, false positives marked FP); matched by mask IoU >= "
                 f"{MATCH_IOU}")
