"""torchvision Mask R-CNN ``.pth`` -> tfmask checkpoint folder, without torch.

:func:`convert_pth` reads the state dict with the restricted unpickler
(:mod:`.pth`), builds tfmask's model of the matching architecture
(:mod:`.detector`) from a generated ``pipeline.config`` (:mod:`.configs`),
assigns every tensor (:func:`load_state_dict`: each state-dict key must be
used and each model variable set, shapes must agree) and writes, atomically::

    OUT/ckpt-0.index, ckpt-0.data-00000-of-00001, checkpoint   (tf.train.Checkpoint(model=...))
    OUT/pipeline.config    the full COCO model (90 classes), for tfmask export/infer
    OUT/label_map.pbtxt    torchvision's COCO categories with their COCO ids
    OUT/conversion.json    source, SHA-256, counts, seconds

Layouts: torchvision's class index k is COCO category id k (0 is the
background, 10 ids are unused "N/A"), as Model Garden's index = label-map id;
so no class reordering is needed, only box-delta rows and the fc6 input axis
(:mod:`.heads`). Key names of older torchvision files (``rpn.head.conv.weight``,
``fpn.inner_blocks.0.weight``, ``mask_head.mask_fcn1.weight``) are read as the
current ones, as torchvision's ``_load_from_state_dict`` does.

Example::

    python -c "from tfmask.modeling.torchvision.convert import convert_pth; \\
      convert_pth('maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth', 'pretrained/x', 'v1')"
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from tfmask.atomic import atomic_dir
from tfmask.errors import DataError, PathLike
from tfmask.modeling.torchvision import configs
from tfmask.modeling.torchvision.pth import read_state_dict

_OLD_NAMES = (
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^(rpn\.head\.conv)\.(weight|bias)$"), r"\1.0.0.\2"),
)
_OLD_MASK = re.compile(r"^(roi_heads\.mask_head)\.mask_fcn(\d+)\.(weight|bias)$")
_IGNORED = re.compile(r"\.num_batches_tracked$")


@dataclass
class LoadReport:
    """What :func:`load_state_dict` did.

    Attributes:
      assigned: state-dict keys copied into variables.
      ignored: keys with no role at inference (``num_batches_tracked``).
    """

    assigned: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)


def current_names(state_dict: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Renames older torchvision keys to today's (see the module docstring)."""
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in _OLD_NAMES:
            key = pattern.sub(repl, key)
        m = _OLD_MASK.match(key)
        if m:
            key = f"{m.group(1)}.{int(m.group(2)) - 1}.0.{m.group(3)}"
        out[key] = value
    return out


def load_state_dict(model, state_dict: Dict[str, np.ndarray], source: str = "state dict"
                    ) -> LoadReport:
    """Assigns a torchvision state dict to a built :class:`~.detector.TorchvisionMaskRCNN`.

    Raises:
      DataError: a key the model has no variable for, a variable the file has
        no tensor for, or a shape that differs (naming the first few).
    """
    table = model.torch_params()
    weights = current_names(state_dict)
    report = LoadReport()
    unused = [k for k in weights if k not in table and not _IGNORED.search(k)]
    missing = [k for k in table if k not in weights]
    if unused or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors the model needs are missing (first: "
                         f"{', '.join(missing[:4])})")
        if unused:
            parts.append(f"{len(unused)} tensors have no place in the model (first: "
                         f"{', '.join(unused[:4])})")
        raise DataError(source, "not a torchvision Mask R-CNN R50-FPN "
                        f"{getattr(model, 'version', '')} state dict: " + "; ".join(parts))
    bad = []
    values = []
    for key, (var, to_tf) in table.items():
        value = np.asarray(to_tf(weights[key]), np.float32)
        if tuple(value.shape) != tuple(var.shape.as_list()):
            bad.append(f"{key} {list(weights[key].shape)}")
        values.append((var, value))
    if bad:
        raise DataError(source, f"{len(bad)} tensors have other shapes than the model's "
                        f"(first: {', '.join(bad[:4])}); is it the other version (v1/v2) "
                        "or another number of classes?")
    for var, value in values:
        var.assign(value)
    report.assigned = list(table)
    report.ignored = [k for k in weights if _IGNORED.search(k)]
    return report


def num_classes_of(state_dict: Dict[str, np.ndarray]) -> int:
    """Classes including the background, from ``box_predictor.cls_score``."""
    w = state_dict.get("roi_heads.box_predictor.cls_score.weight")
    if w is None or w.ndim != 2:
        raise DataError(None, "no roi_heads.box_predictor.cls_score.weight: not a torchvision "
                        "Mask R-CNN state dict")
    return int(w.shape[0])


def build_for_config(config_path: PathLike):
    """Translates a pipeline.config, builds its model and creates its variables.

    Returns ``(model, params)``.
    """
    import tensorflow as tf

    from tfmask.config.translate import translate
    from tfmask.export.serving import Preprocessing, detect
    from tfmask.modeling.factory import build_maskrcnn

    params = translate(config_path).params
    model = build_maskrcnn(None, params.task.model)
    prep = Preprocessing.from_model_config(params.task.model)
    detect(model, prep, tf.zeros([1, 64, 64, 3], tf.uint8))  # creates the variables
    return model, params


def convert_pth(pth_path: PathLike, out_dir: PathLike, version: str,
                sha256: Optional[str] = None, min_dimension: int = 800,
                max_dimension: int = 1333) -> dict:
    """Converts a torchvision ``.pth`` into a tfmask checkpoint folder ``out_dir``.

    Args:
      pth_path: the state dict (see :func:`.pth.read_state_dict`).
      out_dir: the folder to write (replaced as a whole when complete).
      version: ``v1`` or ``v2``, the architecture of the file.
      sha256: the file's digest, recorded in ``conversion.json``.
      min_dimension, max_dimension: the resize of the written pipeline.config.

    Returns:
      The conversion record (also ``OUT/conversion.json``).

    Raises:
      DataError: unreadable or unsafe file, or not that architecture.
    """
    import tensorflow as tf

    start = time.perf_counter()
    weights = read_state_dict(pth_path)
    read_s = time.perf_counter() - start
    classes = num_classes_of(weights)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        label_map = tmp / "label_map.pbtxt"
        if classes == len(configs.COCO_CATEGORIES):
            label_map.write_text(configs.coco_label_map_text())
        else:
            label_map.write_text(configs.numbered_label_map_text(classes - 1))
        config = tmp / "pipeline.config"
        config.write_text(configs.pipeline_config_text(
            version, classes - 1, "label_map.pbtxt", min_dimension=min_dimension,
            max_dimension=max_dimension,
            title=f"{Path(pth_path).name} converted by tfmask (torchvision Mask R-CNN "
                  f"R50-FPN {version}, {classes - 1} classes)"))
        model, _ = build_for_config(config)
        report = load_state_dict(model, weights, str(pth_path))
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(tmp),
                                             max_to_keep=1, checkpoint_name="ckpt")
        manager.save(checkpoint_number=0)
        record = {"source": str(pth_path), "sha256": sha256, "version": version,
                  "num_classes": classes, "tensors": len(weights),
                  "assigned": len(report.assigned), "ignored": report.ignored,
                  "read_seconds": round(read_s, 2),
                  "seconds": round(time.perf_counter() - start, 2)}
        (tmp / "conversion.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


__all__ = ["LoadReport", "build_for_config", "convert_pth", "current_names", "load_state_dict",
           "num_classes_of"]
