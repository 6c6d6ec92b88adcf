"""The one place tfmask touches private attributes of Orbit and TF Model Garden.

Each function names the private attribute, what tfmask needs from it and why
no public hook does the job (checked against orbit and tf-models-official
2.20 and TensorFlow 2.20's ``CheckpointManager``). Keeping them here means an
upgrade that renames one breaks one small module, and ``grep`` finds every
such use. Nothing else in tfmask reads or writes a leading-underscore name of
those libraries.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, Tuple


@contextmanager
def orbit_log_to_absl_only() -> Iterator[None]:
    """Orbit's train/eval log lines go to absl's log only, not to stdout.

    ``orbit.controller._log`` prints each train/eval summary to stdout as well
    as logging it, and Orbit has no option to turn the print off; tfmask
    prints its own progress line, so Orbit's copy is sent to absl's log. An
    Orbit without ``_log`` is left alone.
    """
    import orbit.controller as orbit_controller
    from absl import logging as absl_logging

    original = getattr(orbit_controller, "_log", None)
    if original is None:
        yield
        return
    orbit_controller._log = absl_logging.info
    try:
        yield
    finally:
        orbit_controller._log = original


def set_last_checkpoint_step(checkpoint_manager, step: int) -> None:
    """Tells ``checkpoint_manager`` that a checkpoint was saved at ``step``.

    ``CheckpointManager`` decides when the next interval save is due from
    ``_last_checkpoint_step``, which it only initializes from checkpoints in
    its own directory. Model Garden gives non-chief workers an empty
    temporary directory, so without this they would save at the first step
    after resuming while the chief waits for the next interval, and
    checkpointing is collective in multi-worker training. The manager's
    constructor takes no such argument.
    """
    checkpoint_manager._last_checkpoint_step = step  # noqa: SLF001


def set_train_iterator(trainer, iterator) -> None:
    """Makes an Orbit ``StandardTrainer`` draw its next steps from ``iterator``.

    ``StandardTrainer`` creates its iterator once, into ``_train_iter``; the
    benchmark alternates between two iterators with the same element spec so
    both run through the same compiled train loop. Orbit's public
    ``train(num_steps)`` takes no iterator.
    """
    trainer._train_iter = iterator  # noqa: SLF001


def box_outputs(model, images, image_shape, anchors: Dict) -> Tuple[Dict, Dict]:
    """Model Garden Mask R-CNN's box branch: ``(outputs, model_outputs)``.

    ``MaskRCNNModel._call_box_outputs`` runs the backbone, decoder, RPN, box
    head and detection generator without the mask branch; tfmask's serving
    graph then runs the mask head on surviving detections only. The public
    ``call`` always runs the mask head on every one of ``max_num_detections``
    boxes.
    """
    return model._call_box_outputs(  # noqa: SLF001
        images=images, image_shape=image_shape, anchor_boxes=anchors, training=False)
