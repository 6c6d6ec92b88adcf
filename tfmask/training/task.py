"""tfmask's Model Garden experiment: Mask R-CNN plus what tfmask adds to it.

Model Garden builds models and tasks from registered configs, so the
additions are registered here, once, when this module is imported:

* the ``inception_resnet_v2`` backbone type
  (:mod:`tfmask.modeling.inception_resnet_v2`, SAME-padded, FPN-aligned);
* the ``torchvision_resnet50_fpn`` model type: torchvision's COCO-trained
  Mask R-CNN R50-FPN v1/v2 (:mod:`tfmask.modeling.torchvision`), built by
  :func:`tfmask.modeling.factory.build_maskrcnn` and fed by its own parser
  (torchvision's resize and anchors);
* training augmentations beyond flips and scale jitter
  (:class:`tfmask.training.augment.Augmentation`: 90-degree and free
  rotation, colour jitter), applied by :class:`~tfmask.training.augment.AugmentingParser`;
* warm start with a report of what matched (:mod:`tfmask.training.warm_start`),
  including Keras ``.h5`` ImageNet weights for Inception-ResNet-v2;
* the experiment ``tfmask_maskrcnn``: Model Garden's ``maskrcnn_resnetfpn_coco``
  with these config classes, so a saved ``params.yaml`` loads back.

Everything else (model, losses, metrics, train/eval steps) is Model Garden's
``MaskRCNNTask`` unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import tf_keras
from absl import logging
from official.common import dataset_fn as dataset_fn_lib
from official.core import config_definitions as cfg
from official.core import exp_factory, task_factory
from official.modeling import hyperparams
from official.vision.configs import backbones as backbones_cfg
from official.vision.configs import maskrcnn as maskrcnn_cfg
from official.vision.dataloaders import input_reader, input_reader_factory
from official.vision.dataloaders import tf_example_decoder
from official.vision.modeling.backbones import factory as backbone_factory
from official.vision.tasks import maskrcnn

from tfmask.training.augment import Augmentation, AugmentingParser

EXPERIMENT = "tfmask_maskrcnn"
IRV2_TYPE = "inception_resnet_v2"
TORCHVISION_TYPE = "torchvision_resnet50_fpn"  # tfmask.modeling.torchvision.BACKBONE_TYPE


@dataclasses.dataclass
class InceptionResNetV2(hyperparams.Config):
    """Options of tfmask's Inception-ResNet-v2 backbone (none needed yet)."""


@dataclasses.dataclass
class TorchvisionResNet50FPN(hyperparams.Config):
    """torchvision's Mask R-CNN R50-FPN (``tfmask.modeling.torchvision``); the type
    selects the whole model, not only the backbone.

    Attributes:
      version: ``v1`` (``maskrcnn_resnet50_fpn``) or ``v2`` (``..._v2``).
      norm_epsilon: BatchNorm epsilon; None: 0.0 for v1 (its COCO weights), 1e-5 for v2.
      trainable_layers: torchvision's ``trainable_backbone_layers`` (3: the stem
        and layer1 stay fixed).
      min_size, max_size: ``GeneralizedRCNNTransform``'s resize: the shorter side
        to ``min_size`` unless the longer would pass ``max_size``.
    """

    version: str = "v1"
    norm_epsilon: Optional[float] = None
    trainable_layers: int = 3
    min_size: int = 800
    max_size: int = 1333


@dataclasses.dataclass
class Backbone(backbones_cfg.Backbone):
    """Model Garden's backbone choices plus ``inception_resnet_v2`` and
    ``torchvision_resnet50_fpn``."""

    inception_resnet_v2: InceptionResNetV2 = dataclasses.field(
        default_factory=InceptionResNetV2)
    torchvision_resnet50_fpn: TorchvisionResNet50FPN = dataclasses.field(
        default_factory=TorchvisionResNet50FPN)


@dataclasses.dataclass
class MaskRCNN(maskrcnn_cfg.MaskRCNN):
    backbone: Backbone = dataclasses.field(
        default_factory=lambda: Backbone(type="resnet", resnet=backbones_cfg.ResNet()))


@dataclasses.dataclass
class Parser(maskrcnn_cfg.Parser):
    augmentation: Augmentation = dataclasses.field(default_factory=Augmentation)


@dataclasses.dataclass
class DataConfig(maskrcnn_cfg.DataConfig):
    parser: Parser = dataclasses.field(default_factory=Parser)


@dataclasses.dataclass
class MaskRCNNTaskConfig(maskrcnn_cfg.MaskRCNNTask):
    """Model Garden's Mask R-CNN task config with tfmask's model and data configs.

    ``init_checkpoint`` may also name a Keras ``.h5`` weights file (ImageNet
    Inception-ResNet-v2) when ``init_checkpoint_modules`` is ``backbone``.
    ``eval_images`` predictions are drawn into TensorBoard at each evaluation.
    """

    model: MaskRCNN = dataclasses.field(default_factory=MaskRCNN)
    train_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=True))
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=False, drop_remainder=False))
    eval_images: int = 4


@exp_factory.register_config_factory(EXPERIMENT)
def tfmask_maskrcnn() -> cfg.ExperimentConfig:
    """``maskrcnn_resnetfpn_coco`` with tfmask's task config; nothing downloads."""
    base = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco")
    task = MaskRCNNTaskConfig()
    task.override(base.task.as_dict(), is_strict=True)
    task.init_checkpoint = ""  # the base points at a cloud bucket
    task.annotation_file = None
    return cfg.ExperimentConfig(task=task, trainer=base.trainer, runtime=base.runtime,
                                restrictions=["task.train_data.is_training != None",
                                              "task.validation_data.is_training != None"])


@backbone_factory.register_backbone_builder(IRV2_TYPE)
def build_inception_resnet_v2(input_specs, backbone_config, norm_activation_config,
                              l2_regularizer=None) -> tf_keras.Model:
    """Model Garden backbone builder for ``type: inception_resnet_v2``."""
    from tfmask.modeling.inception_resnet_v2 import build_inception_resnet_v2 as build

    if backbone_config.type != IRV2_TYPE:
        raise ValueError(f"backbone type {backbone_config.type!r} is not {IRV2_TYPE!r}")
    return build(input_specs, kernel_regularizer=l2_regularizer,
                 norm_momentum=norm_activation_config.norm_momentum,
                 norm_epsilon=norm_activation_config.norm_epsilon,
                 use_sync_bn=norm_activation_config.use_sync_bn)


@task_factory.register_task_cls(MaskRCNNTaskConfig)
class MaskRCNNTask(maskrcnn.MaskRCNNTask):
    """Model Garden's Mask R-CNN task with tfmask's input parser and warm start.

    Args:
      params: the task config (:class:`MaskRCNNTaskConfig`).
      logging_dir: where Model Garden writes what the task logs.
      name: the task name.
      say: receives the warm-start report (default: absl's ``logging.info``).
      restore_instead_of_warm_start: called instead of the warm start (a
        non-chief worker resuming a multi-worker run: Model Garden gives it an
        empty temporary checkpoint dir, so it restores the chief's checkpoint
        where the chief restores its own, in the same order of variable
        creation).

    ``init_report`` keeps the last warm-start report.
    """

    def __init__(self, params, logging_dir: Optional[str] = None, name: Optional[str] = None,
                 say: Callable[[str], None] = logging.info,
                 restore_instead_of_warm_start: Optional[Callable[[], None]] = None):
        super().__init__(params, logging_dir=logging_dir, name=name)
        self.say = say
        self.restore_instead_of_warm_start = restore_instead_of_warm_start
        self.init_report = None

    def build_inputs(self, params: DataConfig,
                     input_context: Optional[object] = None,
                     dataset_fn: Optional[object] = None):
        """Records -> decoded -> (augmented) -> Model Garden's Mask R-CNN parser."""
        decoder_cfg = params.decoder.get()
        if params.decoder.type != "simple_decoder":
            raise ValueError(f"decoder type {params.decoder.type!r} is not supported; "
                             "valid: simple_decoder")
        model_cfg = self.task_config.model
        decoder = tf_example_decoder.TfExampleDecoder(
            include_mask=model_cfg.include_mask,
            regenerate_source_id=decoder_cfg.regenerate_source_id,
            mask_binarize_threshold=decoder_cfg.mask_binarize_threshold)
        p = params.parser
        parser_cls, extra = AugmentingParser, {}
        if model_cfg.backbone.type == TORCHVISION_TYPE:
            from tfmask.modeling.torchvision.inputs import TorchvisionParser

            tv = model_cfg.backbone.get()
            parser_cls, extra = TorchvisionParser, {"min_size": tv.min_size,
                                                    "max_size": tv.max_size}
        parser = parser_cls(
            output_size=model_cfg.input_size[:2],
            min_level=model_cfg.min_level, max_level=model_cfg.max_level,
            num_scales=model_cfg.anchor.num_scales,
            aspect_ratios=model_cfg.anchor.aspect_ratios,
            anchor_size=model_cfg.anchor.anchor_size,
            rpn_match_threshold=p.rpn_match_threshold,
            rpn_unmatched_threshold=p.rpn_unmatched_threshold,
            rpn_batch_size_per_im=p.rpn_batch_size_per_im,
            rpn_fg_fraction=p.rpn_fg_fraction,
            aug_rand_hflip=p.aug_rand_hflip, aug_rand_vflip=p.aug_rand_vflip,
            aug_scale_min=p.aug_scale_min, aug_scale_max=p.aug_scale_max,
            aug_type=p.aug_type,
            skip_crowd_during_training=p.skip_crowd_during_training,
            max_num_instances=p.max_num_instances,
            include_mask=model_cfg.include_mask,
            outer_boxes_scale=model_cfg.outer_boxes_scale,
            mask_crop_size=p.mask_crop_size, dtype=params.dtype,
            augmentation=p.augmentation, **extra)
        reader = input_reader_factory.input_reader_generator(
            params,
            dataset_fn=dataset_fn or dataset_fn_lib.pick_dataset_fn(params.file_type),
            decoder_fn=decoder.decode,
            combine_fn=input_reader.create_combine_fn(params),
            parser_fn=parser.parse_fn(params.is_training))
        return reader.read(input_context=input_context)

    def build_model(self) -> tf_keras.Model:
        """Model Garden's ``build_model`` steps with
        :func:`tfmask.modeling.factory.build_maskrcnn` (torchvision's model too, and the
        mask branch trained on foreground ROIs only)."""
        from tfmask.modeling.factory import build_maskrcnn

        model_cfg = self.task_config.model
        decay = self.task_config.losses.l2_weight_decay
        # Halved as Model Garden does: Keras' l2 is twice tf.nn.l2_loss.
        model = build_maskrcnn(
            tf_keras.layers.InputSpec(shape=[None] + list(model_cfg.input_size)), model_cfg,
            tf_keras.regularizers.l2(decay / 2.0) if decay else None)
        if self.task_config.freeze_backbone:
            model.backbone.trainable = False
        # Creates the variables (Model Garden's warm-up call).
        model(tf_keras.Input(model_cfg.input_size), image_shape=tf_keras.layers.Input([2]),
              training=False)
        return model

    def initialize(self, model: tf_keras.Model) -> None:
        """Warm start from ``init_checkpoint``; reports matched/unmatched variables.

        Called by the checkpoint manager only when the model dir holds no
        checkpoint yet (resuming takes precedence).
        """
        from tfmask.training.warm_start import warm_start

        if self.restore_instead_of_warm_start is not None:
            self.restore_instead_of_warm_start()
            return
        if not self.task_config.init_checkpoint:
            return
        report = warm_start(model, self.task_config.init_checkpoint,
                            self.task_config.init_checkpoint_modules)
        self.init_report = report
        for line in report.summary_lines():
            self.say(line)

    def build_metrics(self, training: bool = True):
        """Model Garden's metrics; pycocotools' prints while it indexes the eval ground
        truth go to the run's log (:func:`tfmask.runlog.third_party_output`)."""
        from tfmask.runlog import third_party_output

        with third_party_output():
            return super().build_metrics(training)

    def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
        """Model Garden's COCO evaluation, with pycocotools' tables sent to the run's log."""
        from tfmask.runlog import third_party_output

        with third_party_output():
            return super().reduce_aggregated_logs(aggregated_logs, global_step)
