"""``tfmask demo`` end to end: synthesize (empty data folder), check, convert, preview,
train (a few steps), export, infer on the test images, evaluate the export."""

import json

from PIL import Image

from tfmask.demo import run_demo
from tfmask.data.records.reader import read_examples


def test_demo_runs_end_to_end_on_a_fresh_folder(tmp_path):
    lines = []
    result = run_demo(tmp_path / "empty", tmp_path / "out", progress=False, say=lines.append,
                      train_steps=3)
    out = tmp_path / "out"
    assert result.data_dir == out / "data"  # synthesized because the folder had no images
    report = json.loads((out / "records" / "conversion_report.json").read_text())
    assert report["images_per_split"] == {"train": 32, "val": 8}
    val = list(read_examples(str(out / "records" / "val-*")))
    assert len(val) == 8 and sum(len(e.class_ids) for e in val) > 0
    previews = sorted((out / "preview").glob("*.png"))
    assert len(previews) == 8 and Image.open(previews[0]).size == (256, 192)
    text = "\n".join(lines)
    assert "done. Outputs:" in text and str(out / "records") in text
    # The reduced training run happened and was evaluated on the val split.
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    assert metrics["step"] == 3 and "mask_AP50" in metrics["metrics"]
    # Exported, run on the 5 synthesized test images, evaluated on the 8 val records.
    assert (out / "export" / "saved_model" / "saved_model.pb").is_file()
    overlays = sorted((out / "infer" / "overlays").glob("*.png"))
    assert len(overlays) == 5 and Image.open(overlays[0]).size == (256, 192)
    detections = json.loads((out / "infer" / "detections.json").read_text())
    assert isinstance(detections, list)
    for det in detections:  # COCO results of the 5 test images, above the demo's 0.5
        assert 1 <= det["image_id"] <= 5 and det["category_id"] in (1, 2, 3)
        assert len(det["bbox"]) == 4 and det["bbox"][2] > 0 and det["bbox"][3] > 0
        assert 0.5 <= det["score"] <= 1.0 and det["segmentation"]["size"] == [192, 256]
    evaluated = json.loads((out / "eval" / "metrics.json").read_text())
    assert evaluated["counts"]["images"] == 8 and "AP50" in evaluated["segm"]
    assert "validation: box AP50" in text and str(out / "export") in text
    # Both HTML reports are written and their paths printed.
    for page in ("dataset_report.html", "eval_report.html"):
        assert (out / page).is_file() and str(out / page) in text


def test_demo_uses_bundled_dataset_layout(tmp_path):
    from tfmask.data.synth import synthesize

    synthesize(tmp_path / "data", num_train=5, num_test=1, seed=3)
    lines = []
    result = run_demo(tmp_path / "data", tmp_path / "out", progress=False, say=lines.append,
                      train_steps=0)
    assert result.data_dir == tmp_path / "data"
    assert "instance mode 'box'" in "\n".join(lines)
    assert (tmp_path / "out" / "dataset_report.html").is_file()
