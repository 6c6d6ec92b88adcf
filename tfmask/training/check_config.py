"""``tfmask check-config``: a pipeline.config translated, built and stepped once, in seconds.

What a training run would do first, on one synthetic image at a small size:
translate the config (every error a user can get from it, before any work),
build Model Garden's model, read the image through tfmask's real input
pipeline (decoder, augmentation, Model Garden's parser: anchors and targets)
and run one forward and backward pass with the config's losses. Every field
stays as the config sets it except the image size (``size`` px, rounded up
to a multiple of ``2**max_level``), the batch (1) and the record paths (the
synthetic image). The report lists the honoured and unhonoured fields, the
translation's notes and the pass's losses and gradients::

    tfmask check-config --pipeline-config-path configs/mask_rcnn_tiny_cpu.config
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from tfmask.errors import PathLike

DEFAULT_SIZE = 64


@dataclass
class CheckReport:
    """What :func:`check_config` found.

    Attributes:
      config_path: the pipeline.config.
      honoured / ignored / notes: as :class:`tfmask.config.translate.Translation`.
      input_size_hw: the config's model input size.
      checked_size_hw: the size the pass ran at.
      backbone / box_head / mask_head / sampling: what was built (short text).
      losses: loss name -> value of the pass.
      variables_with_gradient: (trainable variables with a finite non-zero
        gradient, trainable variables).
      seconds: wall time of build + pass.
    """

    config_path: str
    honoured: List[str]
    ignored: List[str]
    notes: List[str]
    input_size_hw: Tuple[int, int]
    checked_size_hw: Tuple[int, int]
    backbone: str = ""
    box_head: str = ""
    mask_head: str = ""
    sampling: str = ""
    losses: Dict[str, float] = field(default_factory=dict)
    variables_with_gradient: Tuple[int, int] = (0, 0)
    seconds: float = 0.0

    def lines(self) -> List[str]:
        with_grad, total = self.variables_with_gradient
        out = [f"{self.config_path}: translated, built and stepped once "
               f"({self.checked_size_hw[1]}x{self.checked_size_hw[0]} synthetic image; the "
               f"config trains at {self.input_size_hw[1]}x{self.input_size_hw[0]}), "
               f"{self.seconds:.1f} s",
               f"  model: {self.backbone}; box head {self.box_head}; mask head "
               f"{self.mask_head}", f"  sampling: {self.sampling}",
               "  losses: " + "  ".join(f"{k} {v:.4g}" for k, v in self.losses.items()),
               f"  gradients: {with_grad} of {total} trainable variables",
               f"honoured ({len(self.honoured)}):"]
        out += [f"  {p}" for p in self.honoured]
        out.append(f"not honoured ({len(self.ignored)}):")
        out += [f"  {p}" for p in self.ignored] or ["  (none)"]
        out.append(f"notes ({len(self.notes)}):")
        out += [f"  {n}" for n in self.notes] or ["  (none)"]
        return out


def _synthetic_record(path: Path, size_hw: Tuple[int, int], num_classes: int) -> None:
    """One PNG with two rectangles (classes 1 and 2, or 1 twice), as a TFRecord."""
    import io

    from PIL import Image

    from tfmask.annotation import EncodedImage, Instances, Sample, tight_box_xyxy_px
    from tfmask.data.records.writer import ShardedWriter, build_example

    h, w = size_hw
    rng = np.random.default_rng(0)
    pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    masks = np.zeros((2, h, w), bool)
    masks[0, h // 8:h // 2, w // 8:w // 2] = True
    masks[1, h // 2:h - h // 8, w // 3:w - w // 8] = True
    for m, colour in zip(masks, ((230, 40, 40), (40, 230, 40))):
        pixels[m] = colour
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    ids = np.array([1, min(2, num_classes)], np.int64)
    instances = Instances(masks, np.stack([tight_box_xyxy_px(m) for m in masks]), ids,
                          tuple(f"class{i}" for i in ids))
    sample = Sample(EncodedImage(buf.getvalue(), "png", size_hw, "synthetic.png"), instances, 1)
    with ShardedWriter(path, 1) as writer:
        writer.write(build_example(sample))


def _describe(model_cfg) -> Dict[str, str]:
    head, mask = model_cfg.detection_head, model_cfg.mask_head
    backbone = model_cfg.backbone.get()
    kind = model_cfg.backbone.type + (f"-{backbone.model_id}" if hasattr(backbone, "model_id")
                                      else "")
    return {
        "backbone": f"{kind} + FPN {model_cfg.decoder.fpn.num_filters} (levels "
                    f"{model_cfg.min_level}-{model_cfg.max_level})",
        "box_head": f"{head.num_convs} conv x {head.num_filters} + {head.num_fcs} fc x "
                    f"{head.fc_dims}",
        "mask_head": f"{mask.num_convs} conv x {mask.num_filters}, "
                     f"{model_cfg.mask_roi_aligner.crop_size * 2} px masks",
        "sampling": f"{model_cfg.roi_generator.num_proposals} proposals, "
                    f"{model_cfg.roi_sampler.num_sampled_rois} sampled ROIs, "
                    f"{model_cfg.mask_sampler.num_sampled_masks} sampled masks, "
                    f"{model_cfg.detection_generator.max_num_detections} detections"}


def check_config(config_path: PathLike, size: int = DEFAULT_SIZE,
                 strict: bool = False) -> CheckReport:
    """Translates ``config_path`` and runs one training pass on a synthetic image.

    Args:
      config_path: an OD API pipeline.config.
      size: the square image size of the pass, px (rounded up to a multiple
        of ``2**max_level``).
      strict: fail on fields that are not honoured, as ``tfmask train --strict``.

    Raises:
      DataError, ConfigError: what ``tfmask train`` would refuse the config for.
    """
    from tfmask.config.translate import translate

    t = translate(config_path, strict=strict)
    model_cfg = t.params.task.model
    stride = 2 ** model_cfg.max_level
    side = max(stride, -(-int(size) // stride) * stride)
    report = CheckReport(str(config_path), t.honoured, t.ignored, t.notes,
                         tuple(model_cfg.input_size[:2]), (side, side))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfmask-check-") as tmp:
        params = _resized(config_path, side, Path(tmp))
        record = Path(tmp) / "synthetic"
        _synthetic_record(record, (side, side), model_cfg.num_classes - 1)
        params.task.train_data.input_path = [str(record) + "-00000-of-00001"]
        params.task.train_data.global_batch_size = 1
        params.task.init_checkpoint = ""  # the pass checks shapes, not weights
        report.losses, report.variables_with_gradient = _one_pass(params, tmp)
    report.seconds = time.perf_counter() - start
    for key, value in _describe(params.task.model).items():
        setattr(report, key, value)
    return report


def _resized(config_path: PathLike, side: int, tmp: Path):
    """The experiment of ``config_path`` with its image resizer set to ``side`` px.

    Resized in the config, not in the experiment, so that every setting the
    translation derives from the size (sampler sizes, a backbone's own resize)
    follows it.
    """
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file
    from tfmask.config.translate import translate

    msg = read_text_file(config_path)
    edit.absolute_paths(msg, Path(config_path).resolve().parent)
    edit.set_image_size(msg, side)
    write_text_file(tmp / "pipeline.config", msg)
    return translate(tmp / "pipeline.config").params


def _one_pass(params, logging_dir: str) -> Tuple[Dict[str, float], Tuple[int, int]]:
    import tensorflow as tf
    from official.core import task_factory

    import tfmask.training.task  # noqa: F401  registers tfmask's task and backbones

    task = task_factory.get_task(params.task, logging_dir=logging_dir)
    model = task.build_model()
    images, labels = next(iter(task.build_inputs(params.task.train_data)))
    with tf.GradientTape() as tape:
        outputs = model(images, image_shape=labels["image_info"][:, 1, :],
                        anchor_boxes=labels["anchor_boxes"], gt_boxes=labels["gt_boxes"],
                        gt_classes=labels["gt_classes"], gt_masks=labels["gt_masks"],
                        training=True)
        losses = task.build_losses(outputs=outputs, labels=labels, aux_losses=model.losses)
    variables = model.trainable_variables
    grads = tape.gradient(losses["total_loss"], variables)
    good = sum(1 for g in grads if g is not None and bool(tf.reduce_all(tf.math.is_finite(g)))
               and bool(tf.reduce_any(g != 0)))
    return {k: float(v) for k, v in losses.items()}, (good, len(variables))
