"""What each OD API ``feature_extractor.type`` becomes in Model Garden's Mask R-CNN.

tfmask's Mask R-CNN is always Model Garden's FPN model; a feature extractor
type picks its backbone and its second-stage box head. One row per type in
:data:`FEATURE_EXTRACTORS`; a new backbone is one more row (plus, for a
backbone Model Garden lacks, its builder registered in
:mod:`tfmask.training.task`). TF1 (slim) names map to their Keras
equivalents (:data:`TF1_NAMES`); types tfmask cannot build are refused with
the reason and what to use instead (:data:`REFUSED`).

Box heads (:data:`BOX_HEADS`, Model Garden ``detection_head`` settings):

* ``2fc``: two fully connected layers of 1024, the OD API's box classifier
  for ResNet-FPN (``FasterRCNNResnetV1FpnKerasFeatureExtractor.
  get_box_classifier_feature_extractor_model`` in
  research/object_detection/models/faster_rcnn_resnet_v1_fpn_keras_feature_extractor.py:
  Flatten, Dense 1024, Dense 1024), as torchvision's ``TwoMLPHead``;
* ``4conv1fc``: Model Garden's default, four 3x3 convolutions of 256 and one
  fc of 1024. For the single-level OD API extractors (ResNet conv5 or the
  Inception-ResNet-v2 tail run on each crop) it is the nearest head Model
  Garden has: a convolutional stage on the crop, then fc;
* ``tiny``: no convolution, one fc of 256 (tfmask's CPU smoke model).

``feature_extractor { tfmask_box_head: "4conv1fc" }`` (a tfmask field) picks
another head than the type's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from tfmask.errors import ConfigError

# tfmask.modeling.torchvision's model type (Model Garden's backbone oneof, tfmask.training.task).
TORCHVISION_BACKBONE = "torchvision_resnet50_fpn"

BOX_HEADS: Dict[str, Dict[str, Any]] = {
    "2fc": {"num_convs": 0, "num_filters": 256, "num_fcs": 2, "fc_dims": 1024},
    "4conv1fc": {"num_convs": 4, "num_filters": 256, "num_fcs": 1, "fc_dims": 1024},
    "tiny": {"num_convs": 0, "num_filters": 64, "num_fcs": 1, "fc_dims": 256},
}


@dataclass(frozen=True)
class Extractor:
    """One feature extractor type, as tfmask builds it.

    Attributes:
      backbone: Model Garden backbone type (``resnet``, or tfmask's registered
        ``inception_resnet_v2``).
      backbone_kwargs: that backbone's config, e.g. ``{"model_id": 50}``.
      box_head: its default key of :data:`BOX_HEADS`.
      narrow: tfmask's CPU defaults for absent fields (FPN 64 at levels 3-5,
        narrow RPN and mask heads, 64 proposals, 16 sampled masks).
      od_api: what the OD API builds for this type, for notes and docs.
    """

    backbone: str
    backbone_kwargs: Dict[str, Any] = field(default_factory=dict)
    box_head: str = "4conv1fc"
    narrow: bool = False
    od_api: str = ""


def _resnet(depth: int, fpn: bool) -> Extractor:
    if fpn:
        return Extractor("resnet", {"model_id": depth}, "2fc",
                         od_api=f"ResNet-{depth} v1 + FPN, box classifier 2 fc x 1024")
    return Extractor("resnet", {"model_id": depth}, "4conv1fc",
                     od_api=f"ResNet-{depth} v1 to conv4 (stride 16), box classifier conv5 on "
                            "each crop; tfmask: ResNet-FPN with a conv box head")


FEATURE_EXTRACTORS: Dict[str, Extractor] = {
    **{f"faster_rcnn_resnet{d}_keras": _resnet(d, False) for d in (50, 101, 152)},
    **{f"faster_rcnn_resnet{d}_fpn_keras": _resnet(d, True) for d in (50, 101, 152)},
    # tfmask's SAME-padded Inception-ResNet-v2 with FPN (the OD API's is single-level).
    "faster_rcnn_inception_resnet_v2_keras": Extractor(
        "inception_resnet_v2", {}, "4conv1fc",
        od_api="Inception-ResNet-v2 to block17 (stride 16), box classifier Mixed_7a + "
               "block8 + Conv2d_7b on each crop; tfmask: Inception-ResNet-v2 + FPN with a "
               "conv box head"),
    # tfmask's own: ResNet-10 + FPN 64 with narrow heads, ~1 step/s on 2 CPU cores.
    "tfmask_tiny_resnet10_fpn": Extractor("resnet", {"model_id": 10}, "tiny", narrow=True,
                                          od_api="(tfmask's own, no OD API equivalent)"),
    # torchvision's COCO-trained Mask R-CNN R50-FPN (tfmask.modeling.torchvision): the type
    # selects torchvision's whole detector, weights from `tfmask pretrained torchvision_...`.
    "faster_rcnn_resnet50_fpn_torchvision": Extractor(
        TORCHVISION_BACKBONE, {"version": "v1"}, "2fc",
        od_api="(torchvision's maskrcnn_resnet50_fpn: ResNet-50 + FPN, box head 2 fc x 1024)"),
    "faster_rcnn_resnet50_fpn_torchvision_v2": Extractor(
        TORCHVISION_BACKBONE, {"version": "v2"}, "4conv1fc",
        od_api="(torchvision's maskrcnn_resnet50_fpn_v2: ResNet-50 + FPN with BatchNorm, "
               "2-conv RPN head, box head 4 conv + 1 fc x 1024)"),
}

# TF1 (slim) feature extractors -> the TF2 Keras type of the same network.
TF1_NAMES: Dict[str, str] = {
    "faster_rcnn_resnet50": "faster_rcnn_resnet50_keras",
    "faster_rcnn_resnet101": "faster_rcnn_resnet101_keras",
    "faster_rcnn_resnet152": "faster_rcnn_resnet152_keras",
    "faster_rcnn_inception_resnet_v2": "faster_rcnn_inception_resnet_v2_keras",
}

_INSTEAD = ("use 'faster_rcnn_resnet50_fpn_keras' (ImageNet weights: make pretrained) or "
            "'faster_rcnn_inception_resnet_v2_keras'")
REFUSED: Dict[str, str] = {
    "faster_rcnn_inception_v2": (
        "Inception-v2 exists only as the OD API's TF1 slim extractor: the OD API has no "
        "TF2/Keras version, and neither Model Garden nor Keras Applications has the network "
        "or ImageNet weights for it, so tfmask could only train it from random weights; "
        + _INSTEAD),
}


def lookup(fe_type: Any, field_name: str) -> Tuple[str, Extractor, Optional[str]]:
    """``(Keras type, Extractor, note or None)`` for a ``feature_extractor.type`` value.

    Raises:
      ConfigError: naming ``field_name``, for refused or unknown types.
    """
    if fe_type in REFUSED:
        raise ConfigError(f"{field_name} '{fe_type}' is not supported: {REFUSED[fe_type]}")
    note = None
    if fe_type in TF1_NAMES:
        keras = TF1_NAMES[fe_type]
        note = (f"{field_name} '{fe_type}' (TF1) -> '{keras}', the same network in Keras "
                f"({FEATURE_EXTRACTORS[keras].od_api})")
        fe_type = keras
    if fe_type not in FEATURE_EXTRACTORS:
        valid = sorted(FEATURE_EXTRACTORS) + sorted(TF1_NAMES)
        raise ConfigError(f"{field_name} '{fe_type}' is not supported; valid: "
                          f"{', '.join(valid)}")
    return fe_type, FEATURE_EXTRACTORS[fe_type], note


def box_head(name: Any, field_name: str) -> Dict[str, Any]:
    """Model Garden ``detection_head`` settings of a :data:`BOX_HEADS` key."""
    if name not in BOX_HEADS:
        raise ConfigError(f"{field_name} '{name}' is not a box head; valid: "
                          f"{', '.join(BOX_HEADS)}")
    return dict(BOX_HEADS[name])
