"""Dense scenes are not truncated silently.

Before the first step training reads its records: ``max_number_of_boxes`` is raised to
the densest image (said in a note) and a ``max_total_detections`` below it is a warning
(``--strict``: an error). The slow test takes 640x480 images with 256 objects each through
convert -> train -> export -> infer -> eval.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import Rect, make_dataset, write_config
from tfmask.cli import main
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.scan import scan_records
from tfmask.errors import ConfigError

SIZE_HW = (480, 640)
GRID = (16, 16)  # 256 objects per image


def grid_layout(size_hw, grid, stems, empty=()):
    """Each stem -> rows x cols rectangles (classes alternating), one per grid cell."""
    rows, cols = grid
    ch, cw = size_hw[0] // rows, size_hw[1] // cols
    rects = [Rect("speaker" if (r + c) % 2 else "cup",
                  (c * cw + 2, r * ch + 2, c * cw + cw - 3, r * ch + ch - 3))
             for r in range(rows) for c in range(cols)]
    return {stem: ([] if stem in empty else rects) for stem in stems}


@pytest.fixture(scope="module")
def small_dense(tmp_path_factory):
    """Records of 3 small images with 120 objects each and one negative."""
    root = tmp_path_factory.mktemp("dense_small")
    make_dataset(root / "data", grid_layout((120, 160), (10, 12), "abcd", empty="d"),
                 size_hw=(120, 160))
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "records"),
                          instance_mode="components", val_fraction=0.25, progress=False))
    return root


def _params(root, fields=None):
    from tfmask.config.translate import translate

    return translate(write_config(root / "pipeline.config", root / "records",
                                  dict({"model.faster_rcnn.num_classes": 2}, **(fields or {})))
                     ).params


def test_the_limit_is_raised_to_the_densest_image_and_said(small_dense):
    from tfmask.training.records_check import check_records

    stats = scan_records(str(small_dense / "records" / "*-of-*"))
    assert stats.max_instances == 120 and stats.negatives == 1 and stats.examples == 4
    params = _params(small_dense)
    assert params.task.train_data.parser.max_num_instances == 100  # the OD API default
    checked = check_records(params)
    assert checked.raised_from == 100 and checked.instance_slots == 120
    assert params.task.train_data.parser.max_num_instances == 120
    assert params.task.validation_data.parser.max_num_instances == 120
    notes = "\n".join(checked.lines)
    assert "note: max_number_of_boxes 100 -> 120: the densest image" in notes
    assert "train_input_reader.max_number_of_boxes" in notes
    # The tiny config keeps 20 detections: a warning naming the count and the field.
    assert ("warning: max_total_detections 20 is below the 120 objects of the densest image"
            in notes)
    assert "batch_non_max_suppression.max_total_detections" in notes
    negatives = scan_records(str(small_dense / "records" / "train-*")).negatives
    assert checked.train.negatives == negatives
    assert (f"note: {negatives} of {checked.train.examples} training images have no objects"
            in notes) == (negatives > 0)


def test_enough_slots_and_detections_say_nothing(small_dense):
    from tfmask.training.records_check import check_records

    nms = "model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression."
    params = _params(small_dense, {"train_input_reader.max_number_of_boxes": 150,
                                   nms + "max_total_detections": 150,
                                   nms + "max_detections_per_class": 150})
    checked = check_records(params)
    assert checked.raised_from is None and params.task.train_data.parser.max_num_instances == 150
    assert not [line for line in checked.lines if "max_" in line]


def test_strict_refuses_too_few_detections(small_dense, tmp_path, capsys):
    from tfmask.training.records_check import check_records

    with pytest.raises(ConfigError, match="^strict: max_total_detections 20 is below"):
        check_records(_params(small_dense), strict=True)
    config = write_config(tmp_path / "p.config", small_dense / "records",
                          {"model.faster_rcnn.num_classes": 2})
    assert main(["train", "--pipeline_config_path", str(config), "--model_dir",
                 str(tmp_path / "m"), "--strict", "--num_train_steps", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --strict: max_total_detections 20 is below the 120 objects")
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_256_objects_per_image_through_the_pipeline(tmp_path, capsys):
    """convert -> train (2 steps) -> export -> infer -> eval on 640x480 images, 256 objects."""
    import tensorflow as tf

    data = tmp_path / "data"
    make_dataset(data, grid_layout(SIZE_HW, GRID, "abc"), size_hw=SIZE_HW)
    records = tmp_path / "records"
    assert main(["tfrecord", "--data-dir", str(data), "--instance-mode", "components",
                 "--output-dir", str(records), "--val-fraction", "0.34", "--no-progress"]) == 0
    stats = scan_records(str(records / "*-of-*"))
    assert stats.max_instances == 256 and stats.instances == 3 * 256

    nms = "model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression."
    config = write_config(tmp_path / "pipeline.config", records, {
        "model.faster_rcnn.num_classes": 2,
        "model.faster_rcnn.first_stage_max_proposals": 300,
        nms + "score_threshold": 0.0, nms + "max_total_detections": 200,
        nms + "max_detections_per_class": 200})
    capsys.readouterr()
    model_dir = tmp_path / "model"
    assert main(["train", "--pipeline_config_path", str(config), "--model_dir",
                 str(model_dir), "--num_train_steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "note: max_number_of_boxes 200 -> 256: the densest image" in out
    assert "warning: max_total_detections 200 is below the 256 objects" in out
    assert "max_num_instances: 256" in (model_dir / "params.yaml").read_text()

    # What the training parser hands the model: every one of the 256 objects.
    from tfmask.config import experiment
    from tfmask.training.task import MaskRCNNTask

    exp = experiment.from_pipeline_config(config)
    from tfmask.training.records_check import check_records
    check_records(exp.params)
    task = MaskRCNNTask(exp.params.task)
    _, labels = next(iter(task.build_inputs(exp.params.task.train_data)))
    classes = labels["gt_classes"].numpy()
    assert classes.shape[1] == 256 and ((classes > 0).sum(axis=1) == 256).all()

    export_dir = tmp_path / "export"
    assert main(["export", "--pipeline_config_path", str(config), "--trained_checkpoint_dir",
                 str(model_dir), "--output_directory", str(export_dir)]) == 0
    assert "warning: max_total_detections 200 is below the 256 objects" in \
        capsys.readouterr().out
    serve = tf.saved_model.load(str(export_dir / "saved_model")).signatures["serving_default"]
    assert serve.structured_outputs["detection_scores"].shape[1] == 200

    infer_dir = tmp_path / "infer"
    assert main(["infer", "--model", str(export_dir), "--images", str(data / "train_images"),
                 "--output", str(infer_dir), "--min-score", "0.0", "--no-progress"]) == 0
    results = json.loads((infer_dir / "detections.json").read_text())
    per_image = np.bincount([r["image_id"] for r in results])
    assert per_image.max() > 100 and per_image.max() <= 200

    capsys.readouterr()
    assert main(["eval", "--gt", str(records / "val-*"), "--model", str(export_dir),
                 "--output", str(tmp_path / "eval")]) == 0
    table = capsys.readouterr().out
    assert "AP and AR200 count up to 200 detections per image (maxDets raised from COCO's " \
           "100 to the model's detection limit)" in table
    assert "warning: max_total_detections 200 is below the 256 objects" in table
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["max_detections"] == 200 and "AR200" in metrics["segm"]
    assert metrics["counts"]["ground_truth"] == 256
