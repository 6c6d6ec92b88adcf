"""pipeline.config -> Model Garden: one check per honoured field, and the errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tfmask.errors import ConfigError, DataError
from tfmask.config.translate import translate

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "configs" / "mask_rcnn_tiny_cpu.config").read_text()


@pytest.fixture
def cfg_dir(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "label_map.pbtxt").write_text(
        "item { id: 1 name: 'speaker' } item { id: 2 name: 'cup' } "
        "item { id: 3 name: 'bottle' }")
    (tmp_path / "configs").mkdir()
    return tmp_path


def make(cfg_dir, *subs, text=None):
    """Writes the tiny config with regex substitutions and translates it."""
    text = BASE if text is None else text
    text = text.replace("../dataset/records", "../records")
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text, flags=re.S)
        assert n, pattern
    path = cfg_dir / "configs" / "p.config"
    path.write_text(text)
    return translate(path)


def get(params, dotted):
    obj = params
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj.as_dict() if hasattr(obj, "as_dict") else obj


def test_shipped_tiny_config_honours_every_field(cfg_dir):
    t = make(cfg_dir)
    assert t.ignored == []
    p = t.params
    assert p.task.model.num_classes == 4  # 3 classes + background
    assert p.task.init_checkpoint == ""  # never the base experiment's cloud checkpoint
    assert p.task.train_data.input_path == [str(cfg_dir / "records" / "train-?????-of-?????")]
    assert p.task.validation_data.input_path == [str(cfg_dir / "records" / "val-?????-of-?????")]
    assert t.label_map.names == ["speaker", "cup", "bottle"]


MAPPINGS = [
    # (substitution, params path, expected)
    ((r"keep_aspect_ratio_resizer \{[^}]*\}", "fixed_shape_resizer { height: 96 width: 160 }"),
     "task.model.input_size", [96, 160, 3]),
    ((r"max_dimension: 128", "max_dimension: 256"), "task.model.input_size", [256, 256, 3]),
    ((r"type: 'tfmask_tiny_resnet10_fpn'", "type: 'faster_rcnn_resnet50_fpn_keras'"),
     "task.model.backbone.resnet.model_id", 50),
    ((r"type: 'tfmask_tiny_resnet10_fpn'", "type: 'faster_rcnn_resnet101_keras'"),
     "task.model.backbone.resnet.model_id", 101),
    ((r"additional_layer_depth: 64", "additional_layer_depth: 32"),
     "task.model.decoder.fpn.num_filters", 32),
    ((r"anchor_scale: 3.0", "anchor_scale: 5.0"), "task.model.anchor.anchor_size", 5.0),
    ((r"scales_per_octave: 1", "scales_per_octave: 3"), "task.model.anchor.num_scales", 3),
    ((r"aspect_ratios: \[0.5, 1.0, 2.0\]", "aspect_ratios: [1.0]"),
     "task.model.anchor.aspect_ratios", [1.0]),
    ((r"first_stage_max_proposals: 64", "first_stage_max_proposals: 300"),
     "task.model.roi_generator.test_num_proposals", 300),
    ((r"first_stage_minibatch_size: 64", "first_stage_minibatch_size: 128"),
     "task.train_data.parser.rpn_batch_size_per_im", 128),
    ((r"second_stage_batch_size: 64", "second_stage_batch_size: 32"),
     "task.model.roi_sampler.num_sampled_rois", 32),
    ((r"first_stage_nms_iou_threshold: 0.7", "first_stage_nms_iou_threshold: 0.6"),
     "task.model.roi_generator.nms_iou_threshold", 0.6),
    ((r"first_stage_nms_score_threshold: 0.0", "first_stage_nms_score_threshold: 0.1"),
     "task.model.roi_generator.pre_nms_score_threshold", 0.1),
    ((r"score_threshold: 0.05", "score_threshold: 0.3"),
     "task.model.detection_generator.pre_nms_score_threshold", 0.3),
    ((r"iou_threshold: 0.5\n", "iou_threshold: 0.4\n"),
     "task.model.detection_generator.nms_iou_threshold", 0.4),
    ((r"max_total_detections: 20", "max_total_detections: 250"),
     "task.model.detection_generator.max_num_detections", 250),
    ((r"max_detections_per_class: 20", "max_detections_per_class: 300"),
     "task.model.detection_generator.pre_nms_top_k", 300),
    ((r"initial_crop_size: 14", "initial_crop_size: 16"), "task.model.roi_aligner.crop_size", 8),
    ((r"mask_height: 28\s+mask_width: 28", "mask_height: 14 mask_width: 14"),
     "task.model.mask_roi_aligner.crop_size", 7),
    ((r"mask_prediction_num_conv_layers: 2", "mask_prediction_num_conv_layers: 4"),
     "task.model.mask_head.num_convs", 4),
    ((r"mask_prediction_conv_depth: 64", "mask_prediction_conv_depth: 128"),
     "task.model.mask_head.num_filters", 128),
    ((r"first_stage_localization_loss_weight: 1.0", "first_stage_localization_loss_weight: 2.0"),
     "task.losses.rpn_box_weight", 2.0),
    ((r"first_stage_objectness_loss_weight: 1.0", "first_stage_objectness_loss_weight: 3.0"),
     "task.losses.rpn_score_weight", 3.0),
    ((r"second_stage_localization_loss_weight: 1.0",
      "second_stage_localization_loss_weight: 2.0"), "task.losses.frcnn_box_weight", 2.0),
    ((r"second_stage_classification_loss_weight: 1.0",
      "second_stage_classification_loss_weight: 0.5"), "task.losses.frcnn_class_weight", 0.5),
    ((r"second_stage_mask_prediction_loss_weight: 1.0",
      "second_stage_mask_prediction_loss_weight: 4.0"), "task.losses.mask_weight", 4.0),
    ((r"batch_size: 4\n  num_steps", "batch_size: 8\n  num_steps"),
     "task.train_data.global_batch_size", 8),
    ((r"num_steps: 300", "num_steps: 1234"), "trainer.train_steps", 1234),
    ((r"gradient_clipping_by_norm: 10.0", "gradient_clipping_by_norm: 5.0"),
     "trainer.optimizer_config.optimizer.sgd.global_clipnorm", 5.0),
    ((r"momentum_optimizer_value: 0.9", "momentum_optimizer_value: 0.8"),
     "trainer.optimizer_config.optimizer.sgd.momentum", 0.8),
    ((r"learning_rate_base: 0.02", "learning_rate_base: 0.05"),
     "trainer.optimizer_config.learning_rate.cosine.initial_learning_rate", 0.05),
    ((r"warmup_steps: 20", "warmup_steps: 7"),
     "trainer.optimizer_config.warmup.linear.warmup_steps", 7),
    ((r"random_horizontal_flip \{ \}", "random_vertical_flip { }"),
     "task.train_data.parser.aug_rand_vflip", True),
    ((r"random_horizontal_flip \{ \}",
      "random_image_scale { min_scale_ratio: 0.5 max_scale_ratio: 2.0 }"),
     "task.train_data.parser.aug_scale_max", 2.0),
    ((r"batch_size: 4\n\}", "batch_size: 2\n}"),
     "task.validation_data.global_batch_size", 2),
    ((r"type: 'tfmask_tiny_resnet10_fpn'", "type: 'faster_rcnn_inception_resnet_v2_keras'"),
     "task.model.backbone.type", "inception_resnet_v2"),
    ((r"second_stage_batch_size: 64\n", ""),  # absent: the OD API's proto default
     "task.model.roi_sampler.num_sampled_rois", 64),
    ((r"random_horizontal_flip \{ \}", "random_rotation90 { }"),
     "task.train_data.parser.augmentation.rotation90_probability", 0.5),
    ((r"random_horizontal_flip \{ \}", "random_rotation90 { probability: 0.25 }"),
     "task.train_data.parser.augmentation.rotation90_probability", 0.25),
    ((r"random_horizontal_flip \{ \}", "random_rotation { max_degrees: 20 probability: 0.7 }"),
     "task.train_data.parser.augmentation", {"rotation_max_degrees": 20.0,
                                             "rotation_probability": 0.7}),
    ((r"random_horizontal_flip \{ \}", "random_adjust_brightness { max_delta: 0.1 }"),
     "task.train_data.parser.augmentation.brightness_max_delta", 0.1),
    ((r"random_horizontal_flip \{ \}",
      "random_adjust_contrast { min_delta: 0.7 max_delta: 1.3 }"),
     "task.train_data.parser.augmentation", {"contrast_min": 0.7, "contrast_max": 1.3}),
    ((r"random_horizontal_flip \{ \}",
      "random_adjust_saturation { min_delta: 0.6 max_delta: 1.4 }"),
     "task.train_data.parser.augmentation", {"saturation_min": 0.6, "saturation_max": 1.4}),
    ((r"random_horizontal_flip \{ \}", "random_adjust_hue { max_delta: 0.05 }"),
     "task.train_data.parser.augmentation.hue_max_delta", 0.05),
    ((r"random_horizontal_flip \{ \}", "random_distort_color { color_ordering: 1 }"),
     "task.train_data.parser.augmentation.distort_color_ordering", 1),
]


@pytest.mark.parametrize("sub,path,expected", MAPPINGS, ids=[m[1] for m in MAPPINGS])
def test_field_mapping(cfg_dir, sub, path, expected):
    got = get(make(cfg_dir, sub).params, path)
    if isinstance(expected, dict):  # these keys of a sub-config
        got = {k: got[k] for k in expected}
        assert got == pytest.approx(expected)
    else:
        assert got == pytest.approx(expected) if isinstance(expected, float) else got == expected


LR_BLOCK = r"learning_rate \{\s+cosine_decay_learning_rate \{[^}]*\}\s+\}"


@pytest.mark.parametrize("lr,expected", [
    ("constant_learning_rate { learning_rate: 0.01 }",
     {"type": "constant", "constant": {"learning_rate": 0.01}}),
    ("manual_step_learning_rate { initial_learning_rate: 0.01 schedule { step: 100 "
     "learning_rate: 0.001 } schedule { step: 200 learning_rate: 0.0001 } }",
     {"type": "stepwise", "stepwise": {"boundaries": [100, 200],
                                       "values": [0.01, 0.001, 0.0001]}}),
    ("exponential_decay_learning_rate { initial_learning_rate: 0.01 decay_steps: 50 "
     "decay_factor: 0.5 staircase: false }",
     {"type": "exponential", "exponential": {"initial_learning_rate": 0.01, "decay_steps": 50,
                                             "decay_rate": 0.5, "staircase": False}}),
])
def test_learning_rates(cfg_dir, lr, expected):
    t = make(cfg_dir, (LR_BLOCK, "learning_rate { " + lr + " }"))
    got = t.params.trainer.optimizer_config.learning_rate.as_dict()
    assert got["type"] == expected["type"]
    for key, value in expected[expected["type"]].items():
        assert got[expected["type"]][key] == pytest.approx(value)


def test_adam_optimizer(cfg_dir):
    t = make(cfg_dir, (r"momentum_optimizer \{", "adam_optimizer {"),
             (r"\s+momentum_optimizer_value: 0.9", ""))
    assert t.params.trainer.optimizer_config.optimizer.type == "adam"


def test_grid_anchors_map_to_fpn_anchor_size(cfg_dir):
    t = make(cfg_dir, (r"multiscale_anchor_generator \{[^}]*\}",
                       "grid_anchor_generator { scales: [0.25, 0.5, 1.0, 2.0] "
                       "aspect_ratios: [0.5, 1.0, 2.0] height_stride: 16 width_stride: 16 }"))
    assert t.params.task.model.anchor.anchor_size == pytest.approx(64 / 8)  # 0.25*256 at 2**3
    assert any("grid anchors" in n for n in t.notes)


def test_l2_regularizer_becomes_weight_decay(cfg_dir):
    t = make(cfg_dir, (r"predict_instance_masks: true",
                       "predict_instance_masks: true conv_hyperparams { op: CONV regularizer "
                       "{ l2_regularizer { weight: 0.0004 } } }"))
    assert t.params.task.losses.l2_weight_decay == pytest.approx(0.0004)
    assert "model.faster_rcnn.second_stage_box_predictor.mask_rcnn_box_predictor." \
           "conv_hyperparams.op" in t.ignored


def test_fine_tune_checkpoint(cfg_dir):
    t = make(cfg_dir, (r"gradient_clipping_by_norm: 10.0",
                       "gradient_clipping_by_norm: 10.0 fine_tune_checkpoint: '../w/ckpt-1' "
                       "fine_tune_checkpoint_type: 'classification'"))
    assert t.params.task.init_checkpoint == str(cfg_dir / "w" / "ckpt-1")
    assert t.params.task.init_checkpoint_modules == "backbone"
    t = make(cfg_dir, (r"gradient_clipping_by_norm: 10.0",
                       "gradient_clipping_by_norm: 10.0 fine_tune_checkpoint: '/abs/ckpt' "
                       "fine_tune_checkpoint_type: 'detection'"))
    assert (t.params.task.init_checkpoint, t.params.task.init_checkpoint_modules) == \
        ("/abs/ckpt", "all")


def test_input_path_lists(cfg_dir):
    t = make(cfg_dir, (r'input_path: "../records/train-\?\?\?\?\?-of-\?\?\?\?\?"',
                       'input_path: "../records/a-*" input_path: "/data/b-*"'))
    assert t.params.task.train_data.input_path == [str(cfg_dir / "records" / "a-*"), "/data/b-*"]


@pytest.mark.parametrize("sub,error,match", [
    ((r"num_classes: 3", "num_classes: 5"), ConfigError,
     "num_classes is 5 but the label map .* has 3 classes"),
    ((r'input_path: "../records/train', 'input_path: "PATH_TO_BE_CONFIGURED/train'), DataError,
     "train_input_reader.tf_record_input_reader.input_path still holds"),
    ((r'label_map_path: "../records/label_map.pbtxt"\n  tf_record_input_reader \{ input_path: '
      r'"../records/train', 'label_map_path: "PATH_TO_BE_CONFIGURED/l.pbtxt"\n  '
      'tf_record_input_reader { input_path: "../records/train'), DataError,
     "train_input_reader.label_map_path still holds"),
    ((r"random_horizontal_flip \{ \}", "random_rotate { }"), ConfigError,
     "unknown augmentation 'random_rotate'; valid: random_horizontal_flip, "
     "random_vertical_flip, random_image_scale, random_rotation90, random_rotation, "
     "random_adjust_brightness"),
    ((r"random_horizontal_flip \{ \}", "random_rotation { max_degrees: 200 }"), ConfigError,
     "data_augmentation_options: .*rotation_max_degrees"),
    ((r"random_horizontal_flip \{ \}", "random_rotation90 { probability: 1.5 }"), ConfigError,
     r"random_rotation90.probability must be in \[0, 1\]"),
    ((r"type: 'tfmask_tiny_resnet10_fpn'", "type: 'ssd_mobilenet'"), ConfigError,
     "feature_extractor.type 'ssd_mobilenet' is not supported; valid: "),
    ((r"max_dimension: 128", "max_dimension: 100"), ConfigError, "must be divisible by 32"),
    ((r"mask_width: 28", "mask_width: 14"), ConfigError, "must be equal"),
    ((r'metrics_set: "coco_mask_metrics"', 'metrics_set: "pascal_voc"'), ConfigError,
     "metrics_set pascal_voc is not supported"),
    ((r"momentum_optimizer \{", "rms_prop_optimizer {"), ConfigError,
     "unsupported optimizer 'rms_prop_optimizer'"),
    ((r"min_level: 3 max_level: 5 anchor_scale", "min_level: 2 max_level: 5 anchor_scale"),
     ConfigError, "min_level is 2 in the anchor generator but 3"),
    ((r"gradient_clipping_by_norm: 10.0", "gradient_clipping_by_norm: 10.0 fine_tune_checkpoint:"
      " '/c' fine_tune_checkpoint_type: 'segmentation'"), ConfigError,
     "fine_tune_checkpoint_type 'segmentation' is not supported"),
])
def test_config_errors(cfg_dir, sub, error, match):
    with pytest.raises(error, match=match):
        make(cfg_dir, sub)


def test_syntax_error_reports_line_and_column(cfg_dir):
    with pytest.raises(DataError, match=r"p.config: syntax error at line 12, column"):
        make(cfg_dir, (r"    feature_extractor \{", "    feature_extractor {{"))


def test_unhonoured_fields_are_listed_and_strict_fails(cfg_dir):
    t = make(cfg_dir, (r"initial_crop_size: 14", "initial_crop_size: 14 resize_masks: false"),
             (r"eval_instance_masks: true", "eval_instance_masks: true "
              "include_metrics_per_category: true"))
    assert t.ignored == ["model.faster_rcnn.resize_masks",
                         "eval_config.include_metrics_per_category"]
    path = cfg_dir / "configs" / "p.config"
    with pytest.raises(ConfigError, match="strict: fields not honoured: "
                                          "model.faster_rcnn.resize_masks"):
        translate(path, strict=True)


@pytest.mark.parametrize("fields,frozen", [
    ('freeze_variables: "backbone"', ["backbone"]),
    ('update_trainable_variables: "mask_head"',
     ["backbone", "decoder", "rpn_head", "detection_head"]),
    ('update_trainable_variables: "mask_head" update_trainable_variables: "rpn_head|decoder"',
     ["backbone", "detection_head"]),
    ('freeze_variables: "backbone|decoder"', ["backbone", "decoder"]),
])
def test_trainable_groups(cfg_dir, fields, frozen):
    t = make(cfg_dir, (r"gradient_clipping_by_norm: 10.0", "gradient_clipping_by_norm: 10.0 "
                       + fields))
    assert t.frozen_groups == frozen and t.ignored == []


@pytest.mark.parametrize("fields,match", [
    ('freeze_variables: "FeatureExtractor"', "matches no part of the model; parts: backbone"),
    ('freeze_variables: "("', "not a valid regular expression"),
    ('freeze_variables: ".*"', "leave nothing to train"),
])
def test_trainable_group_errors(cfg_dir, fields, match):
    with pytest.raises(ConfigError, match=re.escape(match) if "(" not in fields else match):
        make(cfg_dir, (r"gradient_clipping_by_norm: 10.0", "gradient_clipping_by_norm: 10.0 "
                       + fields))


# The second-stage box head each feature extractor translates to (Model Garden
# detection_head: num_convs, num_filters, num_fcs, fc_dims). The OD API's ResNet-FPN
# box classifier is 2 fc x 1024 (faster_rcnn_resnet_v1_fpn_keras_feature_extractor.py);
# the single-level OD API extractors run a conv stage on each crop: Model Garden's 4conv1fc.
HEADS = {
    "faster_rcnn_resnet50_fpn_keras": (0, 256, 2, 1024),
    "faster_rcnn_resnet101_fpn_keras": (0, 256, 2, 1024),
    "faster_rcnn_resnet152_fpn_keras": (0, 256, 2, 1024),
    "faster_rcnn_resnet50_keras": (4, 256, 1, 1024),
    "faster_rcnn_resnet101_keras": (4, 256, 1, 1024),
    "faster_rcnn_resnet152_keras": (4, 256, 1, 1024),
    "faster_rcnn_inception_resnet_v2_keras": (4, 256, 1, 1024),
    "faster_rcnn_resnet50": (4, 256, 1, 1024),  # TF1 names: their Keras equivalents
    "faster_rcnn_resnet101": (4, 256, 1, 1024),
    "faster_rcnn_resnet152": (4, 256, 1, 1024),
    "faster_rcnn_inception_resnet_v2": (4, 256, 1, 1024),
    "faster_rcnn_resnet50_fpn_torchvision": (0, 256, 2, 1024),
    "faster_rcnn_resnet50_fpn_torchvision_v2": (4, 256, 1, 1024),
    "tfmask_tiny_resnet10_fpn": (0, 64, 1, 256),
}


def test_every_feature_extractor_has_a_pinned_head():
    from tfmask.config.extractors import FEATURE_EXTRACTORS, TF1_NAMES

    assert set(HEADS) == set(FEATURE_EXTRACTORS) | set(TF1_NAMES)


@pytest.mark.parametrize("fe_type", sorted(HEADS))
def test_box_head_of_each_feature_extractor(cfg_dir, fe_type):
    t = make(cfg_dir, (r"type: 'tfmask_tiny_resnet10_fpn'", f"type: '{fe_type}'"))
    head = t.params.task.model.detection_head
    assert (head.num_convs, head.num_filters, head.num_fcs, head.fc_dims) == HEADS[fe_type]
    assert t.ignored == []


@pytest.mark.parametrize("name,expected", [("4conv1fc", (4, 256, 1, 1024)),
                                           ("2fc", (0, 256, 2, 1024))])
def test_tfmask_box_head_picks_another_head(cfg_dir, name, expected):
    t = make(cfg_dir, (r"type: 'tfmask_tiny_resnet10_fpn'",
                       f"type: 'faster_rcnn_resnet50_fpn_keras' tfmask_box_head: '{name}'"))
    head = t.params.task.model.detection_head
    assert (head.num_convs, head.num_filters, head.num_fcs, head.fc_dims) == expected
    assert t.ignored == []


def test_proposals_use_tensorflows_combined_nms(cfg_dir):
    """The RPN's per-level NMS runs in TF's CombinedNonMaxSuppression kernel
    (tests/modeling/test_proposal_nms.py compares it with Model Garden's padded NMS)."""
    t = make(cfg_dir)
    assert t.params.task.model.roi_generator.use_batched_nms is True


def test_tfmask_depth_multiplier_narrows_the_resnet(cfg_dir):
    t = make(cfg_dir, (r"type: 'tfmask_tiny_resnet10_fpn'",
                       "type: 'tfmask_tiny_resnet10_fpn' tfmask_depth_multiplier: 0.5"))
    assert t.params.task.model.backbone.resnet.depth_multiplier == 0.5
    assert t.ignored == []
    plain = make(cfg_dir)
    assert plain.params.task.model.backbone.resnet.depth_multiplier == 1.0


@pytest.mark.parametrize("sub,match", [
    ((r"type: 'tfmask_tiny_resnet10_fpn'",
      "type: 'faster_rcnn_inception_resnet_v2_keras' tfmask_depth_multiplier: 0.5"),
     "tfmask_depth_multiplier applies to ResNet backbones only"),
    ((r"type: 'tfmask_tiny_resnet10_fpn'",
      "type: 'tfmask_tiny_resnet10_fpn' tfmask_depth_multiplier: 0"),
     "tfmask_depth_multiplier"),
    ((r"type: 'tfmask_tiny_resnet10_fpn'",
      "type: 'tfmask_tiny_resnet10_fpn' tfmask_box_head: '3fc'"),
     "feature_extractor.tfmask_box_head '3fc' is not a box head; valid: 2fc, 4conv1fc, tiny"),
    ((r"type: 'tfmask_tiny_resnet10_fpn'", "type: 'faster_rcnn_inception_v2'"),
     "'faster_rcnn_inception_v2' is not supported: Inception-v2 exists only as the OD API's "
     "TF1 slim extractor"),
    ((r"min_level: 3 max_level: 5 additional", "min_level: 1 max_level: 5 additional"),
     "min_level 1 must be between 2 and 5"),
    ((r"initial_crop_size: 14", "initial_crop_size: 1"),
     "initial_crop_size 1 is smaller than maxpool_stride 2"),
    ((r"type: 'tfmask_tiny_resnet10_fpn'",
      "type: 'tfmask_tiny_resnet10_fpn' first_stage_features_stride: 12"),
     "first_stage_features_stride 12 must be a power of two among the FPN's strides 8-32"),
])
def test_extractor_and_size_errors(cfg_dir, sub, match):
    if "min_level: 1" in sub[1]:  # the anchor generator's levels must agree
        sub2 = (r"min_level: 3 max_level: 5 anchor_scale", "min_level: 1 max_level: 5 anchor_scale")
        with pytest.raises(ConfigError, match=re.escape(match)):
            make(cfg_dir, sub, sub2)
        return
    with pytest.raises(ConfigError, match=re.escape(match)):
        make(cfg_dir, sub)


@pytest.mark.parametrize("rois,proposals,slots,expected_rois,expected_masks", [
    (64, 64, 100, 64, 16),      # the tiny config: nothing to lower
    (512, 300, 100, 400, 100),  # issue 12: 300 proposals + 100 ground-truth slots
    (512, 64, 20, 84, 21),      # 64 proposals + 20 slots (max_number_of_boxes 20)
])
def test_sampler_sizes_fit_what_exists(cfg_dir, rois, proposals, slots, expected_rois,
                                       expected_masks):
    t = make(cfg_dir, (r"second_stage_batch_size: 64", f"second_stage_batch_size: {rois}"),
             (r"first_stage_max_proposals: 64", f"first_stage_max_proposals: {proposals}"),
             (r"load_instance_masks: true\n  mask_type: PNG_MASKS\n\}\n\neval_config",
              f"load_instance_masks: true\n  mask_type: PNG_MASKS\n  max_number_of_boxes: "
              f"{slots}\n}}\n\neval_config"))
    m = t.params.task.model
    assert (m.roi_sampler.num_sampled_rois, m.mask_sampler.num_sampled_masks) == \
        (expected_rois, expected_masks)
    lowered = [n for n in t.notes if n.startswith("second_stage_batch_size")]
    assert bool(lowered) == (expected_rois != rois)
    if lowered:
        assert f"-> {expected_rois}" in lowered[0] and f"{proposals} proposals" in lowered[0]


def test_sampler_sizes_count_the_anchors_of_small_images(cfg_dir):
    """At 32 px, levels 3-5 hold 16 + 4 + 1 anchor positions x 3 ratios = 63 anchors."""
    t = make(cfg_dir, (r"max_dimension: 128", "max_dimension: 32"),
             (r"min_dimension: 128", "min_dimension: 32"),
             (r"second_stage_batch_size: 64", "second_stage_batch_size: 512"))
    # Proposals: min(64, anchors per level capped at 64) = 63; + 100 ground-truth slots.
    assert t.params.task.model.roi_sampler.num_sampled_rois == 163
