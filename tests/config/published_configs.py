"""The OD API's published Mask R-CNN configs, rebuilt field by field for the tests.

The configs the tutorial generation started from (tensorflow/models,
``research/object_detection/``): :data:`SOURCES` names each file. The files
are not copied: :func:`config_text` assembles a config with the same fields
and values from the parts they share (the ``*_hyperparams`` blocks, the
readers) and each file's own values (:data:`CONFIGS`). Placeholders
(``PATH_TO_BE_CONFIGURED``, ``_BATCH_SIZE_``...) stay as published except
``_BATCH_SIZE_``, which the tutorial fills with 1; :func:`config_runs.fill_in`
fills in the rest.
"""

from __future__ import annotations

from typing import Dict

OD = "tensorflow/models research/object_detection/"
SOURCES = {
    "tf2_irv2_1024": OD + "configs/tf2/mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config",
    "tf1_inception_v2": OD + "samples/configs/mask_rcnn_inception_v2_coco.config",
    "tf1_resnet50_atrous": OD + "samples/configs/mask_rcnn_resnet50_atrous_coco.config",
    "tf1_resnet101_atrous": OD + "samples/configs/mask_rcnn_resnet101_atrous_coco.config",
    "tf1_resnet101_pets": OD + "samples/configs/mask_rcnn_resnet101_pets.config",
    "tf1_irv2_atrous": OD + "samples/configs/mask_rcnn_inception_resnet_v2_atrous_coco.config",
}
# The zoo checkpoint a tutorial user downloads for each (fine_tune_checkpoint).
ZOO_CHECKPOINTS = {
    "tf2_irv2_1024": "mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8/checkpoint/ckpt-0",
    "tf1_inception_v2": "mask_rcnn_inception_v2_coco_2018_01_28/model.ckpt",
    "tf1_resnet50_atrous": "mask_rcnn_resnet50_atrous_coco_2018_01_28/model.ckpt",
    "tf1_resnet101_atrous": "mask_rcnn_resnet101_atrous_coco_2018_01_28/model.ckpt",
    "tf1_resnet101_pets": "mask_rcnn_resnet101_atrous_coco_2018_01_28/model.ckpt",
    "tf1_irv2_atrous": "mask_rcnn_inception_resnet_v2_atrous_coco_2018_01_28/model.ckpt",
}

_CONV = ("op: CONV regularizer { l2_regularizer { weight: 0.0 } } "
         "initializer { truncated_normal_initializer { stddev: 0.01 } }")
_FC = ("op: FC regularizer { l2_regularizer { weight: 0.0 } } initializer { "
       "variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }")
_TF1_EVAL = "eval_config: {{ num_examples: {num_examples} max_evals: 10 }}"
_TF1_SCHEDULE = "manual_step_learning_rate {{ initial_learning_rate: {lr} {schedule} }}"

# Each file's own values. `masks` is the mask part of mask_rcnn_box_predictor,
# `reader` the mask fields of both input readers.
_TF1 = dict(stages="number_of_stages: 3", resize_masks="", anchors_stride=16, atrous="",
            max_total=300, mask_loss="second_stage_mask_prediction_loss_weight: 4.0",
            batch=1, eval=_TF1_EVAL, num_examples=8000,
            masks=("mask_height: 33 mask_width: 33 mask_prediction_conv_depth: 0 "
                   "mask_prediction_num_conv_layers: 4"),
            reader="", eval_reader_extra="num_readers: 1",
            checkpoint=('fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/model.ckpt" '
                        "from_detection_checkpoint: true num_steps: 200000"),
            schedule="schedule { step: 0 learning_rate: .0003 } schedule { step: 900000 "
                     "learning_rate: .00003 } schedule { step: 1200000 learning_rate: .000003 }",
            lr=0.0003, crop="initial_crop_size: 14 maxpool_kernel_size: 2 maxpool_stride: 2",
            resizer="keep_aspect_ratio_resizer { min_dimension: 800 max_dimension: 1365 }")
CONFIGS: Dict[str, dict] = {
    "tf2_irv2_1024": dict(
        _TF1, extractor="type: 'faster_rcnn_inception_resnet_v2_keras'", max_total=100,
        resizer="fixed_shape_resizer { height: 1024 width: 1024 }",
        crop="initial_crop_size: 17 maxpool_kernel_size: 1 maxpool_stride: 1",
        resize_masks="resize_masks: false", batch=16,
        eval=('eval_config: {{ metrics_set: "coco_detection_metrics" metrics_set: '
              '"coco_mask_metrics" eval_instance_masks: true use_moving_averages: false '
              "batch_size: 1 include_metrics_per_category: true }}"),
        reader="load_instance_masks: true mask_type: PNG_MASKS",
        eval_reader_extra="num_epochs: 1",
        optimizer=("learning_rate: { cosine_decay_learning_rate { learning_rate_base: 0.008 "
                   "total_steps: 200000 warmup_learning_rate: 0.0 warmup_steps: 5000 } }"),
        checkpoint=("num_steps: 200000 fine_tune_checkpoint_version: V2 fine_tune_checkpoint: "
                    '"PATH_TO_BE_CONFIGURED/inception_resnet_v2.ckpt-1" '
                    'fine_tune_checkpoint_type: "classification"')),
    "tf1_inception_v2": dict(
        _TF1, extractor="type: 'faster_rcnn_inception_v2' first_stage_features_stride: 16",
        masks=("mask_height: 15 mask_width: 15 mask_prediction_conv_depth: 0 "
               "mask_prediction_num_conv_layers: 2"),
        reader="load_instance_masks: true mask_type: PNG_MASKS", lr=0.0002,
        schedule=("schedule { step: 900000 learning_rate: .00002 } "
                  "schedule { step: 1200000 learning_rate: .000002 }"),
        checkpoint=('fine_tune_checkpoint: "_MODEL_DIR_" from_detection_checkpoint: true '
                    "num_steps: 200000")),
    "tf1_resnet50_atrous": dict(
        _TF1, extractor="type: 'faster_rcnn_resnet50' first_stage_features_stride: 8",
        anchors_stride=8, atrous="first_stage_atrous_rate: 2"),
    "tf1_resnet101_atrous": dict(
        _TF1, extractor="type: 'faster_rcnn_resnet101' first_stage_features_stride: 8",
        anchors_stride=8, atrous="first_stage_atrous_rate: 2"),
    "tf1_resnet101_pets": dict(
        _TF1, extractor="type: 'faster_rcnn_resnet101' first_stage_features_stride: 16",
        resizer="keep_aspect_ratio_resizer { min_dimension: 600 max_dimension: 1024 }",
        masks="", mask_loss="", reader="load_instance_masks: true", num_examples=2000,
        lr=0.0007, schedule=("schedule { step: 0 learning_rate: 0.0007 } schedule { step: "
                             "15000 learning_rate: 0.00007 } schedule { step: 30000 "
                             "learning_rate: 0.000007 }")),
    "tf1_irv2_atrous": dict(
        _TF1, extractor="type: 'faster_rcnn_inception_resnet_v2' first_stage_features_stride: 8",
        anchors_stride=8, atrous="first_stage_atrous_rate: 2", max_total=100,
        crop="initial_crop_size: 17 maxpool_kernel_size: 1 maxpool_stride: 1",
        reader="load_instance_masks: true mask_type: PNG_MASKS",
        schedule=("schedule { step: 900000 learning_rate: .00003 } "
                  "schedule { step: 1200000 learning_rate: .000003 }")),
}

_TEMPLATE = """
model {{ faster_rcnn {{
  num_classes: 90
  image_resizer {{ {resizer} }}
  {stages}
  feature_extractor {{ {extractor} }}
  first_stage_anchor_generator {{ grid_anchor_generator {{
    scales: [0.25, 0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0]
    height_stride: {anchors_stride} width_stride: {anchors_stride} }} }}
  {atrous}
  first_stage_box_predictor_conv_hyperparams {{ {conv} }}
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: 300
  first_stage_localization_loss_weight: 2.0
  first_stage_objectness_loss_weight: 1.0
  {crop}
  second_stage_box_predictor {{ mask_rcnn_box_predictor {{
    use_dropout: false dropout_keep_probability: 1.0 predict_instance_masks: true
    {masks} fc_hyperparams {{ {fc} }} conv_hyperparams {{ {conv} }} }} }}
  second_stage_post_processing {{
    batch_non_max_suppression {{ score_threshold: 0.0 iou_threshold: 0.6
      max_detections_per_class: 100 max_total_detections: {max_total} }}
    score_converter: SOFTMAX }}
  second_stage_localization_loss_weight: 2.0
  second_stage_classification_loss_weight: 1.0
  {mask_loss}
  {resize_masks}
}} }}
train_config: {{
  batch_size: {batch}
  optimizer {{ momentum_optimizer: {{ {optimizer} momentum_optimizer_value: 0.9 }}
    use_moving_average: false }}
  gradient_clipping_by_norm: 10.0
  {checkpoint}
  data_augmentation_options {{ random_horizontal_flip {{ }} }}
}}
train_input_reader: {{
  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.pbtxt"
  tf_record_input_reader {{ input_path: "PATH_TO_BE_CONFIGURED/train.record" }}
  {reader}
}}
{eval}
eval_input_reader: {{
  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.pbtxt"
  shuffle: false
  tf_record_input_reader {{ input_path: "PATH_TO_BE_CONFIGURED/val.record" }}
  {reader} {eval_reader_extra}
}}
"""


def config_text(name: str) -> str:
    """The published config ``name`` (a key of :data:`SOURCES`) as text."""
    values = dict(CONFIGS[name])
    values.setdefault("optimizer", "learning_rate: { " + _TF1_SCHEDULE.format(**values) + " }")
    values["eval"] = values["eval"].format(**values)
    return _TEMPLATE.format(conv=_CONV, fc=_FC, **values)
