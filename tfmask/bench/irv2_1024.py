"""Benchmark: the tutorial's model trained at its shipped size on the CPU.

``configs/mask_rcnn_inception_resnet_v2_1024x1024.config`` (Inception-ResNet-v2
+ FPN, 1024x1024) trained by :func:`tfmask.training.loop.train`, as ``tfmask
train`` does, at batch 1 on synthetic 1024x768 photos, with every core. The
changes to the shipped config are the record paths, ``batch_size: 1`` and no
ImageNet checkpoint (random weights: the step time does not depend on them).

* **steps/s**: from Orbit's ``steps_per_second`` train summaries, median of
  the steps after the warm-up (tracing), as :mod:`tfmask.bench.training`;
* **peak RSS**: ``ru_maxrss`` of the section's process (each section runs in
  its own), which holds TensorFlow, the model, its gradients and the
  input pipeline; the end-of-run evaluation on 2 images is included.

Quick mode trains at 256 px. Run it with ``python -m tfmask.bench.common
irv2_1024 WORK_DIR OUT.json [--quick]``.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Dict, List, Optional

from tfmask.bench.common import Row, Section, Timer, peak_rss_mib
from tfmask.bench.input_pipeline import Case, make_records, write_config

IRV2 = Case("IRv2 1024", "mask_rcnn_inception_resnet_v2_1024x1024.config", 6, (768, 1024),
            train_batch=1)


def measure(case: Case, work_dir: Path, size: Optional[int], warmup: int, timed: int) -> Dict:
    """Trains ``case`` ``warmup + timed`` steps (at ``size`` px if given); the figures."""
    from tfmask.bench.training import STEPS_PER_SECOND_TAG, read_scalars, step_seconds
    from tfmask.config import edit
    from tfmask.config import experiment as experiment_lib
    from tfmask.config.textproto import read_text_file, write_text_file
    from tfmask.training import loop

    config = write_config(case, make_records(case, work_dir), work_dir / f"{case.slug}.config")
    msg = read_text_file(config)
    edit.remove_fine_tune_checkpoint(msg)
    if size is not None:
        edit.set_image_size(msg, size)
    write_text_file(config, msg, header=f"tfmask bench (irv2_1024): {case.config}")
    exp = experiment_lib.from_pipeline_config(config)
    model_dir = work_dir / f"train_{case.slug}"
    shutil.rmtree(model_dir, ignore_errors=True)
    steps = warmup + timed
    with Timer() as t:
        loop.train(exp, model_dir, experiment_lib.RunOptions(
            num_train_steps=steps, checkpoint_every_n=steps), say=lambda *_: None)
    seconds = step_seconds(read_scalars(model_dir / "train", STEPS_PER_SECOND_TAG), warmup)
    if not seconds:
        raise RuntimeError(f"no timed steps in {model_dir / 'train'}")
    shutil.rmtree(model_dir, ignore_errors=True)
    step_s = statistics.median(seconds)
    return {"config": case.config, "input_size": list(exp.params.task.model.input_size[:2]),
            "batch": int(exp.params.task.train_data.global_batch_size),
            "warmup_steps": warmup, "step_s": [round(s, 3) for s in seconds],
            "median_step_s": round(step_s, 3), "steps_per_s": 1.0 / step_s,
            "train_wall_s": round(t.seconds, 1), "peak_rss_mib": round(peak_rss_mib(), 1)}


def _rows(got: Dict) -> List[Row]:
    size = "x".join(str(v) for v in got["input_size"])
    return [
        Row(f"tutorial model (IRv2-FPN {size}) training steps/s, batch {got['batch']}, CPU",
            got["steps_per_s"], "steps/s",
            note=f"{got['median_step_s']:.1f} s/step, median of {len(got['step_s'])} steps "
                 f"after {got['warmup_steps']} warm-up; tfmask train on every core; random "
                 "weights"),
        Row(f"tutorial model (IRv2-FPN {size}) training peak RSS, batch {got['batch']}",
            got["peak_rss_mib"], "MiB", higher_is_better=False,
            note="ru_maxrss of the section's process: TensorFlow, model, gradients, input "
                 "pipeline, the final 2-image evaluation"),
    ]


def run(work_dir: Path, quick: bool) -> Section:
    section = Section("irv2_1024")
    got = measure(IRV2, work_dir, 256 if quick else None, warmup=1 if quick else 2,
                  timed=2 if quick else 4)
    section.details[IRV2.name] = got
    section.rows.extend(_rows(got))
    return section
