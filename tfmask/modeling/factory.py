"""One builder for every Mask R-CNN tfmask trains: Model Garden's, or torchvision's.

:func:`build_maskrcnn` is Model Garden's ``factory.build_maskrcnn`` for every
backbone Model Garden builds (its own and the ones :mod:`tfmask.training.task`
registers), and :func:`tfmask.modeling.torchvision.detector.build_model` for
``backbone.type: torchvision_resnet50_fpn`` (torchvision's whole detector, not
only a backbone). The training task and the exporter both call it.

Either way the mask branch trains on foreground ROIs only
(:mod:`tfmask.modeling.foreground_masks`); inference is Model Garden's. Model
Garden's proposals and detections decode in float32 under a mixed-precision
policy (:mod:`tfmask.modeling.proposals`).
"""

from __future__ import annotations

TORCHVISION_TYPE = "torchvision_resnet50_fpn"


def is_torchvision(model_config) -> bool:
    """Whether a Model Garden ``MaskRCNN`` config selects torchvision's Mask R-CNN."""
    return model_config.backbone.type == TORCHVISION_TYPE


def build_maskrcnn(input_specs, model_config, l2_regularizer=None):
    """The (unbuilt) Keras Mask R-CNN of ``model_config``.

    Args:
      input_specs: ``tf_keras.layers.InputSpec`` of the padded images [B, H, W, 3].
      model_config: Model Garden's ``MaskRCNN`` config (tfmask's subclass).
      l2_regularizer: a Keras regularizer for the kernels, or None.
    """
    from tfmask.modeling.foreground_masks import foreground_mask_training
    from tfmask.modeling.proposals import float32_box_stages

    if is_torchvision(model_config):
        from tfmask.modeling.torchvision.detector import build_model

        return foreground_mask_training(build_model(model_config, l2_regularizer))
    from official.vision.modeling import factory

    return float32_box_stages(foreground_mask_training(factory.build_maskrcnn(
        input_specs=input_specs, model_config=model_config, l2_regularizer=l2_regularizer)))
