"""A progress line per step and a guard against non-finite losses.

Used as an Orbit *train action*: Model Garden's trainer calls it with the
step's outputs (losses and learning rate) after every training loop.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, Mapping

import numpy as np

from tfmask.errors import TfmaskError

# Model Garden's Mask R-CNN loss terms, in the order the progress line shows them.
LOSS_TERMS = ("rpn_score_loss", "rpn_box_loss", "frcnn_cls_loss", "frcnn_box_loss",
              "mask_loss")
_SHORT = {"rpn_score_loss": "rpn_obj", "rpn_box_loss": "rpn_box", "frcnn_cls_loss": "cls",
          "frcnn_box_loss": "box", "mask_loss": "mask"}


class NonFiniteLossError(TfmaskError):
    """Training produced a NaN or infinite loss."""


def _fmt_eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressAction:
    """Prints ``step N/T  loss ... lr ... steps/s ETA`` and stops on NaN/Inf.

    Args:
      global_step: the trainer's step variable.
      total_steps: the run's last step.
      say: where lines go.
      every: print one line per this many steps (always the first and last).
    """

    def __init__(self, global_step, total_steps: int, say: Callable[[str], None] = print,
                 every: int = 1):
        self.global_step = global_step
        self.total_steps = total_steps
        self.say = say
        self.every = max(1, every)
        self.history: list = []
        self._start_step = int(global_step.numpy())
        self._t0 = time.perf_counter()

    def __call__(self, output: Mapping) -> None:
        step = int(self.global_step.numpy())
        values: Dict[str, float] = {}
        for key, value in output.items():
            try:
                values[key] = float(np.asarray(value))
            except (TypeError, ValueError):
                continue
        for key in ("total_loss",) + LOSS_TERMS:
            if key in values and not math.isfinite(values[key]):
                raise NonFiniteLossError(
                    f"training stopped: {key} is {values[key]} at step {step}. Lower the "
                    "learning rate, check gradient_clipping_by_norm, or look for broken boxes "
                    "in the records; the last good checkpoint is kept in the model dir")
        self.history.append({"step": step, **values})
        done = step - self._start_step
        if step % self.every and step != self.total_steps and done != 1:
            return
        elapsed = time.perf_counter() - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total_steps - step) / rate if rate > 0 else 0.0
        terms = " ".join(f"{_SHORT[k]} {values[k]:.3f}" for k in LOSS_TERMS if k in values)
        self.say(f"step {step}/{self.total_steps}  loss {values.get('total_loss', float('nan')):.4f}"
                 f" ({terms})  lr {values.get('learning_rate', float('nan')):.5f}  "
                 f"{rate:.2f} steps/s  ETA {_fmt_eta(eta)}")
