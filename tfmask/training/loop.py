"""Training and evaluation runs on Model Garden's trainer.

:func:`train` resumes from the newest checkpoint in the model dir (Model
Garden's checkpoint manager), keeps the last K, prints a progress line per
step, stops on a non-finite loss, evaluates COCO box/mask AP on the eval
records every checkpoint interval (prediction images go to TensorBoard),
and - on Ctrl-C or SIGTERM - saves a checkpoint at the
current step before exiting, so stopping training "once the loss is low
enough" (the tutorial's advice) never loses work. :func:`evaluate` is the OD
API's ``--checkpoint_dir`` mode.
"""

from __future__ import annotations

import json
import math
import signal
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from tfmask import engine_private
from tfmask.atomic import atomic_write
from tfmask.errors import DataError, PathLike, TfmaskError
from tfmask.training.ckpt_safety import remove_interrupted_saves
from tfmask.training import distribute
from tfmask.training.eval_action import EvalAction, float_metrics
from tfmask.config.experiment import Experiment, RunOptions, apply_options, save_record
from tfmask.training.progress import ProgressAction
from tfmask.training.records_check import check_records

METRICS_NAME = "metrics.json"


class TrainingInterrupted(TfmaskError):
    """Training was stopped by Ctrl-C/SIGTERM after saving a checkpoint."""

    def __init__(self, step: int, model_dir: str):
        self.step = step
        super().__init__(f"interrupted: checkpoint saved at step {step} in {model_dir}; run "
                         "the same command again to resume")


@dataclass
class TrainResult:
    """What a run did.

    Attributes:
      step: the global step reached.
      history: one dict per logged step (``step``, losses, ``learning_rate``).
      metrics: evaluation metrics (COCO ``AP``, ``AP50``, ``mask_AP``, ...), if run.
      model_dir: where checkpoints, summaries, params.yaml and metrics.json are.
    """

    step: int
    history: List[Dict[str, float]] = field(default_factory=list)
    metrics: Dict[str, float] = field(default_factory=dict)
    model_dir: str = ""


def _prepare_eval(params, n: int, sample_1_of_n: int) -> int:
    """Sizes the eval run from the ``n`` eval records (ground truth comes from them)."""
    if n == 0:
        raise DataError(str(params.task.validation_data.input_path), "eval records are empty")
    n = max(1, n // sample_1_of_n)
    batch = params.task.validation_data.global_batch_size
    params.task.validation_data.num_examples = n
    params.trainer.validation_steps = math.ceil(n / batch)
    return n


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler's stop) behaves like Ctrl-C during training."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _build(exp: Experiment, strategy, logging_dir: str, train: bool,
           say: Callable[[str], None] = print, resume_checkpoint: Optional[str] = None):
    """(task, trainer); ``resume_checkpoint``: a non-chief worker's restore (see the task)."""
    from official.core import train_utils
    from official.modeling import performance

    from tfmask.training.task import MaskRCNNTask

    params = exp.params
    # Model Garden scans the eval records into LOGGING_DIR/annotation.json and
    # reuses an existing file without checking it: a stale one from earlier
    # records would silently give wrong metrics, so it is rebuilt every run.
    stale = Path(logging_dir) / "annotation.json"
    if stale.exists():
        stale.unlink()
    if params.runtime.mixed_precision_dtype:
        performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
    with strategy.scope():
        # logging_dir: with no annotation file the task writes the eval ground
        # truth it scanned from the records there.
        built = {}
        restore = ((lambda: built["trainer"].checkpoint.restore(resume_checkpoint))
                   if resume_checkpoint else None)
        task = MaskRCNNTask(params.task, logging_dir=logging_dir, say=say,
                            restore_instead_of_warm_start=restore)
        trainer = train_utils.create_trainer(params, task, train=train, evaluate=True,
                                             checkpoint_exporter=None)
        built["trainer"] = trainer
    # Frozen parts are set before the first step traces model.trainable_variables.
    parts = trainer.model.checkpoint_items
    for group in exp.frozen_groups:
        if group in parts:
            parts[group].trainable = False
    return task, trainer


def _start(exp: Experiment, opts: RunOptions, say, train: bool = True, strict: bool = False):
    """Options, strategy (first: multi-worker needs it before any TF op), the records
    checked against the limits (:mod:`tfmask.training.records_check`), eval size."""
    apply_options(exp, opts)
    params = exp.params
    strategy = distribute.create_strategy(params)
    distribute.check_batches(params, strategy.num_replicas_in_sync)
    if params.runtime.distribution_strategy != "one_device":
        say(distribute.describe(params, strategy))
    checked = check_records(params, train=train, strict=strict)
    for line in checked.lines:
        say(line)
    n_eval = _prepare_eval(params, checked.eval.examples, opts.sample_1_of_n_eval_examples)
    params.validate()
    params.lock()
    return strategy, n_eval


def train(exp: Experiment, model_dir: PathLike, opts: Optional[RunOptions] = None,
          say: Callable[[str], None] = print, log_every: int = 1,
          strict: bool = False) -> TrainResult:
    """Trains (or resumes) the experiment in ``model_dir``, evaluating every
    checkpoint interval and at the end.

    Before the first step every record is read: a corrupt file is a DataError,
    ``max_number_of_boxes`` is raised to the densest image, and a
    ``max_total_detections`` below it is a warning (an error with ``strict``).

    Raises:
      TrainingInterrupted: after saving a checkpoint on Ctrl-C / SIGTERM.
      NonFiniteLossError: a loss became NaN/Inf (names the step and the term).
    """
    import orbit
    import tensorflow as tf
    from official.core import train_lib

    opts = opts or RunOptions()
    model_dir = str(model_dir)
    strategy, n_eval = _start(exp, opts, say, strict=strict)
    params = exp.params
    _, _, chief = distribute.worker(strategy)
    _say_run_notes(exp, say)
    logging_dir = _logging_dir(exp, model_dir, chief, say)
    latest = tf.train.latest_checkpoint(model_dir)
    # Non-chief workers restore the chief's checkpoint in place of the warm start.
    task, trainer = _build(exp, strategy, logging_dir, train=True, say=say,
                           resume_checkpoint=latest if latest and not chief else None)
    controller_cls = orbit.Controller
    if latest:
        say(f"resuming from {latest}")
        if not chief:
            controller_cls = _resuming_controller(_checkpoint_step(latest))
    total = params.trainer.train_steps
    action = ProgressAction(trainer.global_step, total, say=say, every=log_every)
    evaluated = _eval_action(exp, task, trainer, strategy, chief, logging_dir, say)
    say(f"training to step {total}; checkpoints every {params.trainer.checkpoint_interval} "
        f"steps in {model_dir} (last {params.trainer.max_to_keep} kept); evaluating on "
        f"{n_eval} images every {params.trainer.validation_interval} steps")
    try:
        with _sigterm_as_interrupt(), engine_private.orbit_log_to_absl_only():
            train_lib.run_experiment(
                distribution_strategy=strategy, task=task, mode="train_and_eval",
                params=params, model_dir=model_dir, trainer=trainer,
                train_actions=[action], eval_actions=[evaluated], controller_cls=controller_cls)
    except KeyboardInterrupt:
        raise TrainingInterrupted(_save_now(trainer, model_dir, params), model_dir) from None
    metrics = evaluated.metrics
    result = TrainResult(int(trainer.global_step.numpy()), action.history, metrics, model_dir)
    if chief:
        atomic_write(Path(model_dir) / METRICS_NAME,
                     json.dumps({"step": result.step, "metrics": metrics}, indent=2) + "\n")
    return result


def _say_run_notes(exp: Experiment, say) -> None:
    """Config fields not honoured, translation notes and frozen groups."""
    for name in exp.ignored:
        say(f"warning: {name} is set but not honoured")
    for note in exp.notes:
        say(f"note: {note}")
    if exp.frozen_groups:
        say(f"frozen (not trained in this run): {', '.join(exp.frozen_groups)}")


def _logging_dir(exp: Experiment, model_dir: str, chief: bool, say) -> str:
    """The model dir on the chief (params recorded, debris of a killed save removed);
    a temporary dir on other workers: only the chief writes into the model dir."""
    if not chief:
        return tempfile.mkdtemp(prefix="tfmask-worker-")
    save_record(exp, model_dir)
    for debris in remove_interrupted_saves(model_dir):
        say(f"removed {debris}, left by a run killed while saving a checkpoint")
    return model_dir


def _eval_action(exp: Experiment, task, trainer, strategy, chief: bool, logging_dir: str,
                 say) -> EvalAction:
    """COCO evaluation after every interval; prediction images only where the chief holds
    the whole model (one device or mirrored)."""
    import tensorflow as tf

    params = exp.params
    drawable = chief and isinstance(strategy, (tf.distribute.OneDeviceStrategy,
                                               tf.distribute.MirroredStrategy))
    return EvalAction(
        trainer.global_step, say=say,
        predict=_eval_predictor(task, trainer, params, params.task.eval_images)
        if drawable else None,
        class_names=exp.class_names,
        summary_dir=str(Path(logging_dir) / params.trainer.validation_summary_subdir),
        max_images=params.task.eval_images)


def _save_now(trainer, model_dir: str, params) -> int:
    """Saves a checkpoint at the current step (Ctrl-C / SIGTERM); returns the step."""
    import tensorflow as tf

    manager = tf.train.CheckpointManager(
        trainer.checkpoint, directory=model_dir, max_to_keep=params.trainer.max_to_keep,
        step_counter=trainer.global_step)
    step = int(trainer.global_step.numpy())
    manager.save(checkpoint_number=step)
    return step


def _checkpoint_step(path: str) -> int:
    import tensorflow as tf

    return int(tf.train.load_checkpoint(path).get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE"))


def _resuming_controller(step: int):
    """An Orbit controller for non-chief workers resuming at ``step``.

    Their checkpoint manager (Model Garden gives them an empty temporary dir)
    would otherwise save at the first step after resuming, while the chief
    saves only at the next interval: checkpointing is collective in
    multi-worker training, so the workers must save at the same steps.
    """
    import orbit

    class ResumingController(orbit.Controller):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.checkpoint_manager is not None:
                engine_private.set_last_checkpoint_step(self.checkpoint_manager, step)

    return ResumingController


def _eval_predictor(task, trainer, params, count: int):
    """``predict() -> (images, outputs)`` on the first ``count`` eval images."""
    import tensorflow as tf

    cache = {}

    def predict():
        if "inputs" not in cache:
            images, infos, anchors = [], [], []
            for batch_images, labels in task.build_inputs(params.task.validation_data):
                images.append(batch_images)
                infos.append(labels["image_info"])
                anchors.append(labels["anchor_boxes"])
                if sum(int(i.shape[0]) for i in images) >= count:
                    break
            cache["inputs"] = (
                tf.concat(images, 0)[:count], tf.concat(infos, 0)[:count],
                {k: tf.concat([a[k] for a in anchors], 0)[:count] for k in anchors[0]})
        images, info, anchor_boxes = cache["inputs"]
        out = trainer.model(images, image_shape=info[:, 1, :], anchor_boxes=anchor_boxes,
                            training=False)
        keys = ("detection_boxes", "detection_scores", "detection_classes", "num_detections",
                "detection_masks")
        return images.numpy(), {k: out[k].numpy() for k in keys}

    return predict


def evaluate(exp: Experiment, checkpoint_dir: PathLike, model_dir: PathLike,
             opts: Optional[RunOptions] = None) -> Dict[str, float]:
    """Evaluates the newest checkpoint of ``checkpoint_dir`` on the eval records.

    Metrics are also written to ``MODEL_DIR/metrics.json``.
    """
    import tensorflow as tf

    opts = opts or RunOptions()
    checkpoint = tf.train.latest_checkpoint(str(checkpoint_dir))
    if checkpoint is None:
        raise DataError(str(checkpoint_dir), "no checkpoint found in this folder")
    strategy, _ = _start(exp, opts, print, train=False)
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    task, trainer = _build(exp, strategy, str(model_dir), train=False)
    trainer.checkpoint.read(checkpoint).expect_partial()
    with strategy.scope():
        logs = trainer.evaluate(tf.convert_to_tensor(exp.params.trainer.validation_steps,
                                                     tf.int32))
    metrics = float_metrics(logs)
    atomic_write(Path(model_dir) / METRICS_NAME,
                 json.dumps({"checkpoint": checkpoint, "metrics": metrics}, indent=2) + "\n")
    return metrics
