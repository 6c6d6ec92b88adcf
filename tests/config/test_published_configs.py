"""The OD API's published Mask R-CNN configs, filled in as the tutorial says: what tfmask does.

Each config (:mod:`published_configs`, rebuilt from tensorflow/models
research/object_detection) is filled in with ``num_classes``, the label map,
the record paths and the zoo checkpoint the tutorial downloads. With that
checkpoint every one is refused before any work, with one ``error:`` line
naming the field and what to use instead; without it (or with ``make
pretrained``'s weights) each translates as listed here, and trains, exports
and infers (``test_configs_train.py``) - except ``faster_rcnn_inception_v2``,
refused for its feature extractor.
"""

from __future__ import annotations

import pytest

from config_runs import fill_in, records
from published_configs import CONFIGS, SOURCES, ZOO_CHECKPOINTS, config_text
from tfmask.errors import ConfigError

TRAINABLE = [n for n in CONFIGS if n != "tf1_inception_v2"]


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    return records(tmp_path_factory)


def test_sources_are_cited():
    assert set(SOURCES) == set(CONFIGS) == set(ZOO_CHECKPOINTS)
    assert all(s.startswith("tensorflow/models research/object_detection/") for s in
               SOURCES.values())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_zoo_checkpoint_is_refused_before_any_work(name, recs, tmp_path, capsys):
    from tfmask.cli import main

    cfg = fill_in(config_text(name), tmp_path / "p.config", recs, size=None,
                  checkpoint=str(tmp_path / "zoo" / ZOO_CHECKPOINTS[name]))
    code = main(["train", "--pipeline_config_path", str(cfg), "--model_dir",
                 str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith(f"error: {cfg}: "), err
    assert not (tmp_path / "run").exists()
    if name == "tf1_inception_v2":
        assert "feature_extractor.type 'faster_rcnn_inception_v2' is not supported" in err[0]
        assert "use 'faster_rcnn_resnet50_fpn_keras'" in err[0]
        return
    assert "train_config.fine_tune_checkpoint" in err[0]
    assert ("TF2 model zoo's mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8" if
            name.startswith("tf2") else "TF1 model zoo's") in err[0]
    assert "has no FPN" in err[0] and "Use instead" in err[0]
    assert ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5" if "irv2" in name
            else "resnet50_imagenet/ckpt-28080" if "resnet50" in name
            else "Model Garden ImageNet checkpoint") in err[0]


# name -> (backbone, model_id, box head convs/fcs, input size, mask px, mask convs,
#          proposals, sampled ROIs, masks, detections)
EXPECTED = {
    "tf2_irv2_1024": ("inception_resnet_v2", None, (4, 1), 1024, 32, 4, 300, 64, 16, 100),
    "tf1_resnet50_atrous": ("resnet", 50, (4, 1), 1408, 32, 4, 300, 64, 16, 300),
    "tf1_resnet101_atrous": ("resnet", 101, (4, 1), 1408, 32, 4, 300, 64, 16, 300),
    "tf1_resnet101_pets": ("resnet", 101, (4, 1), 1024, 14, 2, 300, 64, 16, 300),
    "tf1_irv2_atrous": ("inception_resnet_v2", None, (4, 1), 1408, 32, 4, 300, 64, 16, 100),
}


@pytest.mark.parametrize("name", TRAINABLE)
def test_translation_without_the_zoo_checkpoint(name, recs, tmp_path):
    from tfmask.config.translate import translate

    t = translate(fill_in(config_text(name), tmp_path / "p.config", recs, size=None))
    m = t.params.task.model
    backbone, depth, head, size, mask_px, mask_convs, props, rois, masks, dets = EXPECTED[name]
    assert m.backbone.type == backbone
    if depth:
        assert m.backbone.resnet.model_id == depth
    assert (m.detection_head.num_convs, m.detection_head.num_fcs) == head
    assert list(m.input_size) == [size, size, 3]
    assert (m.mask_roi_aligner.crop_size * 2, m.mask_head.num_convs) == (mask_px, mask_convs)
    assert (m.roi_generator.num_proposals, m.roi_sampler.num_sampled_rois,
            m.mask_sampler.num_sampled_masks, m.detection_generator.max_num_detections) == \
        (props, rois, masks, dets)
    notes = " ".join(t.notes)
    if name.startswith("tf1"):
        assert "(TF1) -> 'faster_rcnn_" in notes
        assert t.params.task.init_checkpoint == ""
    if "atrous" in name:
        assert "first_stage_features_stride 8 / first_stage_atrous_rate 2 (atrous)" in notes
        assert "max_dimension 1365 -> 1408" in notes
    # Fields tfmask does not honour are listed, each by its full path.
    assert "model.faster_rcnn.first_stage_anchor_generator.grid_anchor_generator." \
           "height_stride" in t.ignored
    assert "model.faster_rcnn.first_stage_box_predictor_conv_hyperparams.op" in t.ignored
    assert not any(p.endswith("l2_regularizer.weight") for p in t.ignored)
    assert all(p not in t.honoured for p in t.ignored)


def test_inception_v2_is_refused_without_a_checkpoint_too(recs, tmp_path):
    from tfmask.config.translate import translate

    cfg = fill_in(config_text("tf1_inception_v2"), tmp_path / "p.config", recs)
    with pytest.raises(ConfigError, match="only as the OD API's TF1 slim extractor"):
        translate(cfg)


def _od_api_tf2_checkpoint(prefix):
    """A TF2 checkpoint with the OD API's object layout (model/_feature_extractor/...)."""
    import tensorflow as tf

    model = tf.Module()
    model._feature_extractor = tf.Module()
    model._feature_extractor.kernel = tf.Variable(tf.zeros([3, 3, 3, 32]))
    return tf.train.Checkpoint(model=model).write(str(prefix))


def _tf1_checkpoint(prefix):
    """A TF1 name-based checkpoint (no object graph), as the TF1 zoo's model.ckpt."""
    import tensorflow as tf

    with tf.Graph().as_default():
        tf.compat.v1.get_variable("FirstStageFeatureExtractor/InceptionResnetV2/w", [1])
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(prefix))


def _model_garden_checkpoint(prefix):
    import tensorflow as tf

    model = tf.Module()
    model.backbone = tf.Module()
    model.backbone.kernel = tf.Variable(tf.zeros([1]))
    return tf.train.Checkpoint(model=model).write(str(prefix))


@pytest.mark.parametrize("writer,refused", [
    (_od_api_tf2_checkpoint, "a checkpoint of the OD API's own Mask R-CNN"),
    (_tf1_checkpoint, "a TF1 name-based checkpoint"),
    (_model_garden_checkpoint, None),
])
def test_checkpoints_are_judged_by_their_content(writer, refused, recs, tmp_path):
    """Files that exist are recognised by their variables, whatever they are called."""
    from tfmask.config.translate import translate

    prefix = writer(tmp_path / "weights" / "start")
    cfg = fill_in(config_text("tf2_irv2_1024"), tmp_path / "p.config", recs,
                  checkpoint=str(prefix))
    if refused is None:
        assert translate(cfg).params.task.init_checkpoint == str(prefix)
        return
    with pytest.raises(ConfigError, match=f"fine_tune_checkpoint .* is {refused}"):
        translate(cfg)
