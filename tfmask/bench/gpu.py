"""GPU benchmark: training images/s at 1024 px with mixed precision, exported latency.

Runs only where TensorFlow sees a GPU; elsewhere the section records why it
was skipped. For ResNet-50-FPN (the shipped 640 config resized to 1024) and
Inception-ResNet-v2 (the shipped 1024 config), both from random weights
(throughput does not depend on them): ``tfmask.training.loop.train`` for a
few steps with ``mixed_precision=float16`` on one GPU, images/s from Orbit's
``steps_per_second`` summaries times the batch size after warm-up; then the
checkpoint is exported with ``tfmask export`` and its batch-1 latency taken
on 1024x768 photos. Every figure is recorded with the device name.

:func:`measure_case` is the whole measurement for one config; the tests run
it on the CPU with the tiny config and float32 so the code path is exercised
where no GPU is lent.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional

from tfmask.bench.common import Row, Section, Timer
from tfmask.bench.input_pipeline import Case, make_records, write_config

R50_1024 = Case("R50-FPN 1024", "mask_rcnn_resnet50_fpn_640x640.config", 64, (768, 1024),
                train_batch=8)
IRV2_1024 = Case("Inception-ResNet-v2 1024", "mask_rcnn_inception_resnet_v2_1024x1024.config",
                 64, (768, 1024), train_batch=4)


def gpu_names() -> List[str]:
    """Names of the GPUs TensorFlow sees (empty on a CPU-only machine)."""
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


def _config(case: Case, records: Path, out: Path, size: Optional[int]) -> Path:
    """:func:`write_config`'s config, resized to ``size`` px (square) and from random weights."""
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(write_config(case, records, out))
    if size is not None:
        edit.set_image_size(msg, size)
    edit.remove_fine_tune_checkpoint(msg)
    write_text_file(out, msg, header=f"tfmask bench (gpu): {case.config}")
    return out


def measure_case(case: Case, work_dir: Path, size: Optional[int], mixed_precision: str,
                 warmup: int, timed: int, latency_runs: int) -> Dict:
    """Trains ``warmup + timed`` steps, exports, times the export; returns the figures."""
    from tfmask.bench.inference import _latency, _tfmask_runner
    from tfmask.bench.training import STEPS_PER_SECOND_TAG, read_scalars, step_seconds
    from tfmask.export.exporter import export_model
    from tfmask.inference.predictor import read_image
    from tfmask.config import experiment as experiment_lib
    from tfmask.training import loop

    records = make_records(case, work_dir)
    config = _config(case, records, work_dir / f"gpu_{case.slug}.config", size)
    exp = experiment_lib.from_pipeline_config(config)
    gpus = 1 if gpu_names() else 0
    opts = experiment_lib.RunOptions(
        num_train_steps=warmup + timed, checkpoint_every_n=warmup + timed,
        num_gpus=gpus, mixed_precision=mixed_precision)
    model_dir = work_dir / f"gpu_train_{case.slug}"
    shutil.rmtree(model_dir, ignore_errors=True)
    with Timer() as t:
        loop.train(exp, model_dir, opts, say=lambda *_: None)
    batch = int(exp.params.task.train_data.global_batch_size)
    seconds = step_seconds(read_scalars(model_dir / "train", STEPS_PER_SECOND_TAG), warmup)
    if not seconds:
        raise RuntimeError(f"no timed steps in {model_dir / 'train'}")
    step_s = statistics.median(seconds)
    export = export_model(config, str(model_dir), work_dir / f"gpu_export_{case.slug}")
    run = _tfmask_runner(Path(export.saved_model_dir))
    photos = sorted((records.parent / "data" / "train_images").iterdir())[:4]
    latency = _latency(run, [read_image(p) for p in photos], latency_runs, warmup=2)
    return {"batch": batch, "step_s": step_s, "images_per_s": batch / step_s,
            "timed_steps": len(seconds), "train_wall_s": round(t.seconds, 1),
            "input_size": list(exp.params.task.model.input_size[:2]),
            "mixed_precision": mixed_precision, "latency": latency}


def _rows(name: str, got: Dict, device: str) -> List[Row]:
    size = "x".join(str(v) for v in got["input_size"])
    return [
        Row(f"{name}: training images/s ({got['mixed_precision']}, batch {got['batch']})",
            got["images_per_s"], "img/s",
            note=f"{device}; input {size}; median of {got['timed_steps']} steps; random "
                 "weights"),
        Row(f"{name}: exported latency, batch 1 (median)", got["latency"]["median_ms"], "ms",
            higher_is_better=False,
            note=f"{device}; p90 {got['latency']['p90_ms']:.1f} ms; tfmask export "
                 f"(mask head on {got['latency']['mean_num_detections']:.0f} survivors)"),
    ]


def run(work_dir: Path, quick: bool) -> Section:
    names = gpu_names()
    section = Section("gpu", details={"devices": names})
    if not names:
        section.details["skipped"] = "no GPU visible to TensorFlow on this machine"
        return section
    device = names[0]
    cases = [(R50_1024, 1024), (IRV2_1024, None)]
    if quick:
        cases = [(replace(R50_1024, num_images=8, train_batch=2), 512)]
    for case, size in cases:
        got = measure_case(case, work_dir, size, "float16", warmup=3 if quick else 5,
                           timed=3 if quick else 20, latency_runs=5 if quick else 30)
        section.details[case.name] = got
        section.rows.extend(_rows(case.name, got, device))
    return section
