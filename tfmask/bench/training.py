"""Benchmark: training step time, tfmask vs raw Model Garden on the same experiment.

For the shipped tiny CPU config and ResNet-50-FPN 640 at batch 1, on records
synthesized by :func:`tfmask.bench.input_pipeline.make_records`, both runs
train the identical Model Garden experiment (the params tfmask translates from
the pipeline.config, with the same run options) for the same number of steps:

* **tfmask**: :func:`tfmask.training.loop.train`, what ``tfmask train`` calls
  (tfmask's task and augmenting parser, progress action, evaluation at the end);
* **raw Model Garden**: ``official.vision.tasks.maskrcnn.MaskRCNNTask`` driven
  by ``official.core.train_lib.run_experiment(mode='train')``.

Both runs write Orbit's ``steps_per_second`` train summary after every loop
(``steps_per_loop`` 1) into ``MODEL_DIR/train``; each value covers the whole
loop (input, step, train actions, summaries), so this reads both the same
way: seconds/step = 1 / steps_per_second, the first ``warmup`` steps (tracing)
dropped, median over the rest. Runs alternate (MG, tfmask, tfmask, MG, ...)
so drift in a shared machine's load cancels.

Run it with ``python -m tfmask.bench.common training WORK_DIR OUT.json [--quick]``.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Dict, List

from tfmask.bench.common import Row, Section, Timer
from tfmask.bench.input_pipeline import R50, TINY, TINY_QUICK, Case, experiment

MAX_OVERHEAD_PERCENT = 5.0
STEPS_PER_SECOND_TAG = "steps_per_second"


def read_scalars(summary_dir: Path, tag: str) -> Dict[int, float]:
    """``{step: value}`` of scalar ``tag`` in every event file under ``summary_dir``.

    Reads both TF2 summaries (value in a tensor proto) and TF1 ``simple_value``;
    a step written twice keeps the last value read.
    """
    import tensorflow as tf

    out: Dict[int, float] = {}
    for path in sorted(Path(summary_dir).rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag != tag:
                    continue
                if value.HasField("tensor"):
                    out[int(event.step)] = float(tf.make_ndarray(value.tensor))
                else:
                    out[int(event.step)] = float(value.simple_value)
    return out


def step_seconds(steps_per_second: Dict[int, float], warmup: int) -> List[float]:
    """Seconds per step for each logged step after ``warmup``, in step order.

    Steps at or before ``warmup`` (tf.function tracing, first batches) and
    non-positive rates are left out.
    """
    return [1.0 / rate for step, rate in sorted(steps_per_second.items())
            if step > warmup and rate > 0]


def _train_tfmask(case: Case, work_dir: Path, model_dir: Path, steps: int) -> None:
    from tfmask.training import loop

    exp, opts = experiment(case, work_dir, steps)
    lines: List[str] = []  # the progress lines are formatted as in `tfmask train`
    loop.train(exp, model_dir, opts, say=lines.append)


def _train_model_garden(case: Case, work_dir: Path, model_dir: Path, steps: int) -> None:
    from official.common import distribute_utils
    from official.core import train_lib
    from official.vision.tasks import maskrcnn

    from tfmask.config.experiment import apply_options

    exp, opts = experiment(case, work_dir, steps)
    apply_options(exp, opts)  # the same trainer settings tfmask applies
    params = exp.params
    params.validate()
    strategy = distribute_utils.get_distribution_strategy(
        distribution_strategy=params.runtime.distribution_strategy,
        num_gpus=params.runtime.num_gpus)
    with strategy.scope():
        task = maskrcnn.MaskRCNNTask(params.task, logging_dir=str(model_dir))
    train_lib.run_experiment(distribution_strategy=strategy, task=task, mode="train",
                             params=params, model_dir=str(model_dir))


RUNNERS = {"tfmask": _train_tfmask, "model_garden": _train_model_garden}


def compare(case: Case, work_dir: Path, warmup: int, timed: int, rounds: int) -> Dict:
    """Seconds/step (after ``warmup``) of each runner, ``rounds`` runs each, ABBA."""
    order = ["model_garden", "tfmask"]
    seconds: Dict[str, List[float]] = {name: [] for name in order}
    wall: Dict[str, List[float]] = {name: [] for name in order}
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            model_dir = work_dir / f"train_{case.slug}_{name}_{r}"
            shutil.rmtree(model_dir, ignore_errors=True)
            with Timer() as t:
                RUNNERS[name](case, work_dir, model_dir, warmup + timed)
            wall[name].append(round(t.seconds, 1))
            rates = read_scalars(model_dir / "train", STEPS_PER_SECOND_TAG)
            got = step_seconds(rates, warmup)
            if len(got) != timed:
                raise RuntimeError(f"{name}: expected {timed} timed steps in "
                                   f"{model_dir / 'train'}, found {len(got)}")
            seconds[name].extend(got)
            shutil.rmtree(model_dir, ignore_errors=True)
    return {"seconds": seconds, "wall_s": wall}


def _case_rows(case: Case, work_dir: Path, warmup: int, timed: int, rounds: int,
               details: Dict) -> List[Row]:
    got = compare(case, work_dir, warmup, timed, rounds)
    ours = statistics.median(got["seconds"]["tfmask"])
    theirs = statistics.median(got["seconds"]["model_garden"])
    overhead = 100.0 * (ours / theirs - 1.0)
    details[case.name] = {
        "config": case.config, "warmup_steps": warmup, "timed_steps_per_run": timed,
        "runs_each": rounds,
        "step_s": {k: [round(s, 4) for s in v] for k, v in got["seconds"].items()},
        "mean_step_s": {k: round(statistics.mean(v), 4) for k, v in got["seconds"].items()},
        # On a shared machine the fastest step is the one least disturbed by load.
        "min_step_s": {k: round(min(v), 4) for k, v in got["seconds"].items()},
        "run_wall_s": got["wall_s"],
    }
    how = (f"median of {len(got['seconds']['tfmask'])} steps per side after {warmup} "
           f"warm-up steps per run, {rounds} run(s) each, alternating")
    return [
        Row(f"training steps/s, {case.name}", 1.0 / ours, "steps/s",
            baseline=1.0 / theirs, baseline_name="raw Model Garden (train_lib.run_experiment)",
            target=1.0 / (1.0 + MAX_OVERHEAD_PERCENT / 100.0),
            note=f"{ours * 1000:.0f} vs {theirs * 1000:.0f} ms/step; {how}; from Orbit's "
                 "steps_per_second train summaries"),
        Row(f"training overhead vs raw Model Garden, {case.name}", overhead, "%",
            higher_is_better=False, target=MAX_OVERHEAD_PERCENT,
            note="100 * (tfmask / Model Garden median step time - 1); negative: tfmask "
                 "faster (noise)"),
    ]


def run(work_dir: Path, quick: bool) -> Section:
    """tfmask vs raw Model Garden step time: tiny (and R50-FPN 640 unless ``quick``)."""
    section = Section("training")
    if quick:
        plan = [(TINY_QUICK, 2, 3, 1)]
    else:
        plan = [(TINY, 3, 12, 2), (R50, 3, 5, 1)]
    for case, warmup, timed, rounds in plan:
        section.rows.extend(_case_rows(case, work_dir, warmup, timed, rounds,
                                       section.details))
    if quick:
        section.details["skipped"] = "R50-FPN 640 (quick mode)"
    return section
