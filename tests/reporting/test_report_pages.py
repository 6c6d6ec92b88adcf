"""``tfmask report``: dataset and evaluation pages, checked as text and in headless Chromium."""

from __future__ import annotations

import copy
import os
import re

import numpy as np
import pytest

import webdriver
from tfmask.cli import main
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.synth_formats import synthesize_format
from tfmask.evaluation.coco_eval import evaluate_coco
from tfmask.evaluation.outputs import write_eval_outputs
from tfmask.reporting.dataset import dataset_page
from tfmask.reporting.evaluation import _ground_truth, eval_page, match_image

SYNTH = dict(num_train=6, num_test=1, size_hw=(96, 128), seed=2, max_objects=4)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    synthesize_format(root / "data", "masks", **SYNTH)
    (root / "data" / "train_images" / "notes.txt").write_text("not an image")
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "rec"),
                          instance_mode="components", val_fraction=0.5, progress=False))
    return root


@pytest.fixture(scope="module")
def eval_dir(records):
    """An eval folder of hand-made detections: ground truth with one miss and one FP."""
    gt = _ground_truth(str(records / "rec" / "val-*"), None)
    dets = [dict(a, score=0.9) for a in copy.deepcopy(gt["annotations"])]
    missed = dets.pop(0)
    fp = dict(dets[0], score=0.8, category_id=1 + dets[0]["category_id"] % 3)
    result = evaluate_coco(gt, dets + [fp])
    result.sources = {"ground_truth": str(records / "rec" / "val-*")}
    write_eval_outputs(result, records / "eval")
    return records / "eval", missed, fp


def _img_count(text):
    return len(re.findall(r"<img ", text))


def test_dataset_page_lists_counts_problems_and_previews(records, tmp_path):
    page = dataset_page(str(records / "rec" / "*-of-*"), tmp_path / "d.html")
    text = page.read_text()
    for cls in ("speaker", "cup", "bottle"):
        assert f"<td>{cls}</td>" in text
    assert "notes.txt" in text  # the ignored file, from the conversion report
    assert "instances per image" in text and "box aspect" in text
    assert _img_count(text) == SYNTH["num_train"]
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_dataset_page_of_records_with_a_negative_image(tmp_path):
    from PIL import Image

    synthesize_format(tmp_path / "data", "masks", **SYNTH)
    first = sorted((tmp_path / "data" / "train_masks").glob("*.png"))[0]
    with Image.open(first) as mask:
        Image.new(mask.mode, mask.size, 0).save(first)  # no objects: a negative image
    convert(ConvertConfig(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "rec"),
                          instance_mode="components", val_fraction=0.0, progress=False))
    page = dataset_page(str(tmp_path / "rec" / "*-of-*"), tmp_path / "d.html")
    text = page.read_text()
    assert f"{first.stem}" in text and "0 instance(s)" in text
    assert _img_count(text) == SYNTH["num_train"]


def test_eval_page_marks_the_miss_and_the_false_positive(eval_dir, tmp_path):
    folder, missed, fp = eval_dir
    text = eval_page(folder, tmp_path / "e.html").read_text()
    assert "AP per class and IoU" in text and "box AP50" in text
    assert re.search(r"1 false positive\(s\)", text) and re.search(r"1 miss\(es\)", text)
    assert _img_count(text) >= 2 * 1 + len(list((folder / "pr_curves").glob("*.png")))


def test_matching_counts():
    def ann(x, cid, score=None):
        from tfmask.data.coco import encode_rle
        m = np.zeros((20, 20), bool)
        m[2:10, x:x + 6] = True
        out = {"category_id": cid, "segmentation": encode_rle(m)}
        return dict(out, score=score) if score is not None else out

    m = match_image([ann(0, 1), ann(10, 1)], [ann(0, 1, 0.9), ann(1, 1, 0.8), ann(10, 2, 0.7)])
    assert (len(m["tp"]), len(m["fp"]), len(m["fn"])) == (1, 2, 1)


def test_cli_report_of_a_labelme_folder(tmp_path, capsys):
    synthesize_format(tmp_path / "lm", "labelme", **SYNTH)
    assert main(["report", "--labelme-dir", str(tmp_path / "lm"), "--out",
                 str(tmp_path / "r.html")]) == 0
    assert _img_count((tmp_path / "r.html").read_text()) == SYNTH["num_train"]


def test_eval_report_without_detections_is_one_error_line(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text("{}")
    assert main(["report", "--eval", str(tmp_path), "--out", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "detections.json" in err
    assert not (tmp_path / "x.html").exists()


@pytest.mark.skipif(not webdriver.available() and not os.environ.get("CI"),
                    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_pages_in_headless_chromium(records, eval_dir, tmp_path):
    pages = [dataset_page(str(records / "rec" / "*-of-*"), tmp_path / "dataset.html"),
             eval_page(eval_dir[0], tmp_path / "eval.html")]
    browser = webdriver.Browser()
    try:
        for page in pages:
            browser.open(page)
            state = browser.run("return [document.readyState, Array.from(document.images)"
                                ".map(i => [i.alt, i.complete && i.naturalWidth > 0])]")
            assert state[0] == "complete"
            images = state[1]
            assert len(images) == _img_count(page.read_text()) > 0
            assert all(ok for _, ok in images), [alt for alt, ok in images if not ok]
            errors = [e for e in browser.console() if e.get("level") == "SEVERE"]
            assert errors == [], errors
            png = browser.screenshot(tmp_path / f"{page.stem}.png")
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    finally:
        browser.close()
