"""Benchmark: the training input pipeline, and whether training ever waits on it.

Two figures per config (the shipped tiny CPU config and ResNet-50-FPN 640 at
batch 1), on records synthesized here (:mod:`tfmask.data.synth` +
:mod:`tfmask.data.convert`):

* **examples/s**: decoded, augmented, target-assigned training examples per
  second out of the dataset tfmask trains on (``MaskRCNNTask.build_inputs``
  with the translated train data config), after a warm-up, with nothing else
  running.
* **real vs cached step time**: the same Model Garden trainer (model,
  optimizer, ``train_step``) steps alternately on the real input iterator and
  on one batch held in memory (``Dataset.from_tensors(batch).repeat()``), in
  blocks; the first steps of each block are dropped (they run on batches
  prefetched during the other block). ``ratio`` = cached / real median step
  time; the target is real <= 1.05x cached, i.e. ratio >= 0.952.

The record/config helpers here are shared with :mod:`tfmask.bench.training`.
Run it with ``python -m tfmask.bench.common input_pipeline WORK_DIR OUT.json
[--quick]``.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tfmask import engine_private
from tfmask.bench.common import Row, Section

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Real step time may be at most this much longer than the cached-batch step time.
MAX_INPUT_SLOWDOWN = 1.05


@dataclass(frozen=True)
class Case:
    """One benchmarked config and the records it trains on.

    Attributes:
      name: label used in row names (``tiny``, ``R50-FPN 640``).
      config: the shipped pipeline.config it starts from.
      num_images: synthesized labelled images (a few go to the val split).
      size_hw: (height, width) of the synthesized photos, px.
      train_batch: train_config.batch_size override (None: the config's).
    """

    name: str
    config: str
    num_images: int
    size_hw: Tuple[int, int]
    train_batch: Optional[int] = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


TINY = Case("tiny", "mask_rcnn_tiny_cpu.config", 32, (192, 256))
TINY_QUICK = Case("tiny", "mask_rcnn_tiny_cpu.config", 12, (96, 128))
R50 = Case("R50-FPN 640", "mask_rcnn_resnet50_fpn_640x640.config", 64, (384, 512),
           train_batch=1)


def make_records(case: Case, work_dir: Path) -> Path:
    """Synthesizes and converts ``case``'s records once; later calls reuse them.

    Returns the records folder (``train-*``, ``val-*`` and ``label_map.pbtxt``).
    """
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import synthesize

    root = work_dir / f"records_{case.slug}_{case.num_images}_{case.size_hw[1]}x{case.size_hw[0]}"
    records = root / "records"
    if (records / "label_map.pbtxt").exists() and list(records.glob("val-*")):
        return records
    synthesize(root / "data", num_train=case.num_images, num_test=0, size_hw=case.size_hw,
               seed=1, min_objects=1, max_objects=4, overwrite=True)
    # A small val split: the tfmask run evaluates once at its end.
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(records),
                          instance_mode="box", val_fraction=2.5 / case.num_images,
                          progress=False))
    return records


def write_config(case: Case, records: Path, out: Path) -> Path:
    """The shipped config pointed at ``records``, with the case's batch size."""
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(CONFIGS / case.config)
    edit.point_at_records(msg, records)
    if case.train_batch is not None:
        edit.set_batch_size(msg, case.train_batch)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_file(out, msg, header=f"tfmask bench: {case.config}")
    return out


def experiment(case: Case, work_dir: Path, steps: int = 100):
    """``(Experiment, RunOptions)`` tfmask would train for ``case``: the translated
    pipeline.config with ``steps`` train steps, checkpointing only at the end."""
    from tfmask.config import experiment as experiment_lib

    cfg = write_config(case, make_records(case, work_dir), work_dir / f"{case.slug}.config")
    exp = experiment_lib.from_pipeline_config(cfg)
    opts = experiment_lib.RunOptions(num_train_steps=steps, checkpoint_every_n=steps)
    return exp, opts


# --- measurements ----------------------------------------------------------

def examples_per_second(task, data_params, warmup_batches: int, batches: int) -> float:
    """Examples/s out of ``task.build_inputs(data_params)`` after ``warmup_batches``."""
    dataset = task.build_inputs(data_params)
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    examples = 0
    for _ in range(batches):
        images, _ = next(iterator)
        examples += int(images.shape[0])
    return examples / (time.perf_counter() - start)


def alternate_step_times(trainer, iterators: Dict[str, object], rounds: int, block: int,
                         drop: int) -> Dict[str, List[float]]:
    """Seconds per ``trainer.train(1)``, alternating between ``iterators`` in blocks.

    Each round runs ``block`` steps on each iterator in turn (the order flips
    every round, ABBA, so drift cancels); the first ``drop`` steps of each
    block are not kept: they may run on batches prefetched while the other
    iterator was in use.
    """
    import tensorflow as tf

    names = list(iterators)
    times: Dict[str, List[float]] = {n: [] for n in names}
    one = tf.constant(1, tf.int32)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            # Same element spec: the trainer's compiled train loop stays in use.
            engine_private.set_train_iterator(trainer, iterators[name])
            for i in range(block):
                start = time.perf_counter()
                trainer.train(one)
                trainer.global_step.numpy()  # the step is done
                if i >= drop:
                    times[name].append(time.perf_counter() - start)
    return times


def real_vs_cached(exp, opts, work_dir: Path, rounds: int, block: int,
                   drop: int) -> Dict[str, List[float]]:
    """Step times on the real iterator and on a cached batch, same trainer."""
    import tensorflow as tf
    from official.core import task_factory, train_utils

    from tfmask.training import distribute
    from tfmask.config.experiment import apply_options

    apply_options(exp, opts)
    params = exp.params
    strategy = distribute.create_strategy(params)
    with strategy.scope():
        task = task_factory.get_task(params.task, logging_dir=str(work_dir))
        trainer = train_utils.create_trainer(params, task, train=True, evaluate=False,
                                             checkpoint_exporter=None)
    batch = next(iter(task.build_inputs(params.task.train_data)))
    cached = trainer.distribute_dataset(tf.data.Dataset.from_tensors(batch).repeat())
    iterators = {"real": iter(trainer.train_dataset), "cached": iter(cached)}
    with strategy.scope():
        # One untimed round traces the train loop for both iterators.
        alternate_step_times(trainer, iterators, rounds=1, block=1, drop=1)
        return alternate_step_times(trainer, iterators, rounds, block, drop)


def _case_rows(case: Case, work_dir: Path, quick: bool, details: Dict) -> List[Row]:
    from official.core import task_factory

    exp, opts = experiment(case, work_dir)
    data = exp.params.task.train_data
    task = task_factory.get_task(exp.params.task, logging_dir=str(work_dir))
    heavy = case.name != TINY.name
    warmup, batches = (2, 6) if quick else ((4, 20) if heavy else (10, 60))
    rate = examples_per_second(task, data, warmup, batches)
    rounds, block, drop = (2, 3, 1) if quick else ((2, 3, 1) if heavy else (4, 8, 2))
    times = real_vs_cached(exp, opts, work_dir, rounds, block, drop)
    real, cached = statistics.median(times["real"]), statistics.median(times["cached"])
    batch = data.global_batch_size
    details[case.name] = {
        "config": case.config, "train_batch": batch, "images": case.num_images,
        "image_size_wh": [case.size_hw[1], case.size_hw[0]],
        "examples_per_s_measured_over_batches": batches,
        "step_s_real": [round(t, 4) for t in times["real"]],
        "step_s_cached": [round(t, 4) for t in times["cached"]],
        "training_consumes_examples_per_s": round(batch / real, 3),
        "input_headroom_x": round(rate / (batch / real), 2),
    }
    return [
        Row(f"input pipeline, {case.name}", rate, "examples/s",
            note=f"decoded + augmented + target-assigned, batch {batch}, after {warmup} "
                 f"warm-up batches; training consumes {batch / real:.2f} examples/s"),
        Row(f"train step on real records, {case.name}", real * 1000.0, "ms",
            higher_is_better=False, baseline=cached * 1000.0,
            baseline_name="same trainer on a cached in-memory batch",
            target=1.0 / MAX_INPUT_SLOWDOWN,
            note=f"median of {len(times['real'])} vs {len(times['cached'])} steps, "
                 f"{rounds} alternating rounds of {block} (first {drop} dropped); "
                 "ratio = cached / real"),
    ]


def run(work_dir: Path, quick: bool) -> Section:
    """Input examples/s and real-vs-cached step time, tiny (and R50 unless ``quick``)."""
    section = Section("input_pipeline")
    for case in ([TINY_QUICK] if quick else [TINY, R50]):
        section.rows.extend(_case_rows(case, work_dir, quick, section.details))
    return section
