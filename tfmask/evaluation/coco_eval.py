"""COCO box and mask evaluation of detections against ground truth, via pycocotools.

Ground truth is a COCO ground-truth dict, built from tfmask TFRecords or read
from a COCO JSON such as ``tfmask tfrecord --coco-json-out`` writes (see
:mod:`tfmask.evaluation.inputs`). Detections are a COCO results list, as ``tfmask infer`` writes it::

    {"image_id": 3, "file_name": "a.jpg", "category_id": 1, "score": 0.9,
     "bbox": [x, y, width, height],              # pixels, top-left origin
     "segmentation": {"size": [H, W], "counts": "..."}}   # compressed RLE

A result with a ``file_name`` is matched to the ground-truth image of that
name (its ``image_id`` is then ignored); otherwise its ``image_id`` must be a
ground-truth image id. Run from the command line with ``tfmask eval``; see
:mod:`tfmask.evaluation.outputs` for ``metrics.json`` and the PR-curve plots.

Undefined metrics: pycocotools marks a value it cannot compute (no
ground-truth instance of that class or area range) with ``-1``; tfmask reports
these as ``None`` (JSON ``null``), never as a number, so they cannot be
mistaken for a score. An image without ground truth is fine: its detections
are false positives. With no detections at all, every defined metric is 0.0.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfmask.errors import ConfigError, DataError, PathLike
from tfmask.runlog import third_party_output
from tfmask.evaluation.inputs import (check_ground_truth, ground_truth_from_records,
                                load_ground_truth, prepare_results, read_detections)

IOU_TYPES = ("bbox", "segm")
# COCOeval.stats[0:12], in order.
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl",
             "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
PR_CURVE_IOUS = (0.5, 0.75)  # IoU thresholds of the saved precision-recall curves
_AREA_ALL, _MAXDET_LAST = 0, -1  # COCOeval precision indices: area "all", the largest maxDets
COCO_MAX_DETS = 100  # pycocotools' detections per image for AP (maxDets [1, 10, 100])


def stat_keys(max_dets: int = COCO_MAX_DETS) -> Tuple[str, ...]:
    """:data:`STAT_KEYS` with ``AR100`` named after ``max_dets`` (``AR300``)."""
    return tuple(f"AR{max_dets}" if k == "AR100" else k for k in STAT_KEYS)


# ---------------------------------------------------------------------------
# IoU thresholds

def iou_thresholds(lo: float, hi: float, step: float = 0.05) -> np.ndarray:
    """[T] float64 IoU thresholds ``lo, lo + step, ..., hi`` (both ends included).

    Raises:
      ConfigError: unless ``0 < lo <= hi <= 1``, ``step > 0`` and ``hi - lo``
        is a whole number of steps.
    """
    if not (0 < lo <= hi <= 1) or not step > 0:
        raise ConfigError(f"IoU range {lo}:{hi}:{step} needs 0 < start <= end <= 1 and step > 0")
    n = int(round((hi - lo) / step))
    if abs(lo + n * step - hi) > 1e-6:
        raise ConfigError(f"IoU range {lo}:{hi} is not a whole number of {step} steps")
    return np.round(np.linspace(lo, hi, n + 1), 10)


def parse_iou_range(text: str) -> Tuple[float, float, float]:
    """Parses the ``--iou-range`` flag's text: ``START:END`` (multiples of 0.05) or
    ``START:END:STEP`` (library callers pass ``iou_range`` and ``iou_step`` instead).

    Returns ``(start, end, step)``; raises ConfigError naming the flag.
    """
    example = "e.g. 0.5:0.8 or 0.5:0.95:0.05"
    parts = text.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (2, 3) or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"iou_range '{text}': expected START:END or START:END:STEP, {example}",
                          params=("iou_range",))
    lo, hi = values[:2]
    step = values[2] if len(values) == 3 else 0.05
    if len(values) == 2 and any(abs(v / 0.05 - round(v / 0.05)) > 1e-6 for v in (lo, hi)):
        raise ConfigError(f"iou_range '{text}': START and END must be multiples of 0.05 "
                          f"(or give a step as START:END:STEP), {example}",
                          params=("iou_range",))
    try:
        iou_thresholds(lo, hi, step)
    except ConfigError as exc:
        raise ConfigError(f"iou_range '{text}': {exc}; {example}",
                          params=("iou_range",)) from None
    return lo, hi, step


# ---------------------------------------------------------------------------
# Evaluation

@dataclass
class IouTypeMetrics:
    """The metrics of one IoU type (``bbox`` or ``segm``); ``None`` = undefined.

    Attributes:
      stats: :data:`STAT_KEYS` -> COCO summary value (IoU 0.50:0.95 run).
      per_class: class name -> AP (IoU 0.50:0.95, area all, at most
        ``EvalResult.max_detections`` detections per image).
      mAP_range: mean AP over the requested IoU thresholds.
      per_class_range: class name -> AP over the requested IoU thresholds.
      pr_curves: IoU (0.5, 0.75) -> [K, R] float64 precision of each class
        (label order) at the R=101 recall thresholds, area all, max detections;
        NaN for a class without ground truth.
    """

    stats: Dict[str, Optional[float]]
    per_class: Dict[str, Optional[float]]
    mAP_range: Optional[float]
    per_class_range: Dict[str, Optional[float]]
    pr_curves: Dict[float, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict:
        return dict(self.stats, mAP_range=self.mAP_range, per_class=self.per_class,
                    per_class_range=self.per_class_range)


@dataclass
class EvalResult:
    """Everything ``tfmask eval`` reports.

    Attributes:
      iou_range: (start, end, step) of the ``mAP_range`` thresholds.
      iou_thresholds: those thresholds.
      class_names: ground-truth categories, by ascending id.
      recall_thresholds: [R=101] recall values of the PR curves (0, 0.01, ..., 1).
      counts: ``images``, ``ground_truth`` (annotations, crowd included), ``detections``.
      metrics: IoU type -> :class:`IouTypeMetrics`.
      sources: ``ground_truth`` / ``detections`` paths when known.
      detections: the COCO results evaluated (image ids mapped to the ground
        truth's), saved as ``detections.json`` for ``tfmask report``.
      max_detections: detections per image AP and the last AR count (pycocotools'
        largest ``maxDets``): 100, or the model's detection limit (or the most
        detections of one image) when that is larger, so dense scenes are not capped;
        ``max_detections_reason`` says which ("" for 100).
      warnings: what the user should know about the figures (a model that cannot
        return as many detections as the densest image holds objects).
    """

    iou_range: Tuple[float, float, float]
    iou_thresholds: List[float]
    class_names: List[str]
    recall_thresholds: np.ndarray
    counts: Dict[str, int]
    metrics: Dict[str, IouTypeMetrics]
    sources: Dict[str, str] = field(default_factory=dict)
    detections: List[dict] = field(default_factory=list, repr=False)
    max_detections: int = COCO_MAX_DETS
    max_detections_reason: str = ""
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict (the content of ``metrics.json``)."""
        return {"iou_range": {"start": self.iou_range[0], "end": self.iou_range[1],
                              "step": self.iou_range[2], "thresholds": self.iou_thresholds},
                "counts": self.counts, "classes": self.class_names, "sources": self.sources,
                "max_detections": self.max_detections, "warnings": self.warnings,
                **{t: m.to_dict() for t, m in self.metrics.items()}}


def _mean_valid(values: np.ndarray) -> Optional[float]:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def _stats(ev, precision: np.ndarray, max_dets: int) -> Dict[str, Optional[float]]:
    """The 12 summary values; ``None`` where undefined.

    pycocotools' ``summarize()`` reads its first value (AP) at maxDets 100
    whatever ``params.maxDets`` holds (AP50, AP75, ... use the last entry), so
    AP is taken from ``precision`` ([T, R, K] at area all and the last maxDets).
    """
    values = list(ev.stats)
    values[0] = -1.0 if _mean_valid(precision) is None else _mean_valid(precision)
    return {k: (float(v) if v > -1 else None) for k, v in zip(stat_keys(max_dets), values)}


def _run_cocoeval(coco_gt, coco_dt, iou_type: str, iou_thrs: Optional[np.ndarray] = None,
                  max_dets: int = COCO_MAX_DETS):
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(coco_gt, coco_dt, iou_type)
    ev.params.maxDets = [1, 10, int(max_dets)]  # summarize() reads AP at the last one
    if iou_thrs is not None:
        ev.params.iouThrs = iou_thrs
    ev.evaluate()
    ev.accumulate()
    return ev


def _coco_objects(gt: dict, results: List[dict]):
    """(COCO ground truth, COCO detections); an empty results list is allowed."""
    from pycocotools.coco import COCO

    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    if results:
        return coco_gt, coco_gt.loadRes(results)
    coco_dt = COCO()  # loadRes cannot take an empty list
    coco_dt.dataset = {"images": list(gt["images"]), "categories": gt["categories"],
                       "annotations": []}
    coco_dt.createIndex()
    return coco_gt, coco_dt


def evaluate_coco(gt: dict, results: Sequence[dict],
                  iou_range: Tuple[float, float] = (0.5, 0.95), iou_step: float = 0.05,
                  iou_types: Sequence[str] = IOU_TYPES,
                  results_source: Optional[PathLike] = None,
                  max_detections: Optional[int] = None) -> EvalResult:
    """COCO box and/or mask metrics of ``results`` against ``gt``.

    The summary stats and per-class AP come from pycocotools' standard run
    (IoU 0.50:0.95); ``mAP_range`` from a second run whose ``params.iouThrs``
    are the requested thresholds (skipped when they are the standard ones).
    For mask evaluation each detection's ``bbox`` is dropped so pycocotools
    takes its area (small/medium/large) from the mask, not from the box.
    Neither argument is modified.

    Args:
      gt: COCO ground-truth dict (see :func:`load_ground_truth`).
      results: COCO results; see the module docstring.
      iou_range: (start, end) of the ``mAP_range`` IoU thresholds, inclusive.
      iou_step: their spacing.
      iou_types: any of ``bbox``, ``segm``.
      results_source: the detections file, for error messages.
      max_detections: the model's detection limit (``max_total_detections``),
        if known. AP counts at most ``max(100, max_detections, the most
        detections of one image in results)`` per image (pycocotools' default
        is 100); ``EvalResult.max_detections`` says which.
    """
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise ConfigError(f"unknown IoU type(s) {', '.join(map(repr, unknown)) or '(none)'}; "
                          f"valid: {', '.join(IOU_TYPES)}")
    thrs = iou_thresholds(iou_range[0], iou_range[1], iou_step)
    gt = check_ground_truth(gt)
    if "segm" in iou_types and any("segmentation" not in a for a in gt["annotations"]):
        raise DataError(None, "mask evaluation needs a 'segmentation' in every ground-truth "
                        "annotation")
    prepared = prepare_results(gt, results, iou_types, results_source)
    max_dets, why = _max_detections(prepared, max_detections)
    cat_ids = sorted(c["id"] for c in gt["categories"])
    names = {c["id"]: c["name"] for c in gt["categories"]}
    class_names = [names[c] for c in cat_ids]
    metrics: Dict[str, IouTypeMetrics] = {}
    recall = None
    with third_party_output():  # pycocotools prints progress and tables
        for iou_type in iou_types:
            metrics[iou_type], recall = _iou_type_metrics(gt, prepared, iou_type, thrs,
                                                          max_dets, class_names)
    return EvalResult(
        iou_range=(float(iou_range[0]), float(iou_range[1]), float(iou_step)),
        iou_thresholds=[float(t) for t in thrs], class_names=class_names,
        recall_thresholds=np.asarray(recall, np.float64),
        counts={"images": len(gt["images"]), "ground_truth": len(gt["annotations"]),
                "detections": len(prepared)},
        metrics=metrics, detections=prepared, max_detections=max_dets,
        max_detections_reason="" if max_dets == COCO_MAX_DETS else why)


def _max_detections(prepared: List[dict], max_detections: Optional[int]) -> Tuple[int, str]:
    """(detections AP counts per image, why that many): ``max(100, max_detections, the
    most detections of one image)``."""
    per_image: Dict[int, int] = {}
    for r in prepared:
        per_image[r["image_id"]] = per_image.get(r["image_id"], 0) + 1
    max_dets = max([COCO_MAX_DETS, int(max_detections or 0), *per_image.values()])
    why = ("the model's detection limit" if max_detections and max_dets == max_detections
           else "the most detections of one image")
    return max_dets, why


def _iou_type_metrics(gt: dict, prepared: List[dict], iou_type: str, thrs: np.ndarray,
                      max_dets: int, class_names: List[str]):
    """(:class:`IouTypeMetrics`, pycocotools' recall thresholds) of one IoU type; the
    standard run, then the ``thrs`` run unless they are the standard thresholds."""
    drop = "bbox" if iou_type == "segm" else "segmentation"
    dets = [{k: v for k, v in r.items() if k != drop} for r in copy.deepcopy(prepared)]
    coco_gt, coco_dt = _coco_objects(copy.deepcopy(gt), dets)
    std = _run_cocoeval(coco_gt, coco_dt, iou_type, max_dets=max_dets)
    std.summarize()
    precision = std.eval["precision"][:, :, :, _AREA_ALL, _MAXDET_LAST]  # [T, R, K]
    if len(thrs) == len(std.params.iouThrs) and np.allclose(thrs, std.params.iouThrs):
        prec_range = precision
    else:
        prec_range = _run_cocoeval(coco_gt, coco_dt, iou_type, thrs, max_dets).eval[
            "precision"][:, :, :, _AREA_ALL, _MAXDET_LAST]
    curves = {}
    for iou in PR_CURVE_IOUS:
        t = int(np.flatnonzero(np.isclose(std.params.iouThrs, iou))[0])
        curves[iou] = np.where(precision[t] > -1, precision[t], np.nan).T.astype(np.float64)
    metrics = IouTypeMetrics(
        stats=_stats(std, precision, max_dets),
        per_class={name: _mean_valid(precision[:, :, k]) for k, name in enumerate(class_names)},
        mAP_range=_mean_valid(prec_range),
        per_class_range={name: _mean_valid(prec_range[:, :, k])
                         for k, name in enumerate(class_names)},
        pr_curves=curves)
    return metrics, std.params.recThrs


def evaluate_files(gt_source: PathLike, detections_path: PathLike,
                   label_map_path: Optional[PathLike] = None,
                   iou_range: Tuple[float, float] = (0.5, 0.95), iou_step: float = 0.05,
                   iou_types: Sequence[str] = IOU_TYPES) -> EvalResult:
    """:func:`evaluate_coco` of a detections file against records or a COCO JSON."""
    gt = load_ground_truth(gt_source, label_map_path)
    results = read_detections(detections_path)
    result = evaluate_coco(gt, results, iou_range, iou_step, iou_types,
                           results_source=detections_path)
    result.sources = {"ground_truth": os.fspath(gt_source),
                      "detections": os.fspath(detections_path)}
    return result


def evaluate_model_on_records(export_dir: PathLike, patterns,
                              label_map_path: Optional[PathLike] = None,
                              iou_range: Tuple[float, float] = (0.5, 0.95),
                              iou_step: float = 0.05, iou_types: Sequence[str] = IOU_TYPES,
                              min_score: float = 0.05, progress: bool = False) -> EvalResult:
    """Runs an exported model on the records' images and evaluates it against them."""
    from tfmask.evaluation.inputs import detections_on_records
    from tfmask.inference.predictor import Predictor
    from tfmask.training.records_check import detections_warning

    gt = ground_truth_from_records(patterns, label_map_path)
    predictor = Predictor(export_dir, min_score=min_score)
    results = detections_on_records(export_dir, patterns, min_score, progress,
                                    predictor=predictor)
    limit = predictor.max_detections
    result = evaluate_coco(gt, results, iou_range, iou_step, iou_types,
                           results_source=export_dir, max_detections=limit)
    result.sources = {"ground_truth": str(patterns), "model": os.fspath(export_dir)}
    objects: Dict[int, int] = {}
    for a in gt["annotations"]:
        objects[a["image_id"]] = objects.get(a["image_id"], 0) + 1
    if objects:
        densest = max(objects, key=objects.get)
        names = {img["id"]: img.get("file_name") for img in gt["images"]}
        warning = detections_warning(objects[densest], names.get(densest), limit)
        if warning:
            result.warnings.append(warning)
    return result
