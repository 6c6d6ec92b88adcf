"""The ``model.faster_rcnn`` half of the pipeline.config translation, one function per part.

Each section reads its fields through the ledger's :class:`~tfmask.config.fields.Fields`
views (which marks them honoured) and writes Model Garden keys with
:meth:`~tfmask.config.fields.Ledger.set`; later sections read earlier ones'
keys back with :meth:`~tfmask.config.fields.Ledger.get`.
:mod:`tfmask.config.translate` runs them in order. Absent fields take the OD
API's proto defaults (``faster_rcnn.proto``, ``box_predictor.proto``) where
Model Garden has the setting.
"""

from __future__ import annotations

from typing import Dict, List

from tfmask.config import extractors
from tfmask.config.fields import Fields, Ledger, to_float
from tfmask.config.label_map import read_label_map
from tfmask.config.textproto import Message
from tfmask.errors import ConfigError

MAX_LEVEL = 10  # FPN levels up to 10: strides up to 1024 px
BACKBONE_LEVELS = (2, 5)  # the backbones' outputs: strides 4..32; FPN adds the levels above
_OD_API_BASE_ANCHOR = 256.0  # grid_anchor_generator's default base_anchor_size
M = "task.model"


def classes(ex: Ledger) -> None:
    """``num_classes`` (+1: Model Garden counts the background) against the label map."""
    num_classes = ex.frcnn.get("num_classes")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError("model.faster_rcnn.num_classes must be a positive integer")
    lm_path = ex.resolve(ex.train_in.get("label_map_path"), "train_input_reader.label_map_path")
    label_map = read_label_map(lm_path, pixel_suffix=False)
    if label_map.max_id != num_classes:
        raise ConfigError(f"num_classes is {num_classes} but the label map {lm_path} has "
                          f"{len(label_map.classes)} classes with ids up to "
                          f"{label_map.max_id}; they must agree")
    if len(label_map.classes) != num_classes:  # e.g. COCO's 80 categories, ids 1-90
        ex.note(f"label map {lm_path}: {num_classes - len(label_map.classes)} of the ids "
                f"1-{num_classes} name no class (the model has outputs for them)")
    if ex.eval_in.has("label_map_path"):
        eval_path = ex.resolve(ex.eval_in.get("label_map_path"),
                               "eval_input_reader.label_map_path")
        if eval_path != lm_path and read_label_map(eval_path, pixel_suffix=False).classes \
                != label_map.classes:
            raise ConfigError(f"eval_input_reader.label_map_path {eval_path} has other classes "
                              f"than train_input_reader.label_map_path {lm_path}; tfmask "
                              "evaluates with the training classes: use the same label map")
    ex.extras["label_map"] = label_map
    ex.set(f"{M}.num_classes", num_classes + 1)


def backbone(ex: Ledger) -> None:
    """Feature extractor -> backbone, FPN levels and width, features stride."""
    fe = ex.frcnn.sub("feature_extractor")
    name, extractor, alias_note = extractors.lookup(
        fe.get_name("type"), "model.faster_rcnn.feature_extractor.type")
    if alias_note:
        ex.note(alias_note)
    ex.extras["extractor"] = extractor
    fpn = fe.sub("fpn")
    anchor_kind, anchor_gen = ex.frcnn.sub("first_stage_anchor_generator").oneof()
    levels = {}
    for src in ([anchor_gen] if anchor_kind == "multiscale_anchor_generator" else []) + [fpn]:
        for key in ("min_level", "max_level"):
            if src.has(key):
                value = src.get_int(key, minimum=1, maximum=MAX_LEVEL)
                if levels.setdefault(key, value) != value:
                    raise ConfigError(f"{key} is {levels[key]} in the anchor generator but "
                                      f"{value} in feature_extractor.fpn")
    min_level = levels.get("min_level", 3 if extractor.narrow else 2)
    max_level = levels.get("max_level", 5 if extractor.narrow else 6)
    if min_level > max_level:
        raise ConfigError(f"min_level {min_level} is above max_level {max_level}")
    low, high = BACKBONE_LEVELS
    if not low <= min_level <= high:
        raise ConfigError(f"min_level {min_level} must be between {low} and {high}: the "
                          f"backbone's feature maps are levels {low}-{high} (strides "
                          f"{2 ** low}-{2 ** high}); the FPN adds levels above them only")
    _features_stride(ex, fe, min_level, max_level)
    ex.update(M, {"min_level": min_level, "max_level": max_level,
                  "backbone": {"type": extractor.backbone,
                               extractor.backbone: dict(extractor.backbone_kwargs,
                                                        **_depth_multiplier(fe, extractor))},
                  "norm_activation": {"use_sync_bn": False}})
    ex.set(f"{M}.decoder", {"type": "fpn", "fpn": {"num_filters": fpn.get_int(
        "additional_layer_depth", 64 if extractor.narrow else 256, minimum=1)}})
    image_size(ex, max_level)


def _depth_multiplier(fe: Fields, extractor) -> Dict[str, float]:
    """``feature_extractor { tfmask_depth_multiplier: 0.5 }`` (a tfmask field): every
    convolution of a ResNet backbone gets that fraction of its filters (Model Garden's
    ``resnet.depth_multiplier``; 0.5 costs about a quarter of the FLOPs). The demo uses
    0.5 with the tiny model (docs/demo.md). Other backbones refuse it."""
    if not fe.has("tfmask_depth_multiplier"):
        return {}
    key = "model.faster_rcnn.feature_extractor.tfmask_depth_multiplier"
    value = fe.get_float("tfmask_depth_multiplier", minimum=0.0625, maximum=4.0)
    if extractor.backbone != "resnet":
        raise ConfigError(f"{key} applies to ResNet backbones only; "
                          f"feature_extractor.type builds '{extractor.backbone}'")
    return {"depth_multiplier": value}


def _features_stride(ex: Ledger, fe: Fields, min_level: int, max_level: int) -> None:
    """``first_stage_features_stride`` / ``first_stage_atrous_rate``: mapped onto the FPN.

    The OD API's single-level extractors predict proposals on one map of
    stride 16, or 8 with the atrous variants (the last block dilated). An FPN
    model predicts on every level; the stride is honoured when its level is
    among them (the atrous model's finer map is the FPN's level 3).
    """
    if not fe.has("first_stage_features_stride") and not ex.frcnn.has("first_stage_atrous_rate"):
        return
    stride = fe.get_int("first_stage_features_stride", 16, minimum=1)
    rate = ex.frcnn.get_int("first_stage_atrous_rate", 1, minimum=1)
    level = stride.bit_length() - 1
    if stride != 2 ** level or not min_level <= level <= max_level:
        raise ConfigError(f"feature_extractor.first_stage_features_stride {stride} must be a "
                          f"power of two among the FPN's strides {2 ** min_level}-"
                          f"{2 ** max_level}")
    if stride != 16 or rate != 1:
        ex.note(f"first_stage_features_stride {stride} / first_stage_atrous_rate {rate} "
                f"(atrous): the FPN already predicts at strides {2 ** min_level}-"
                f"{2 ** max_level}, stride {stride} among them; the backbone is not dilated")


def image_size(ex: Ledger, max_level: int) -> None:
    """Both OD API resizers -> ``input_size`` (a multiple of ``2**max_level``)."""
    kind, resizer = ex.frcnn.sub("image_resizer").oneof()
    stride = 2 ** max_level
    if ex.extras["extractor"].backbone == extractors.TORCHVISION_BACKBONE:
        _torchvision_size(ex, kind, resizer, stride)
        return
    if kind == "fixed_shape_resizer":
        size_hw = (resizer.get_int("height", 600, minimum=1),
                   resizer.get_int("width", 1024, minimum=1))
    elif kind == "keep_aspect_ratio_resizer":
        side = resizer.get_int("max_dimension", 1024, minimum=1)
        # Model Garden always pads, so only true is honoured; false stays listed.
        padded = resizer.msg.get("pad_to_max_dimension", False) is True
        resizer.expect("pad_to_max_dimension", True)
        min_dim = resizer.get("min_dimension")
        if min_dim is not None and min_dim != side:
            ex.note(f"keep_aspect_ratio_resizer: images are scaled so the longer side is "
                    f"{side} px; min_dimension {min_dim} only bounds the shorter side in "
                    "the OD API and has no Model Garden equivalent")
        if side % stride and not padded:
            # The OD API batches these images at their own size; Model Garden pads to one.
            rounded = -(-side // stride) * stride
            ex.note(f"keep_aspect_ratio_resizer.max_dimension {side} -> {rounded}: Model "
                    f"Garden pads every image to one size divisible by {stride} "
                    f"(2**max_level {max_level}); the longer side is scaled to {rounded} px")
            side = rounded
        size_hw = (side, side)
    else:
        raise ConfigError("image_resizer must be fixed_shape_resizer or "
                          "keep_aspect_ratio_resizer")
    if size_hw[0] % stride or size_hw[1] % stride:
        raise ConfigError(f"image size {size_hw[1]}x{size_hw[0]} must be divisible by "
                          f"{stride} (2**max_level {max_level})")
    ex.set(f"{M}.input_size", [size_hw[0], size_hw[1], 3])


def _torchvision_size(ex: Ledger, kind, resizer: Fields, stride: int) -> None:
    """torchvision's resize is the keep_aspect_ratio_resizer's rule, both sides honoured.

    The shorter side goes to ``min_dimension`` unless the longer would pass
    ``max_dimension`` (``GeneralizedRCNNTransform``'s min_size/max_size).
    Training pads to a square canvas of ``max_dimension`` rounded up to
    ``2**max_level``; the export cuts each batch to torchvision's padding
    (the largest image rounded up to 32 px) whatever ``pad_to_max_dimension``.
    """
    if kind != "keep_aspect_ratio_resizer":
        raise ConfigError("feature_extractor.type torchvision models need image_resizer "
                          "{ keep_aspect_ratio_resizer { min_dimension max_dimension } } "
                          "(torchvision's resize)")
    low = resizer.get_int("min_dimension", 600, minimum=1)
    high = resizer.get_int("max_dimension", 1024, minimum=1)
    resizer.get("pad_to_max_dimension")
    if low > high:
        raise ConfigError(f"keep_aspect_ratio_resizer.min_dimension {low} is above "
                          f"max_dimension {high}")
    side = -(-high // stride) * stride
    ex.set(f"{M}.input_size", [side, side, 3])
    ex.update(f"{M}.backbone.{extractors.TORCHVISION_BACKBONE}",
              {"min_size": low, "max_size": high})


def anchors(ex: Ledger) -> None:
    """Multiscale anchors as they are; grid anchors as one FPN anchor size per level.

    The grid generator's ``height_stride``/``width_stride`` are not honoured
    (listed): an FPN places each level's anchors at that level's stride.
    """
    min_level = ex.get(f"{M}.min_level")
    kind, f = ex.frcnn.sub("first_stage_anchor_generator").oneof()
    ratios = f.get_floats("aspect_ratios") or [0.5, 1.0, 2.0]
    if kind == "multiscale_anchor_generator":
        ex.set(f"{M}.anchor", {"anchor_size": f.get_float("anchor_scale", 4.0),
                               "num_scales": f.get_int("scales_per_octave", 2, minimum=1),
                               "aspect_ratios": ratios})
    elif kind == "grid_anchor_generator":
        scales = f.get_floats("scales") or [0.25, 0.5, 1.0, 2.0]
        base = f.get("base_anchor_size", None)
        if base is not None and not isinstance(base, Message):
            raise ConfigError(f"{f.path}.base_anchor_size must be a message {{ ... }}, "
                              f"got {base!r}")
        base_px = to_float(base.get("height", _OD_API_BASE_ANCHOR),
                           f"{f.path}.base_anchor_size.height") if base is not None \
            else _OD_API_BASE_ANCHOR
        smallest = min(scales) * base_px
        anchor_size = smallest / (2 ** min_level)
        ex.note(f"grid anchors {[s * base_px for s in scales]} px -> one FPN anchor size per "
                f"level starting at {smallest:g} px (anchor_size {anchor_size:g}); "
                "height_stride/width_stride do not apply (each level's stride is 2**level)")
        ex.set(f"{M}.anchor", {"anchor_size": anchor_size, "num_scales": 1,
                               "aspect_ratios": ratios})
    elif kind is not None:
        raise ConfigError(f"unsupported anchor generator '{kind}'; valid: "
                          "grid_anchor_generator, multiscale_anchor_generator")


def rpn(ex: Ledger) -> None:
    """Proposals: how many, their NMS, the RPN head and its training minibatch."""
    f, narrow = ex.frcnn, ex.extras["extractor"].narrow
    proposals = f.get_int("first_stage_max_proposals", 64 if narrow else 300, minimum=1)
    iou = f.get_float("first_stage_nms_iou_threshold", 0.7)
    score = f.get_float("first_stage_nms_score_threshold", 0.0)
    top_k = max(4 * proposals, 256)
    # use_batched_nms: each level's proposals go through TF's CombinedNonMaxSuppression
    # kernel (the same greedy NMS; Model Garden's option for CPU and GPU) instead of its
    # padded, tiled while-loop NMS, ~100 ms of a 512 px ResNet-50-FPN image on 2 CPU
    # cores. ``tfmask export --format onnx|openvino`` swap the padded one back in.
    ex.set(f"{M}.roi_generator", {
        "use_batched_nms": True,
        "num_proposals": proposals, "test_num_proposals": proposals,
        "pre_nms_top_k": top_k, "test_pre_nms_top_k": top_k,
        "nms_iou_threshold": iou, "test_nms_iou_threshold": iou,
        "pre_nms_score_threshold": score, "test_pre_nms_score_threshold": score})
    depth = f.get_int("first_stage_box_predictor_depth", 0, minimum=0)
    f.expect("first_stage_box_predictor_kernel_size", 3)
    ex.set(f"{M}.rpn_head", {"num_filters": depth or (64 if narrow else 256)})
    ex.update("task.train_data.parser", {
        "rpn_batch_size_per_im": f.get_int("first_stage_minibatch_size", 256, minimum=1),
        "rpn_fg_fraction": f.get_float("first_stage_positive_balance_fraction", 0.5,
                                       minimum=0.0, maximum=1.0)})


def _box_predictor(ex: Ledger) -> Fields:
    pred = ex.frcnn.sub("second_stage_box_predictor").sub("mask_rcnn_box_predictor")
    if not pred.get_bool("use_dropout", False):
        # Only used with use_dropout (box_predictor.proto): no effect here either.
        pred.get_float("dropout_keep_probability", 0.5)
    return pred


def box_head(ex: Ledger) -> None:
    """The second-stage box classifier, its ROI crops and its sampled ROIs."""
    f, extractor = ex.frcnn, ex.extras["extractor"]
    fe = f.sub("feature_extractor")
    head = fe.get_name("tfmask_box_head", extractor.box_head)
    pred = _box_predictor(ex)
    ex.set(f"{M}.detection_head", {
        **extractors.box_head(head, "feature_extractor.tfmask_box_head"),
        "class_agnostic_bbox_pred": pred.get_bool("share_box_across_classes", False)})
    initial = f.get_int("initial_crop_size", 14, minimum=1)
    stride = f.get_int("maxpool_stride", 2, minimum=1)
    if initial < stride:
        raise ConfigError(f"initial_crop_size {initial} is smaller than maxpool_stride {stride}")
    # The OD API crops initial_crop_size and max-pools; Model Garden's ROI align
    # crops to the pooled size directly, which matches when the pool does not overlap.
    f.expect("maxpool_kernel_size", stride)
    if stride > 1:
        ex.note(f"initial_crop_size {initial} + max pool {stride}x{stride} -> ROI align "
                f"straight to {initial // stride}x{initial // stride}")
    ex.set(f"{M}.roi_aligner.crop_size", initial // stride)
    ex.set(f"{M}.roi_sampler", {
        "num_sampled_rois": f.get_int("second_stage_batch_size", 64, minimum=1),
        "foreground_fraction": f.get_float("second_stage_balance_fraction", 0.25,
                                           minimum=0.0, maximum=1.0)})


def mask_head(ex: Ledger) -> None:
    """The mask branch: convolutions, mask resolution, class-agnostic masks."""
    ex.frcnn.expect("number_of_stages", 3)
    narrow = ex.extras["extractor"].narrow
    pred = _box_predictor(ex)
    pred.expect("predict_instance_masks", True)
    mask_h = pred.get_int("mask_height", 15, minimum=1)
    mask_w = pred.get_int("mask_width", mask_h, minimum=1)
    if mask_h != mask_w:
        raise ConfigError(f"mask_height and mask_width must be equal (got {mask_h} and "
                          f"{mask_w})")
    crop = max(1, mask_h // 2)
    if crop * 2 != mask_h:
        ex.note(f"mask_height {mask_h} -> predicted masks of {crop * 2} px (Model Garden "
                "upsamples an even ROI crop by 2)")
    depth = pred.get_int("mask_prediction_conv_depth", 256, minimum=0)
    ex.set(f"{M}.mask_head", {
        "num_convs": pred.get_int("mask_prediction_num_conv_layers", 2, minimum=0),
        "num_filters": depth or (64 if narrow else 256),
        "class_agnostic": pred.get_bool("masks_are_class_agnostic", False)})
    ex.set(f"{M}.mask_roi_aligner.crop_size", crop)


def post_processing(ex: Ledger) -> None:
    """Second-stage NMS and the detections kept."""
    post = ex.frcnn.sub("second_stage_post_processing")
    kind, nms = post.oneof()
    if kind not in (None, "batch_non_max_suppression"):
        raise ConfigError("second_stage_post_processing must use batch_non_max_suppression")
    post.expect("score_converter", "SOFTMAX")
    max_total = nms.get_int("max_total_detections", 100, minimum=1)
    per_class = nms.get_int("max_detections_per_class", 100, minimum=1)
    ex.set(f"{M}.detection_generator", {
        "pre_nms_score_threshold": nms.get_float("score_threshold", 0.0),
        "nms_iou_threshold": nms.get_float("iou_threshold", 0.6),
        "max_num_detections": max_total, "pre_nms_top_k": max(per_class, max_total)})


def losses(ex: Ledger) -> None:
    """The five loss weights and the L2 regularizers (as one weight decay)."""
    f = ex.frcnn
    ex.set("task.losses", {
        "rpn_box_weight": f.get_float("first_stage_localization_loss_weight", 1.0),
        "rpn_score_weight": f.get_float("first_stage_objectness_loss_weight", 1.0),
        "frcnn_box_weight": f.get_float("second_stage_localization_loss_weight", 1.0),
        "frcnn_class_weight": f.get_float("second_stage_classification_loss_weight", 1.0),
        "mask_weight": f.get_float("second_stage_mask_prediction_loss_weight", 1.0),
        "l2_weight_decay": max(_l2_weights(ex.msg.get("model"), ex.used, "model") or [0.0]),
    })


def _l2_weights(msg: Message, used: set, prefix: str = "") -> List[float]:
    """Every ``regularizer.l2_regularizer.weight`` under ``msg``, marking them honoured."""
    out = []
    for name, value in msg.items():
        key = f"{prefix}.{name}" if prefix else name
        if not isinstance(value, Message):
            continue
        if name == "l2_regularizer":
            out.append(to_float(value.get("weight", 0.0), f"{key}.weight", minimum=0.0))
            used.add(key)
        else:
            out.extend(_l2_weights(value, used, key))
    return out
