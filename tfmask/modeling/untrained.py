"""A never-trained Mask R-CNN saved as a checkpoint, for exports whose weights do not matter.

Seeded random weights: its softmax scores stay far below 1.0, so every
detection slot is filled at ``min_score`` 0 and none is kept at 1.0. The
phone-photo benchmark (:mod:`tfmask.bench.photos`) and the empty-results
export tests export it. Example::

    from tfmask.modeling.untrained import save_untrained
    prep, model = save_untrained("pipeline.config", "fresh_model", seed=0)
    # fresh_model/ckpt-1, ready for tfmask.export.exporter.export_model
"""

from __future__ import annotations

from tfmask.errors import PathLike


def save_untrained(config: PathLike, ckpt_dir: PathLike, seed: int):
    """Builds the model of a pipeline.config with seeded random weights and saves it.

    Built with Model Garden's ``factory.build_maskrcnn`` and its variables
    created by one :func:`tfmask.export.serving.detect` call on a zero image.

    Args:
      config: the pipeline.config.
      ckpt_dir: the folder the checkpoint ``ckpt-1`` is written to.
      seed: the Keras random seed of the weights.

    Returns:
      ``(preprocessing, model)``: the config's
      :class:`~tfmask.export.serving.Preprocessing` and the Keras model.
    """
    import tensorflow as tf
    import tf_keras
    from official.vision.modeling import factory

    import tfmask.training.task  # noqa: F401  registers tfmask's configs
    from tfmask.config.translate import translate
    from tfmask.export import serving

    params = translate(config).params
    prep = serving.Preprocessing.from_model_config(params.task.model)
    tf_keras.utils.set_random_seed(seed)
    model = factory.build_maskrcnn(
        input_specs=tf_keras.layers.InputSpec(shape=[None, *prep.padded_hw, 3]),
        model_config=params.task.model)
    serving.detect(model, prep, tf.zeros([1, *prep.padded_hw, 3], tf.uint8))  # variables
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(ckpt_dir),
                               max_to_keep=1).save(checkpoint_number=1)
    return prep, model
