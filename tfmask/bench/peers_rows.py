"""The peers section's timing rows: tfmask's R50-FPN against torchvision's, per precision,
batch size and the training step, the square frame's cost, and best against best
(:mod:`tfmask.bench.peers`)."""

from __future__ import annotations

import statistics
from typing import Dict, List

from tfmask.bench.common import Row
from tfmask.bench.peers_torchvision import batch_runs

# The goals, as ratios torchvision / tfmask (latency <= 0.6x, step <= 0.8x, best <= 0.4x).
INFERENCE_TARGET, TRAINING_TARGET, BEST_TARGET = 1 / 0.6, 1 / 0.8, 1 / 0.4


def med(values: List[float]) -> float:
    return float(statistics.median(values))


def timing_rows(cfg: dict, tv: dict, threads: int, bf16: bool, ours: Dict[str, dict],
                train_s: Dict[str, List[float]], theirs: dict, square: dict) -> List[Row]:
    """Inference latency per precision and batch size, the training step per precision,
    the square frame's cost (full mode), best against best."""
    rows = []
    same = (f"{cfg['image_hw'][1]}x{cfg['image_hw'][0]} photos at {cfg['infer_size']} px, "
            f"{cfg['test_proposals']} test proposals, {cfg['detections']} detections masked "
            f"(score threshold 0), 2fc-1024 box head, random weights, {threads} threads; "
            "tfmask's frame fitted to the photos")
    for precision, result in ours.items():
        for batch, _ in batch_runs(cfg):
            t_ms, v_ms = result[f"b{batch}_ms"], theirs[f"{precision}_b{batch}_ms"]
            rows.append(Row(
                f"R50-FPN inference latency, batch {batch}, {precision}", med(t_ms), "ms",
                False, med(v_ms), f"torchvision {theirs['torchvision']} maskrcnn_resnet50_fpn"
                + (" (CPU autocast)" if precision == "bfloat16" else ""), INFERENCE_TARGET,
                f"target: <= 0.6x torchvision's latency. {same}; median of {len(t_ms)} runs; "
                f"detections per image {result[f'b{batch}_detections']:.0f} vs "
                f"{theirs[f'{precision}_b{batch}_detections']:.0f}"))
    for precision, steps in train_s.items():
        key = "train_step_s" if precision == "float32" else f"{precision}_train_step_s"
        rows.append(Row(
            f"R50-FPN training step, {cfg['train_size']} px, batch 1"
            + ("" if precision == "float32" else f", {precision}"), 1000 * med(steps), "ms",
            False, 1000 * med(theirs[key]), "torchvision maskrcnn_resnet50_fpn (SGD"
            + (", CPU autocast)" if precision == "bfloat16" else ")"), TRAINING_TARGET,
            f"target: <= 0.8x torchvision's step. Steady state, one example in memory, "
            f"{tv['box_batch_size_per_image']} sampled ROIs, {tv['rpn_post_nms_top_n_train']} "
            f"train proposals, tfmask's frame fitted to the photo; median of {len(steps)} "
            f"steps after {cfg['train_warmup']}"))
    if square:
        rows.append(Row(
            f"R50-FPN inference latency, batch 1, float32, square {cfg['infer_size']} px frame",
            med(square["inference_b1_ms"]), "ms", False, med(theirs["float32_b1_ms"]),
            "torchvision maskrcnn_resnet50_fpn", None,
            "the config's pad_to_max_dimension frame: a quarter of it is padding for 4:3 "
            "photos (torchvision pads a batch to its largest image only)"))
        rows.append(Row(
            f"R50-FPN training step, {cfg['train_size']} px, batch 1, float32, square frame",
            1000 * med(square["train_step_s"]), "ms", False,
            1000 * med(theirs["train_step_s"]), "torchvision maskrcnn_resnet50_fpn (SGD)",
            None, "the config's square frame (pad_to_max_dimension)"))
    best_ours = min((med(r["b1_ms"]), p) for p, r in ours.items())
    best_theirs = min((med(theirs[f"{p}_b1_ms"]), p) for p in
                      (["float32", "bfloat16"] if bf16 else ["float32"]))
    rows.append(Row(
        "R50-FPN inference latency, batch 1, best against best", best_ours[0], "ms", False,
        best_theirs[0], f"torchvision's fastest ({best_theirs[1]})", BEST_TARGET,
        f"target: <= 0.4x. tfmask {best_ours[1]} vs torchvision {best_theirs[1]}"
        + ("" if bf16 else "; without native bfloat16 both are float32")))
    return rows
