"""Negatives: images without objects are converted, previewed, trained on (also a batch
made only of negatives, with finite losses) and evaluated."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from conftest import Rect, make_dataset, write_config
from tfmask.cli import main
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.reader import read_examples

SIZE_HW = (64, 96)
POSITIVE = [Rect("speaker", (4, 6, 30, 40)), Rect("cup", (50, 10, 90, 50))]


@pytest.fixture(scope="module")
def negatives(tmp_path_factory):
    """Train records holding only negatives (n0..n3), val records with both kinds."""
    root = tmp_path_factory.mktemp("negatives")
    make_dataset(root / "train_data", {f"n{i}": [] for i in range(4)}, size_hw=SIZE_HW)
    make_dataset(root / "val_data", {"n9": [], "p0": POSITIVE, "p1": POSITIVE[:1]},
                 size_hw=SIZE_HW)
    reports = {}
    for split in ("train", "val"):
        reports[split] = convert(ConvertConfig(
            data_dir=str(root / f"{split}_data"), output_dir=str(root / split),
            instance_mode="components", val_fraction=0.0, train_name=split, progress=False))
    records = root / "records"
    records.mkdir()
    for split in ("train", "val"):
        for path in (root / split).iterdir():
            if path.name.startswith(f"{split}-") or path.name == "label_map.pbtxt":
                path.replace(records / path.name)
    return root, records, reports


def test_the_converter_writes_negatives_that_decode_to_no_instances(negatives):
    _, records, reports = negatives
    assert "written as negatives" in reports["train"].format()
    examples = list(read_examples(str(records / "train-*")))
    assert len(examples) == 4
    for ex in examples:
        assert ex.masks.shape == (0, *SIZE_HW) and ex.boxes_yxyx_norm.shape == (0, 4)
        assert len(ex.class_ids) == 0


def test_negatives_are_previewed_as_the_plain_image(negatives, tmp_path):
    root, records, _ = negatives
    assert main(["preview", str(records / "val-*"), "--out", str(tmp_path)]) == 0
    drawn = np.asarray(Image.open(tmp_path / "n9.png"))
    original = np.asarray(Image.open(root / "val_data" / "train_images" / "n9.jpg").convert("RGB"))
    np.testing.assert_array_equal(drawn, original)
    assert np.any(np.asarray(Image.open(tmp_path / "p0.png")) != np.asarray(
        Image.open(root / "val_data" / "train_images" / "p0.jpg").convert("RGB")))


def test_negatives_are_evaluated(negatives, tmp_path):
    """A detection on a negative image is a false positive: AP drops below 1."""
    _, records, _ = negatives
    from tfmask.evaluation.inputs import ground_truth_from_records

    gt = ground_truth_from_records(str(records / "val-*"))
    names = {img["file_name"]: img["id"] for img in gt["images"]}
    assert "n9.jpg" in names and len(gt["images"]) == 3
    perfect = [dict(a, score=0.9, file_name=next(n for n, i in names.items()
                                                 if i == a["image_id"]))
               for a in gt["annotations"]]
    for a in perfect:
        a.pop("id"), a.pop("image_id")
    wrong = dict(perfect[0], file_name="n9.jpg", score=0.95)
    for dets, expected in ((perfect, 1.0), (perfect + [wrong], None)):
        path = tmp_path / "dets.json"
        path.write_text(json.dumps(dets))
        out = tmp_path / f"eval{len(dets)}"
        assert main(["eval", "--gt", str(records / "val-*"), "--detections", str(path),
                     "--output", str(out)]) == 0
        ap = json.loads((out / "metrics.json").read_text())["bbox"]["AP"]
        assert ap == expected if expected is not None else ap < 1.0


@pytest.mark.slow
def test_a_batch_of_negatives_only_trains_with_finite_losses(negatives, tmp_path, capsys):
    from tfmask.config import experiment
    from tfmask.training import loop

    _, records, _ = negatives
    config = write_config(tmp_path / "pipeline.config", records,
                          {"model.faster_rcnn.num_classes": 2})
    exp = experiment.from_pipeline_config(config)
    lines = []
    result = loop.train(exp, tmp_path / "model", experiment.RunOptions(
        num_train_steps=3, checkpoint_every_n=3), say=lines.append)
    assert result.step == 3 and len(result.history) == 3
    for entry in result.history:
        assert all(math.isfinite(v) for v in entry.values()), entry
    assert "note: 4 of 4 training images have no objects" in "\n".join(lines)
    # Evaluated on the validation records, the negative included.
    assert "AP" in result.metrics and math.isfinite(result.metrics["AP"])
