"""The data section: ``train_input_reader``, ``eval_input_reader`` and ``eval_config``.

Record paths (globs; several ``input_path`` values), batch sizes, the
ground-truth slots per image and the evaluation settings Model Garden has.
Run by :func:`tfmask.config.translate.translate` after the model sections
(``max_num_instances`` is at least the detections kept).
"""

from __future__ import annotations

from typing import List

from tfmask.config.fields import Fields, Ledger
from tfmask.errors import ConfigError

METRICS_SETS = ("coco_detection_metrics", "coco_mask_metrics")


def _input_paths(ex: Ledger, reader: Fields, name: str) -> List[str]:
    paths = reader.sub("tf_record_input_reader").get_all("input_path")
    if not paths:
        raise ConfigError(f"{name}.tf_record_input_reader.input_path is missing")
    return [ex.resolve(p, f"{name}.tf_record_input_reader.input_path") for p in paths]


def data(ex: Ledger) -> None:
    """Input records, batch sizes, instances per image, metrics."""
    train_in, eval_in, eval_cfg = ex.train_in, ex.eval_in, ex.eval_cfg
    max_total = ex.get("task.model.detection_generator.max_num_detections")
    max_instances = max(train_in.get_int("max_number_of_boxes", 100, minimum=1), max_total)
    for reader in (train_in, eval_in):
        reader.expect("load_instance_masks", True)
        reader.expect("mask_type", "PNG_MASKS")
    eval_in.expect("shuffle", False)
    eval_in.expect("num_epochs", 1)
    train_paths = _input_paths(ex, train_in, "train_input_reader")
    eval_paths = (_input_paths(ex, eval_in, "eval_input_reader")
                  if eval_in.has("tf_record_input_reader") else train_paths)
    bad = [m for m in eval_cfg.get_all("metrics_set") if m not in METRICS_SETS]
    if bad:
        raise ConfigError(f"eval_config.metrics_set {bad[0]} is not supported; "
                          f"valid: {', '.join(METRICS_SETS)}")
    eval_cfg.expect("eval_instance_masks", True)
    eval_cfg.expect("use_moving_averages", False)
    ex.update("task", {
        "annotation_file": None,
        # include_metrics_per_category stays unhonoured (listed): Model Garden's
        # per-category COCO metrics need a pycocotools fork and return nothing.
        "per_category_metrics": False})
    ex.update("task.train_data", {
        "input_path": train_paths, "is_training": True, "dtype": "float32",
        "global_batch_size": ex.train.get_int("batch_size", 1, minimum=1),
        "shuffle_buffer_size": 256})
    ex.set("task.train_data.parser.max_num_instances", max_instances)
    ex.set("task.validation_data", {
        "input_path": eval_paths, "is_training": False, "drop_remainder": False,
        "global_batch_size": eval_cfg.get_int("batch_size", 1, minimum=1),
        "dtype": "float32", "parser": {"max_num_instances": max_instances}})
