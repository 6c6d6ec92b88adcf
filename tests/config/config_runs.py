"""Shared by the config tests: a tiny record set, and a config trained, exported and inferred.

:func:`records` synthesizes 4 training and 2 validation images (once per
session); :func:`fill_in` writes a config for them the way the tutorial has
users fill one in (``num_classes``, label map, record paths), at a reduced
image size and without a fine-tune checkpoint (tests download nothing);
:func:`train_export_infer` runs the three stages at 2 steps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SIZE = 64  # px: the smallest square the configs' max_level 6 (stride 64) allows
STEPS = 2


@functools.lru_cache(maxsize=None)
def _records(root: str) -> Path:
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import synthesize

    base = Path(root)
    synthesize(base / "data", num_train=6, num_test=1, size_hw=(48, 64), seed=3,
               min_objects=1, max_objects=2, image_format="png")
    convert(ConvertConfig(data_dir=str(base / "data"), output_dir=str(base / "records"),
                          instance_mode="box", val_fraction=2 / 6, workers=1, progress=False))
    return base / "records"


def records(factory) -> Path:
    """Train/val records and ``label_map.pbtxt`` of a 6-image synthetic set (per session)."""
    return _records(str(factory.getbasetemp() / "config_runs"))


def num_classes(records_dir: Path) -> int:
    from tfmask.config.label_map import read_label_map

    return len(read_label_map(records_dir / "label_map.pbtxt", pixel_suffix=False).classes)


def fill_in(text: str, out: Path, records_dir: Path, size: Optional[int] = SIZE,
            checkpoint: Optional[str] = None) -> Path:
    """``text`` filled in as the tutorial says, written to ``out``.

    ``checkpoint`` None removes ``fine_tune_checkpoint``; otherwise it is set
    to that path (the tutorial's zoo checkpoint). ``size`` None keeps the
    config's image size.
    """
    from tfmask.config import edit
    from tfmask.config.textproto import parse_text, write_text_file

    msg = parse_text(text)
    edit.point_at_records(msg, records_dir)
    for reader in ("train_input_reader", "eval_input_reader"):
        msg.set(f"{reader}.label_map_path", str(records_dir / "label_map.pbtxt"))
    msg.set("train_input_reader.tf_record_input_reader.input_path",
            str(records_dir / "train-?????-of-?????"))
    msg.set("eval_input_reader.tf_record_input_reader.input_path",
            str(records_dir / "val-?????-of-?????"))
    edit.set_num_classes(msg, num_classes(records_dir))
    if size is not None:
        edit.set_image_size(msg, size)
    if checkpoint is None:
        edit.remove_fine_tune_checkpoint(msg)
    else:
        msg.set("train_config.fine_tune_checkpoint", checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_file(out, msg)
    return out


@dataclass
class Run:
    step: int
    losses_finite: bool
    export_max_abs_diff: float
    images: int
    detections_json: Path


def train_export_infer(config: Path, work: Path, records_dir: Path) -> Run:
    """``tfmask train`` 2 steps, ``tfmask export``, ``tfmask infer`` on the test image."""
    import json
    import math

    from tfmask.config import experiment
    from tfmask.export.exporter import export_model
    from tfmask.inference.infer import infer
    from tfmask.training import loop

    exp = experiment.from_pipeline_config(config)
    result = loop.train(exp, work / "model", experiment.RunOptions(
        num_train_steps=STEPS, checkpoint_every_n=STEPS), say=lambda line: None)
    losses = [v for row in result.history for k, v in row.items() if "loss" in k]
    exported = export_model(config, work / "model", work / "export")
    summary = infer(work / "export", records_dir.parent / "data" / "test_images",
                    work / "infer", min_score=0.0, progress=False)
    json.loads(Path(summary.detections_json).read_text())
    return Run(result.step, bool(losses) and all(math.isfinite(v) for v in losses),
               max(exported.max_abs_diff.values()), summary.images,
               Path(summary.detections_json))
