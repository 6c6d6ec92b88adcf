"""Fine-tuning from converted torchvision weights: warm start, train, export, infer, eval.

The converted checkpoint is torchvision's v1 model with random weights
(:mod:`torchvision_testlib`; the published file is not reachable here); the
user's model has 2 classes, so exactly the class-dependent layers differ.
"""

from __future__ import annotations

import json
import re

import pytest

from tfmask.cli import main

from torchvision_testlib import converted

# The layers whose shape depends on the number of classes (torchvision's box_predictor
# and mask_fcn_logits): re-initialized for 2 classes, everything else restored. (Paths are
# TensorFlow's first path to each variable; Model Garden's model also holds its parts in
# _config_dict.)
CLASS_DEPENDENT = re.compile(r"^model/.*(detection_head(/0)?/(cls_score|bbox_pred)|"
                             r"mask_head/mask_fcn_logits)/(kernel|bias)$")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import DEFAULT_CLASSES, synthesize
    from tfmask.modeling.torchvision.configs import pipeline_config_text

    root = tmp_path_factory.mktemp("tv_finetune")
    synthesize(root / "data", num_train=6, num_test=2, size_hw=(96, 128), seed=3,
               classes=DEFAULT_CLASSES[:2], min_objects=1, max_objects=2)
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "records"),
                          instance_mode="box", val_fraction=0.34, progress=False))
    folder, _ = converted(tmp_path_factory, "v1")
    config = root / "pipeline.config"
    config.write_text(pipeline_config_text(
        "v1", 2, str(root / "records" / "label_map.pbtxt"),
        train_input_path=str(root / "records" / "train-?????-of-?????"),
        eval_input_path=str(root / "records" / "val-?????-of-?????"),
        min_dimension=96, max_dimension=128, fine_tune_checkpoint=str(folder / "ckpt-0"),
        batch_size=1, num_steps=3, proposals=100, rois_per_image=64))
    return root, config, folder


def test_warm_start_restores_all_but_the_class_layers(setup, tmp_path):
    from official.core import task_factory

    from tfmask.config.experiment import from_pipeline_config
    from tfmask.training.warm_start import warm_start

    root, config, folder = setup
    params = from_pipeline_config(config).params
    assert params.task.init_checkpoint_modules == "all"  # fine_tune_checkpoint_type detection
    model = task_factory.get_task(params.task, logging_dir=str(tmp_path)).build_model()
    report = warm_start(model, params.task.init_checkpoint, "all")
    mismatched = sorted(p for p, _, _ in report.shape_mismatch)
    assert report.missing == []
    assert len(mismatched) == 6 and all(CLASS_DEPENDENT.match(p) for p in mismatched), mismatched
    restored = report.matched
    counts = {group: sum(f"/{group}/" in p for p in restored)
              for group in ("backbone", "decoder", "rpn_head", "detection_head", "mask_head")}
    # every variable of these parts: ResNet-50 (53 convs, 53 frozen BNs of 4), FPN (8 convs
    # with biases), RPN (conv, objectness, deltas), fc6/fc7, mask convs + deconv
    assert counts == {"backbone": 53 + 53 * 4, "decoder": 16, "rpn_head": 6,
                      "detection_head": 4, "mask_head": 10}, counts
    assert len(report.matched) + 6 == len(model.variables)
    lines = report.summary_lines()
    assert lines[0].endswith(f"{len(report.matched)} of {len(model.variables)} variables "
                             "restored")
    assert lines[1].startswith("  not restored, shape differs (6): ")
    for listed in ("cls_score/kernel [1024, 3] vs [1024, 91]",
                   "bbox_pred/kernel [1024, 12] vs [1024, 364]",
                   "mask_fcn_logits/kernel [1, 1, 256, 3] vs [1, 1, 256, 91]"):
        assert listed in lines[1]


@pytest.mark.slow
def test_train_export_infer_eval(setup, tmp_path, capsys):
    root, config, _ = setup
    model_dir, export = tmp_path / "run", tmp_path / "export"
    assert main(["train", "--pipeline_config_path", str(config), "--model_dir",
                 str(model_dir), "--num_train_steps", "2", "--checkpoint_every_n", "2"]) == 0
    out = capsys.readouterr().out
    assert "warm start from" in out and "not restored, shape differs (6)" in out
    assert "step 2/2" in out
    assert main(["export", "--pipeline_config_path", str(config), "--trained_checkpoint_dir",
                 str(model_dir), "--output_directory", str(export)]) == 0
    assert (export / "saved_model" / "saved_model.pb").is_file()
    assert main(["infer", "--model", str(export), "--images", str(root / "data" / "test_images"),
                 "--output", str(tmp_path / "infer"), "--min-score", "0.0"]) == 0
    assert len(list((tmp_path / "infer" / "overlays").glob("*.png"))) == 2
    assert isinstance(json.loads((tmp_path / "infer" / "detections.json").read_text()), list)
    assert main(["eval", "--gt", str(root / "records" / "val-*"), "--model", str(export),
                 "--output", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["classes"] == ["speaker", "cup"] and metrics["counts"]["detections"] > 0
    assert {"AP", "AP50"} <= set(metrics["bbox"]) and {"AP", "AP50"} <= set(metrics["segm"])
