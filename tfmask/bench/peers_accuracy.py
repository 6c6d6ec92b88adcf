"""The accuracy side of the peers section's best against best: what tfmask's faster
inference paths cost in mask AP.

The bundled sample (``dataset/``) is converted and the demo's model trained on it, as
``make demo`` does (:func:`tfmask.demo.train_demo_model`: the tiny CPU config, the
folder's fitted input size and steps; quick mode: 30 steps). The checkpoint is then
exported once per path and each export evaluated on the sample's validation records
(COCO box and mask AP @[.5:.95], ``tfmask eval``'s :func:`evaluate_model_on_records`):

* ``float32``: ``tfmask export``, the reference;
* ``bfloat16``: ``tfmask export --mixed_precision bfloat16`` (only where the CPU has
  native bfloat16), the path the best-against-best row times;
* ``bfloat16_fewer_proposals``: the same with the config's ``first_stage_max_proposals``
  scaled by ``PROPOSAL_FRACTION`` (300 of 1,000, the OD API Mask R-CNN configs' own
  proposal count), the path the fewer-proposals row times.

The issue's bar: mask AP within 1 point (0.01) of float32.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Dict, List

from tfmask.bench.common import Row

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "dataset"
PROPOSAL_FRACTION = 0.3  # 300 of torchvision's and the R50-FPN config's 1,000
AP_POINTS_TARGET = 1.0  # |mask AP - float32 mask AP| <= 1 point
QUICK_TRAIN_STEPS = 30


def _fewer_proposals_config(config: Path, out: Path) -> int:
    """Writes ``out``: ``config`` with ``first_stage_max_proposals`` times
    ``PROPOSAL_FRACTION`` (rounded up); returns the new count."""
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(config)
    key = "model.faster_rcnn.first_stage_max_proposals"
    count = max(1, math.ceil(int(msg.get_path(key)) * PROPOSAL_FRACTION))
    msg.set(key, count)
    write_text_file(out, msg, header=f"tfmask bench (peers accuracy): {config.name} with "
                    f"{count} proposals")
    return count


def fast_path_accuracy(work_dir: Path, quick: bool, bfloat16: bool) -> Dict[str, dict]:
    """Trains the demo's model on the sample and evaluates each path's export.

    Returns:
      path name -> {"mask_AP", "box_AP", "proposals"}, plus "training" ->
      {"steps", "input_size", "proposals"}.
    """
    from tfmask.config.label_map import read_label_map
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.demo import train_demo_model
    from tfmask.demo_plan import plan_demo
    from tfmask.evaluation.coco_eval import evaluate_model_on_records
    from tfmask.config.textproto import read_text_file
    from tfmask.export.exporter import export_model

    plan = plan_demo(SAMPLE, train_steps=QUICK_TRAIN_STEPS if quick else None)
    records = work_dir / "records"
    convert(ConvertConfig(data_dir=str(SAMPLE), output_dir=str(records),
                          instance_mode=plan.instance_mode, val_fraction=0.2, seed=0,
                          class_pixels=plan.class_pixels, write_coco_json=True,
                          progress=False))
    num_classes = len(read_label_map(records / "label_map.pbtxt", pixel_suffix=False).classes)
    config, _ = train_demo_model(records, work_dir, num_classes, plan.train_steps,
                                 plan.input_size)
    proposals = int(read_text_file(config).get_path(
        "model.faster_rcnn.first_stage_max_proposals"))
    paths = {"float32": (config, "float32", proposals)}
    if bfloat16:
        fewer = work_dir / "fewer_proposals.config"
        paths["bfloat16"] = (config, "bfloat16", proposals)
        paths["bfloat16_fewer_proposals"] = (fewer, "bfloat16",
                                             _fewer_proposals_config(config, fewer))
    out: Dict[str, dict] = {"training": {"steps": plan.train_steps,
                                         "input_size": plan.input_size,
                                         "proposals": proposals}}
    for name, (path_config, precision, count) in paths.items():
        export_dir = work_dir / f"export_{name}"
        export_model(path_config, work_dir / "model", export_dir, mixed_precision=precision)
        metrics = evaluate_model_on_records(export_dir, str(records / "val-*"),
                                            records / "label_map.pbtxt").metrics
        out[name] = {"mask_AP": metrics["segm"].stats["AP"] or 0.0,
                     "box_AP": metrics["bbox"].stats["AP"] or 0.0, "proposals": count}
    return out


def ap_drop_points(accuracy: Dict[str, dict], path: str) -> float:
    """|float32 mask AP - ``path``'s| in AP points (x100)."""
    return round(100 * abs(accuracy["float32"]["mask_AP"] - accuracy[path]["mask_AP"]), 2)


def accuracy_rows(accuracy: Dict[str, dict], fewer_b1_ms: List[float], theirs_ms: float,
                  theirs_name: str, fewer_proposals: int, same_proposals: int) -> List[Row]:
    """The AP check of each faster path, and the fewer-proposals latency row (informational:
    not the identical settings)."""
    train = accuracy["training"]
    model = (f"the demo's model (tiny CPU config, {train['input_size']} px) trained "
             f"{train['steps']} steps on the bundled sample, validation records")
    f32 = accuracy["float32"]
    rows = []
    for path, what in (("bfloat16", "bfloat16 export"),
                       ("bfloat16_fewer_proposals", "bfloat16 export, fewer proposals")):
        got = accuracy[path]
        rows.append(Row(
            f"mask AP cost of the {what} (vs float32)", ap_drop_points(accuracy, path),
            "AP points", False, None, "", AP_POINTS_TARGET,
            f"target: within 1 point. {model}: mask AP {got['mask_AP']:.4f} vs float32 "
            f"{f32['mask_AP']:.4f}, box AP {got['box_AP']:.4f} vs {f32['box_AP']:.4f}; "
            f"{got['proposals']} vs {f32['proposals']} test proposals"))
    rows.append(Row(
        f"R50-FPN inference latency, batch 1, bfloat16, {fewer_proposals} test proposals",
        float(statistics.median(fewer_b1_ms)), "ms", False, theirs_ms, theirs_name, None,
        f"not the identical settings: tfmask at {fewer_proposals} test proposals (the OD "
        f"API Mask R-CNN configs' first_stage_max_proposals), torchvision at "
        f"{same_proposals}; its AP cost on the demo's model is the row above. Median of "
        f"{len(fewer_b1_ms)} runs"))
    return rows
