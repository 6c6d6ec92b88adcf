"""The fine-tune section: ``fine_tune_checkpoint`` and what trains, checked before any work.

A Model Garden or tfmask checkpoint, or for Inception-ResNet-v2 the Keras
ImageNet ``.h5`` of ``make pretrained``, becomes Model Garden's
``init_checkpoint`` (restored by :mod:`tfmask.training.warm_start`).
Checkpoints of the OD API itself — what the tutorial tells users to download,
e.g. the TF2 zoo's ``mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8/
checkpoint/ckpt-0`` or a TF1 zoo ``model.ckpt`` — are refused here, at
translation, with what they are, why tfmask cannot restore them and what to
use instead: recognised by their content when the files exist (a TF1
name-based checkpoint, or a TF2 one whose object graph is the OD API's
``FasterRCNNMetaArch``: ``model/_feature_extractor/...``), else by the zoo's
folder and file names.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from tfmask.config.fields import Ledger
from tfmask.config.train_config import frozen_groups
from tfmask.errors import ConfigError

FINE_TUNE_TYPES = {"classification": "backbone", "detection": "all", "full": "all"}
_TF2_ZOO = re.compile(r"[A-Za-z0-9_]+_coco17_(gpu|tpu)-\d+")
_TF1_ZOO = re.compile(r"[A-Za-z0-9_]+_coco_20\d\d_\d\d_\d\d")
_TF1_PREFIX = re.compile(r"(^|[/\\])model\.ckpt(-\d+)?$")
# Object-graph paths only the OD API's detection models have.
_OD_API_KEYS = ("model/_feature_extractor", "model/_box_predictor",
                "model/_first_stage_box_predictor", "model/_mask_rcnn_box_predictor")
_TAILS = {"inception_resnet_v2": ("Inception-ResNet-v2", "Mixed_7a, the block8 repeats and "
                                                         "Conv2d_7b"),
          "resnet": ("ResNet", "conv5")}
_IRV2_H5 = ("pretrained/inception_resnet_v2_imagenet/"
            "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5")


def fine_tune(ex: Ledger) -> None:
    """``fine_tune_checkpoint`` (+ type) -> ``init_checkpoint``; frozen groups."""
    train = ex.train
    ex.extras["frozen_groups"] = frozen_groups(train)
    # The base experiment points init_checkpoint at a cloud bucket; tfmask
    # never downloads at run time, so it starts empty unless configured.
    ex.update("task", {"init_checkpoint": "", "init_checkpoint_modules": "all"})
    ckpt = train.get("fine_tune_checkpoint")
    if not ckpt:
        train.get("from_detection_checkpoint")  # no checkpoint: no effect in the OD API either
        return
    if train.has("fine_tune_checkpoint_type") or not train.has("from_detection_checkpoint"):
        ckpt_type = train.get_name("fine_tune_checkpoint_type", "detection")
    else:  # TF1 configs: from_detection_checkpoint true = a detection checkpoint
        ckpt_type = ("detection" if train.get_bool("from_detection_checkpoint", False)
                     else "classification")
    if ckpt_type not in FINE_TUNE_TYPES:
        raise ConfigError(f"fine_tune_checkpoint_type '{ckpt_type}' is not supported; "
                          f"valid: {', '.join(FINE_TUNE_TYPES)}")
    path = ex.resolve(ckpt, "train_config.fine_tune_checkpoint")
    version = train.get_name("fine_tune_checkpoint_version", "V2")
    what = od_api_checkpoint(path) or (
        "a TF1 name-based checkpoint (fine_tune_checkpoint_version V1)" if version == "V1"
        else None)
    if what:
        raise ConfigError(f"train_config.fine_tune_checkpoint {path} is {what}. "
                          + _why_and_instead(ex))
    if version != "V2":
        raise ConfigError(f"fine_tune_checkpoint_version '{version}' is not supported; "
                          "valid: V2")
    ex.update("task", {"init_checkpoint": path,
                       "init_checkpoint_modules": FINE_TUNE_TYPES[ckpt_type]})


def od_api_checkpoint(path: str) -> Optional[str]:
    """What OD API checkpoint ``path`` is (a phrase), or None for anything else.

    Existing checkpoints are judged by their content, missing ones by the
    zoo's names; ``.h5`` files and folders without a checkpoint are None.
    """
    keys = _checkpoint_keys(path)
    if keys is not None:
        if "_CHECKPOINTABLE_OBJECT_GRAPH" not in keys:
            return "a TF1 name-based checkpoint, as the OD API's TF1 model zoo ships"
        if any(k.startswith(_OD_API_KEYS) for k in keys):
            return ("a checkpoint of the OD API's own Mask R-CNN (TF2: its "
                    "FasterRCNNMetaArch's model/_feature_extractor/... variables)")
        return None
    if os.path.exists(path) or path.endswith(".h5"):
        return None
    zoo = _TF2_ZOO.search(path)
    if zoo:
        return (f"the OD API TF2 model zoo's {zoo.group(0)} checkpoint: the OD API's own "
                "Mask R-CNN trained on COCO 2017")
    zoo = _TF1_ZOO.search(path)
    if zoo or _TF1_PREFIX.search(path):
        name = f" {zoo.group(0)}" if zoo else ""
        return (f"the OD API TF1 model zoo's{name} checkpoint (model.ckpt, name-based): the "
                "OD API's own TF1 detection model")
    return None


def _checkpoint_keys(path: str):
    """The checkpoint's variable keys, or None when ``path`` holds no TF checkpoint."""
    import tensorflow as tf

    prefix = path
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
    if not prefix or not os.path.exists(prefix + ".index"):
        return None
    try:
        return set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())
    except (tf.errors.OpError, ValueError):
        return None


def _why_and_instead(ex: Ledger) -> str:
    backbone_type = ex.get("task.model.backbone.type")
    backbone = ex.get("task.model.backbone")
    net, tail = _TAILS.get(backbone_type, (backbone_type, "the rest of the network"))
    if ex.extras["extractor"].box_head == "2fc":  # the OD API's FPN extractors
        why = ("tfmask cannot restore it: its variables are the OD API's Keras layers "
               "(model/_feature_extractor/..., numbered layer_with_weights-N), which share "
               "neither names nor structure with Model Garden's ResNet-FPN. ")
    else:
        why = (f"tfmask cannot restore it: the OD API's Mask R-CNN has no FPN - its first "
               f"stage runs {net} up to one feature map (stride 16, 8 when atrous) and its "
               f"second stage runs {tail} on every ROI crop - while tfmask's is Model Garden's "
               f"FPN Mask R-CNN, with all of {net} as the backbone of every FPN level and "
               "separate box and mask heads, so neither its variable names nor their roles "
               "correspond. ")
    if backbone_type == "inception_resnet_v2":
        instead = (f"Use instead the ImageNet Inception-ResNet-v2 of `make pretrained`: "
                   f"fine_tune_checkpoint: \"{_IRV2_H5}\" (relative to the config's folder) "
                   "with fine_tune_checkpoint_type: \"classification\"")
    elif backbone_type == "resnet" and backbone.get("resnet", {}).get("model_id") == 50:
        instead = ("Use instead Model Garden's ImageNet ResNet-50 of `make pretrained`: "
                   "fine_tune_checkpoint: \"pretrained/resnet50_imagenet/ckpt-28080\" "
                   "(relative to the config's folder) with fine_tune_checkpoint_type: "
                   "\"classification\"")
    else:
        instead = ("Use instead a Model Garden ImageNet checkpoint of the backbone "
                   "(pretrained/README.md) with fine_tune_checkpoint_type: "
                   "\"classification\", or remove fine_tune_checkpoint to train from scratch")
    return why + instead + ("; a checkpoint of an earlier tfmask run works with "
                            "fine_tune_checkpoint_type: \"detection\"")
