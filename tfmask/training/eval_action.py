"""What happens after each evaluation during training.

An Orbit *eval action* (Model Garden's controller calls it with the eval
logs): it keeps the metrics, prints one line, and draws the model's
predictions on the first few eval images into TensorBoard
(``MODEL_DIR/validation``, tag ``predictions``), so a run can be watched
learning masks, not just numbers.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np

from tfmask.annotation import class_names_for
from tfmask.boxes import xyxy_to_xywh, yxyx_to_xyxy
from tfmask.draw import overlay

_SHOWN = ("AP", "AP50", "mask_AP", "mask_AP50")
MIN_SCORE = 0.5  # detections drawn


def float_metrics(logs: Optional[Mapping]) -> Dict[str, float]:
    """The scalar entries of an eval log as floats."""
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
    return out


def _denormalize(images: np.ndarray) -> np.ndarray:
    """Model Garden-normalized float images [B,H,W,3] -> uint8 RGB."""
    from official.vision.ops.preprocess_ops import MEAN_RGB, STDDEV_RGB

    pixels = images * np.asarray(STDDEV_RGB) + np.asarray(MEAN_RGB)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def draw_predictions(images: np.ndarray, outputs: Mapping, class_names: Mapping[int, str],
                     min_score: float = MIN_SCORE) -> List[np.ndarray]:
    """Overlays of a batch of model outputs on the model's own input frames.

    Args:
      images: normalized model inputs [B, H, W, 3] (padded frame).
      outputs: the Mask R-CNN eval outputs: ``detection_boxes`` [B, N, 4]
        pixel [ymin, xmin, ymax, xmax] in the input frame, ``detection_scores``
        [B, N], ``detection_classes`` [B, N], ``num_detections`` [B],
        ``detection_masks`` [B, N, m, m] box-relative probabilities.
      class_names: label-map id -> name.
      min_score: detections below it are not drawn.

    Returns:
      One uint8 RGB image [H, W, 3] per input (the padded model frame).
    """
    from official.vision.ops.mask_ops import paste_instance_masks

    pictures = []
    rgb = _denormalize(np.asarray(images, np.float32))
    for b in range(rgb.shape[0]):
        n = int(outputs["num_detections"][b])
        scores = np.asarray(outputs["detection_scores"][b][:n])
        keep = scores >= min_score
        boxes_yxyx = np.asarray(outputs["detection_boxes"][b][:n])[keep]
        classes = np.asarray(outputs["detection_classes"][b][:n])[keep].astype(int)
        boxes_xyxy = yxyx_to_xyxy(boxes_yxyx)
        if len(boxes_xyxy):
            masks = paste_instance_masks(np.asarray(outputs["detection_masks"][b][:n])[keep],
                                         xyxy_to_xywh(boxes_xyxy), rgb.shape[1],
                                         rgb.shape[2]).astype(bool)
        else:
            masks = np.zeros((0,) + rgb.shape[1:3], bool)
        labels = class_names_for(classes, class_names)
        picture = overlay(rgb[b], masks, boxes_xyxy, labels, scores=scores[keep])
        pictures.append(picture)
    return pictures


class EvalAction:
    """Orbit eval action: keeps metrics, prints a line, writes prediction images.

    Args:
      global_step: the trainer's step variable.
      say: where the line goes.
      predict: ``predict() -> (images, outputs)`` for the first eval
        images, or None to skip drawing (e.g. on non-chief workers).
      class_names: label-map id -> name.
      summary_dir: TensorBoard folder for the images.
      max_images: how many images to draw.
    """

    def __init__(self, global_step, say: Callable[[str], None] = print,
                 predict: Optional[Callable] = None, class_names: Mapping[int, str] = None,
                 summary_dir: Optional[str] = None, max_images: int = 4):
        self.global_step = global_step
        self.say = say
        self.predict = predict
        self.class_names = dict(class_names or {})
        self.summary_dir = summary_dir
        self.max_images = max_images
        self.metrics: Dict[str, float] = {}
        self._writer = None

    def __call__(self, logs: Mapping) -> None:
        step = int(self.global_step.numpy())
        self.metrics = float_metrics(logs)
        shown = "  ".join(f"{k} {self.metrics[k]:.3f}" for k in _SHOWN if k in self.metrics
                          and math.isfinite(self.metrics[k]))
        self.say(f"eval at step {step}: {shown}")
        if self.predict is not None and self.summary_dir and self.max_images > 0:
            self._write_images(step)

    def _write_images(self, step: int) -> None:
        import tensorflow as tf

        images, outputs = self.predict()
        pictures = draw_predictions(images, outputs, self.class_names)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.summary_dir)
        batch = np.stack(pictures[:self.max_images])  # all padded to the model size
        with self._writer.as_default():
            tf.summary.image("predictions", batch, step=step, max_outputs=self.max_images)
        self._writer.flush()
