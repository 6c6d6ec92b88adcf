"""pipeline.config and label map texts for torchvision's Mask R-CNN in tfmask.

:func:`pipeline_config_text` writes the OD API ``pipeline.config`` whose
translation (:mod:`tfmask.config.translate`) is torchvision's model with
torchvision's inference settings (``maskrcnn_resnet50_fpn[_v2]`` defaults:
1000 proposals per level and in all, RPN NMS 0.7, box score > 0.05, NMS 0.5,
100 detections, 512 sampled ROIs a quarter positive, 7x7 box and 14x14 mask
crops, 28x28 masks). The converter writes it for the full COCO model; the
shipped ``configs/mask_rcnn_resnet50_fpn_coco_finetune[_v2].config`` are
the same settings for fine-tuning on the user's classes.

The COCO label map lists torchvision's category names with their COCO ids
(``torchvision.models._meta._COCO_CATEGORIES``: index = COCO id; ids 12, 26,
29, 30, 45, 66, 68, 69, 71 and 83 are unused, "N/A").
"""

from __future__ import annotations

from typing import Optional, Sequence

FEATURE_EXTRACTORS = {"v1": "faster_rcnn_resnet50_fpn_torchvision",
                      "v2": "faster_rcnn_resnet50_fpn_torchvision_v2"}

# torchvision's _COCO_CATEGORIES: index i is COCO category id i (0: background).
COCO_CATEGORIES = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter",
    "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A",
    "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)


def _items(pairs) -> str:
    return "".join(f"item {{\n  id: {i}\n  name: '{name}'\n}}\n" for i, name in pairs)


def coco_label_map_text() -> str:
    """The 80 COCO categories with their ids (1-90)."""
    return _items((i, n) for i, n in enumerate(COCO_CATEGORIES) if i and n != "N/A")


def numbered_label_map_text(num_classes: int) -> str:
    """``class_1`` ... ``class_N`` (a state dict of another class count)."""
    return _items((i, f"class_{i}") for i in range(1, num_classes + 1))


# Long by design: one template of the whole pipeline.config, read like the file it writes.
def pipeline_config_text(version: str, num_classes: int, label_map_path: str,
                         train_input_path: str = "../../dataset/records/train-?????-of-?????",
                         eval_input_path: str = "../../dataset/records/val-?????-of-?????",
                         min_dimension: int = 800, max_dimension: int = 1333,
                         fine_tune_checkpoint: Optional[str] = None, batch_size: int = 2,
                         num_steps: int = 2000, learning_rate: float = 0.0025,
                         augmentations: Sequence[str] = ("random_horizontal_flip { }",),
                         proposals: int = 1000, rois_per_image: int = 512,
                         title: str = "") -> str:
    """An OD API pipeline.config for torchvision's Mask R-CNN ``version`` (v1 or v2).

    Paths are written as given (relative ones resolve against the config's folder).
    ``proposals`` (per level and in all) and ``rois_per_image`` (sampled for
    training the heads) are torchvision's 1000 and 512 by default.
    The schedule is torchvision's recipe scaled to ``batch_size`` (SGD with
    momentum 0.9, learning rate 0.02 per 16 images, weight decay 1e-4), cosine
    decay over ``num_steps`` after 100 warm-up steps.
    """
    if version not in FEATURE_EXTRACTORS:
        raise ValueError(f"version {version!r}; valid: {', '.join(FEATURE_EXTRACTORS)}")
    ckpt = (f'  fine_tune_checkpoint: "{fine_tune_checkpoint}"\n'
            '  fine_tune_checkpoint_type: "detection"\n' if fine_tune_checkpoint else "")
    augs = "".join(f"  data_augmentation_options {{ {a} }}\n" for a in augmentations)
    head = f"# {title}\n" if title else ""
    return f"""{head}# torchvision's Mask R-CNN R50-FPN {version} in tfmask (tfmask/modeling/torchvision).
model {{
  faster_rcnn {{
    num_classes: {num_classes}
    image_resizer {{
      keep_aspect_ratio_resizer {{
        min_dimension: {min_dimension} max_dimension: {max_dimension} pad_to_max_dimension: true
      }}
    }}
    feature_extractor {{
      type: '{FEATURE_EXTRACTORS[version]}'
      fpn {{ min_level: 2 max_level: 6 additional_layer_depth: 256 }}
    }}
    first_stage_anchor_generator {{
      multiscale_anchor_generator {{
        min_level: 2 max_level: 6 anchor_scale: 8.0
        aspect_ratios: [0.5, 1.0, 2.0] scales_per_octave: 1
      }}
    }}
    first_stage_nms_score_threshold: 0.0
    first_stage_nms_iou_threshold: 0.7
    first_stage_max_proposals: {proposals}
    first_stage_minibatch_size: 256
    first_stage_positive_balance_fraction: 0.5
    first_stage_localization_loss_weight: 1.0
    first_stage_objectness_loss_weight: 1.0
    initial_crop_size: 14
    maxpool_kernel_size: 2
    maxpool_stride: 2
    second_stage_batch_size: {rois_per_image}
    second_stage_balance_fraction: 0.25
    second_stage_box_predictor {{
      mask_rcnn_box_predictor {{
        fc_hyperparams {{ regularizer {{ l2_regularizer {{ weight: 0.0001 }} }} }}
        mask_height: 28
        mask_width: 28
        mask_prediction_num_conv_layers: 4
        mask_prediction_conv_depth: 256
        predict_instance_masks: true
      }}
    }}
    second_stage_post_processing {{
      batch_non_max_suppression {{
        score_threshold: 0.05
        iou_threshold: 0.5
        max_detections_per_class: 100
        max_total_detections: 100
      }}
      score_converter: SOFTMAX
    }}
    second_stage_localization_loss_weight: 1.0
    second_stage_classification_loss_weight: 1.0
    second_stage_mask_prediction_loss_weight: 1.0
  }}
}}

train_config {{
  batch_size: {batch_size}
  num_steps: {num_steps}
  optimizer {{
    momentum_optimizer {{
      learning_rate {{
        cosine_decay_learning_rate {{
          learning_rate_base: {learning_rate:g}
          total_steps: {num_steps}
          warmup_learning_rate: {learning_rate / 10:g}
          warmup_steps: {min(100, max(num_steps - 1, 0))}
        }}
      }}
      momentum_optimizer_value: 0.9
    }}
    use_moving_average: false
  }}
{ckpt}{augs}}}

train_input_reader {{
  label_map_path: "{label_map_path}"
  tf_record_input_reader {{ input_path: "{train_input_path}" }}
  load_instance_masks: true
  mask_type: PNG_MASKS
}}

eval_config {{
  metrics_set: "coco_detection_metrics"
  metrics_set: "coco_mask_metrics"
  eval_instance_masks: true
  batch_size: 1
}}

eval_input_reader {{
  label_map_path: "{label_map_path}"
  shuffle: false
  num_epochs: 1
  tf_record_input_reader {{ input_path: "{eval_input_path}" }}
  load_instance_masks: true
  mask_type: PNG_MASKS
}}
"""
