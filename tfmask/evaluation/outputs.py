"""Files and text of an evaluation: ``metrics.json``, PR-curve PNGs, the summary table.

Layout of ``OUT`` (written by :func:`write_eval_outputs`)::

    OUT/metrics.json                 EvalResult.to_dict(); undefined values are null
    OUT/pr_curves/bbox_<class>.png   box precision-recall at IoU 0.50 and 0.75
    OUT/pr_curves/segm_<class>.png   mask precision-recall at IoU 0.50 and 0.75
    OUT/detections.json              the detections evaluated (COCO results, ground-truth
                                     image ids), for ``tfmask report --eval OUT``

Every file is written atomically; ``metrics.json`` is written last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from tfmask.atomic import atomic_path, atomic_write
from tfmask.errors import PathLike
from tfmask.evaluation.coco_eval import COCO_MAX_DETS, PR_CURVE_IOUS, EvalResult

METRICS_NAME = "metrics.json"
PR_DIR_NAME = "pr_curves"
DETECTIONS_NAME = "detections.json"
_TYPE_TITLES = {"bbox": "box", "segm": "mask"}


@dataclass(frozen=True)
class EvalOutputs:
    """Paths written by :func:`write_eval_outputs`."""

    metrics_json: Path
    pr_curves: List[Path]


def _file_stems(class_names: List[str]) -> List[str]:
    """File-name-safe, unique stems of class names (``my cup`` -> ``my_cup``)."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", n).strip("._") or "class" for n in class_names]
    return [s if stems.count(s) == 1 else f"{s}_{i + 1}" for i, s in enumerate(stems)]


def plot_pr_curve(path: PathLike, recall: np.ndarray, curves: Dict[float, np.ndarray],
                  title: str) -> None:
    """Writes one PNG of precision ([R] per IoU; NaN = undefined) over recall [R]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.0), dpi=100)
    FigureCanvasAgg(fig)  # Agg, whatever the user's default backend is
    ax = fig.add_subplot()
    defined = False
    for iou, precision in curves.items():
        if np.isfinite(precision).all():
            ax.plot(recall, precision, label=f"IoU {iou:.2f}")
            defined = True
    if defined:
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "no ground-truth instances", ha="center", va="center")
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="recall", ylabel="precision", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_eval_outputs(result: EvalResult, out_dir: PathLike) -> EvalOutputs:
    """Writes ``metrics.json`` and one PR-curve PNG per class and IoU type."""
    out_dir = Path(out_dir)
    plots = []
    stems = _file_stems(result.class_names)
    for iou_type, m in result.metrics.items():
        for k, (name, stem) in enumerate(zip(result.class_names, stems)):
            path = out_dir / PR_DIR_NAME / f"{iou_type}_{stem}.png"
            ap = m.per_class[name]
            title = (f"{name}: {_TYPE_TITLES[iou_type]} AP {_fmt(ap)} (area all, "
                     f"{result.max_detections} dets)")
            plot_pr_curve(path, result.recall_thresholds,
                          {iou: m.pr_curves[iou][k] for iou in PR_CURVE_IOUS}, title)
            plots.append(path)
    atomic_write(out_dir / DETECTIONS_NAME, json.dumps(result.detections) + "\n")
    metrics = out_dir / METRICS_NAME
    atomic_write(metrics, json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    return EvalOutputs(metrics, plots)


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(result: EvalResult) -> str:
    """The summary ``tfmask eval`` prints: box/mask AP, AP50, AP75, range mAP, per class.

    ``-`` marks an undefined value (no ground truth for it).
    """
    types = list(result.metrics)
    lo, hi, _ = result.iou_range
    rows = [("AP", lambda m: m.stats["AP"]), ("AP50", lambda m: m.stats["AP50"]),
            ("AP75", lambda m: m.stats["AP75"]),
            (f"mAP@{lo:.2f}:{hi:.2f}", lambda m: m.mAP_range)]
    rows += [(f"  {name}", lambda m, n=name: m.per_class[n]) for name in result.class_names]
    width = max(len(r[0]) for r in rows + [("per-class AP", None)]) + 2
    head = "".ljust(width) + "".join(_TYPE_TITLES[t].rjust(8) for t in types)
    lines = [head]
    for i, (label, get) in enumerate(rows):
        if i == 4:
            lines.append("per-class AP")
        lines.append(label.ljust(width) + "".join(_fmt(get(result.metrics[t])).rjust(8)
                                                  for t in types))
    c = result.counts
    lines.append(f"{c['images']} image(s), {c['ground_truth']} ground-truth instance(s), "
                 f"{c['detections']} detection(s)")
    if result.max_detections != COCO_MAX_DETS:
        lines.append(f"AP and AR{result.max_detections} count up to {result.max_detections} "
                     f"detections per image (maxDets raised from COCO's {COCO_MAX_DETS} to "
                     f"{result.max_detections_reason})")
    lines.extend(f"warning: {w}" for w in result.warnings)
    return "\n".join(lines)
