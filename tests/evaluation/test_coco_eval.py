"""COCO evaluation: known metric values, records vs JSON ground truth, outputs, errors, CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_dataset
from tfmask.data import coco
from tfmask.annotation import Instances
from tfmask.cli import main
from tfmask.data.convert import ConvertConfig, convert
from tfmask.errors import ConfigError, DataError
from tfmask.evaluation.outputs import format_table, write_eval_outputs
from tfmask.evaluation.inputs import ground_truth_from_records, read_coco_ground_truth
from tfmask.evaluation.coco_eval import STAT_KEYS, evaluate_coco, parse_iou_range
from tfmask.config.label_map import LabelClass, LabelMap

NAMES = ("speaker", "cup")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """conftest's default dataset (2 images, 2 speakers + 2 cups) as records + COCO JSON."""
    root = tmp_path_factory.mktemp("eval")
    ds = make_dataset(root / "data")
    out = root / "records"
    convert(ConvertConfig(data_dir=str(ds.root), output_dir=str(out), progress=False,
                          instance_mode="components", write_coco_json=True, val_fraction=0.0))
    return out


@pytest.fixture
def gt(converted):
    return read_coco_ground_truth(converted / "train_coco.json")


def perfect(gt, with_file_name=False):
    """One detection per ground-truth instance, score 1.0."""
    files = {img["id"]: img["file_name"] for img in gt["images"]}
    out = []
    for a in gt["annotations"]:
        r = {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "segmentation": a["segmentation"], "score": 1.0}
        if with_file_name:
            r.update(file_name=files[a["image_id"]], image_id=12345)
        out.append(r)
    return out


def rect_mask(box, size_hw=(100, 100)):
    m = np.zeros(size_hw, bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


def hand_made_gt(objects, names=NAMES, size_hw=(100, 100)):
    """GT dict of one image ``img.png`` from (class id, (x0, y0, x1, y1)) pairs."""
    inst = Instances(np.stack([rect_mask(b, size_hw) for _, b in objects]),
                     np.array([b for _, b in objects], np.float32),
                     np.array([c for c, _ in objects]), tuple(names[c - 1] for c, _ in objects))
    label_map = LabelMap(tuple(LabelClass(i, n) for i, n in enumerate(names, start=1)))
    anns = coco.annotation_entries(1, inst)
    return {"images": [coco.image_entry(1, "img.png", size_hw)],
            "categories": coco.categories(label_map),
            "annotations": [dict(a, id=i) for i, a in enumerate(anns, start=1)]}


def detection(class_id, box, score=1.0, size_hw=(100, 100)):
    x0, y0, x1, y1 = box
    return {"image_id": 1, "category_id": class_id, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": score, "segmentation": coco.encode_rle(rect_mask(box, size_hw))}


def test_perfect_predictions_score_one(gt):
    res = evaluate_coco(gt, perfect(gt), iou_range=(0.5, 0.8))
    assert res.iou_thresholds == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8])
    for m in res.metrics.values():
        for key in ("AP", "AP50", "AP75", "APs", "AR10", "AR100"):
            assert m.stats[key] == pytest.approx(1.0)
        # every object is small (< 32^2 px): medium/large are undefined, not 0
        assert m.stats["APm"] is None and m.stats["APl"] is None
        assert m.per_class == pytest.approx({"speaker": 1.0, "cup": 1.0})
        assert m.mAP_range == pytest.approx(1.0)


def test_no_detections_give_zero_without_crashing(gt):
    res = evaluate_coco(gt, [], iou_range=(0.5, 0.8))
    assert res.counts == {"images": 2, "ground_truth": 4, "detections": 0}
    for m in res.metrics.values():
        assert {k: v for k, v in m.stats.items() if v is not None} == {
            k: 0.0 for k in STAT_KEYS if k[-1] not in "ml"}
        assert m.per_class == {"speaker": 0.0, "cup": 0.0} and m.mAP_range == 0.0
        assert np.all(m.pr_curves[0.5] == 0.0)


def test_one_class_predicted_halves_the_mean(gt):
    dets = [r for r in perfect(gt) if r["category_id"] == 1]
    res = evaluate_coco(gt, dets)
    for m in res.metrics.values():
        assert m.per_class == pytest.approx({"speaker": 1.0, "cup": 0.0})
        assert m.stats["AP"] == pytest.approx(0.5)
        assert m.mAP_range == pytest.approx(0.5)  # default range = the standard one


def test_iou_0_63_matches_up_to_0_60_only():
    # 40x40 boxes shifted 9 px: IoU = 31/49 = 0.633, for the boxes and the masks alike
    gt = hand_made_gt([(1, (10, 10, 50, 50))])
    dets = [detection(1, (19, 10, 59, 50))]
    low = evaluate_coco(gt, dets, iou_range=(0.5, 0.6))
    high = evaluate_coco(gt, dets, iou_range=(0.65, 0.8))
    for t in ("bbox", "segm"):
        assert low.metrics[t].stats["AP50"] == pytest.approx(1.0)
        assert low.metrics[t].stats["AP75"] == pytest.approx(0.0)
        assert low.metrics[t].stats["AP"] == pytest.approx(0.3)  # 3 of 10 thresholds
        assert low.metrics[t].mAP_range == pytest.approx(1.0)
        assert high.metrics[t].mAP_range == pytest.approx(0.0)
        assert high.metrics[t].stats == low.metrics[t].stats  # standard run is unaffected


def test_class_without_ground_truth_is_none_not_zero():
    gt = hand_made_gt([(1, (10, 10, 50, 50))], names=("speaker", "cup", "lamp"))
    res = evaluate_coco(gt, [detection(1, (10, 10, 50, 50)), detection(3, (60, 60, 90, 90))])
    for m in res.metrics.values():
        assert m.per_class == pytest.approx({"speaker": 1.0, "cup": None, "lamp": None})
        assert np.isnan(m.pr_curves[0.5][1]).all()
    assert ["cup", "-", "-"] in [ln.split() for ln in format_table(res).splitlines()]


def test_records_and_coco_json_ground_truth_agree(converted, gt):
    from_records = ground_truth_from_records(str(converted / "train-*"))
    dets = perfect(gt)
    for i, r in enumerate(dets):  # make it imperfect: shifted boxes, falling scores
        r["bbox"] = [r["bbox"][0] + i, *r["bbox"][1:]]
        r["score"] = 1.0 - 0.2 * i
    a = evaluate_coco(from_records, dets, iou_range=(0.5, 0.8)).to_dict()
    b = evaluate_coco(gt, dets, iou_range=(0.5, 0.8)).to_dict()
    assert a == b
    assert 0 < a["bbox"]["AP"] < 1 and a["segm"]["AP"] == pytest.approx(1.0)


def test_results_map_by_file_name_and_inputs_are_untouched(gt):
    dets = perfect(gt, with_file_name=True)  # image_id 12345 is ignored
    dets[0]["file_name"] = "some/folder/" + dets[0]["file_name"]  # basename also matches
    before = copy.deepcopy((gt, dets))
    res = evaluate_coco(gt, dets)
    assert res.metrics["segm"].stats["AP"] == pytest.approx(1.0)
    assert (gt, dets) == before


@pytest.mark.parametrize("change,message", [
    ({"file_name": "nope.jpg"}, "file_name 'nope.jpg', which is not an image"),
    ({"image_id": 99}, "image_id 99, which is not an image id"),
    ({"category_id": 7}, "category_id 7, which is not a ground-truth category"),
    ({"segmentation": None}, "needs a 'segmentation'"),
    ({"score": "high"}, "needs a finite number 'score'"),
])
def test_bad_detections_name_the_problem(gt, change, message):
    dets = perfect(gt)
    dets[1].update(change)
    with pytest.raises(DataError, match="detections\\[1\\] .*" + message):
        evaluate_coco(gt, dets, results_source="dets.json")


def test_write_outputs(gt, tmp_path):
    res = evaluate_coco(gt, perfect(gt)[:3], iou_range=(0.5, 0.8))
    out = write_eval_outputs(res, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["iou_range"] == {"start": 0.5, "end": 0.8, "step": 0.05,
                                "thresholds": res.iou_thresholds}
    assert doc["counts"] == {"images": 2, "ground_truth": 4, "detections": 3}
    half = 51 / 101  # precision 1 at recall thresholds 0, 0.01, ..., 0.50, then 0
    assert doc["bbox"]["per_class"] == pytest.approx({"speaker": 1.0, "cup": half})
    assert doc["segm"]["APm"] is None
    assert doc["segm"]["mAP_range"] == pytest.approx((1 + half) / 2)
    names = sorted(p.name for p in (tmp_path / "out" / "pr_curves").iterdir())
    assert names == ["bbox_cup.png", "bbox_speaker.png", "segm_cup.png", "segm_speaker.png"]
    assert sorted(p.name for p in out.pr_curves) == names
    for p in out.pr_curves:
        with Image.open(p) as img:
            assert img.format == "PNG" and min(img.size) > 100


@pytest.mark.parametrize("text,expected", [
    ("0.5:0.8", (0.5, 0.8, 0.05)), ("0.5:0.5", (0.5, 0.5, 0.05)),
    ("0.5:0.9:0.1", (0.5, 0.9, 0.1)), ("0.3:0.72:0.06", (0.3, 0.72, 0.06))])
def test_parse_iou_range(text, expected):
    assert parse_iou_range(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0.8:0.5", "0:0.5", "0.5:1.2", "0.52:0.8", "0.5", "a:b",
                                  "0.5:0.9:0.15", "0.5:0.9:0", "nan:0.9"])
def test_bad_iou_range_names_the_flag(text):
    with pytest.raises(ConfigError, match="iou_range .*e.g. 0.5:0.8"):
        parse_iou_range(text)


# --- command line ---------------------------------------------------------

def write_json(path, doc):
    path.write_text(json.dumps(doc))
    return str(path)


def test_cli_with_records_prints_table(converted, gt, tmp_path, capsys):
    dets = write_json(tmp_path / "dets.json", perfect(gt, with_file_name=True))
    rc = main(["eval", "--gt", str(converted / "train-*"), "--detections", dets,
               "--output", str(tmp_path / "out"), "--iou-range", "0.5:0.8"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["box", "mask"]  # nothing printed by pycocotools
    assert lines[1].split() == ["AP", "1.000", "1.000"]
    assert "mAP@0.50:0.80" in out and "speaker" in out
    assert f"{tmp_path / 'out' / 'metrics.json'}" in out
    assert (tmp_path / "out" / "pr_curves" / "segm_cup.png").stat().st_size > 0


def test_cli_with_coco_json(converted, gt, tmp_path, capsys):
    dets = write_json(tmp_path / "dets.json", [])
    rc = main(["eval", "--gt", str(converted / "train_coco.json"), "--detections", dets,
               "--output", str(tmp_path / "out")])
    assert rc == 0
    assert ["AP", "0.000", "0.000"] in [ln.split() for ln in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("case", ["iou_range", "missing_gt", "missing_label_map",
                                  "unknown_category"])
def test_cli_errors_are_one_line_exit_1(converted, gt, tmp_path, capsys, case):
    dets = perfect(gt)
    gt_arg, extra = str(converted / "train-*"), []
    if case == "iou_range":
        extra, expected = ["--iou-range", "0.5-0.8"], "--iou-range '0.5-0.8'"
    elif case == "missing_gt":
        gt_arg = str(tmp_path / "nothing" / "val_coco.json")
        expected = f"{gt_arg}: no such COCO ground-truth file"
    elif case == "missing_label_map":
        gt_arg = str(tmp_path / "copy-00000-of-00001")
        Path(gt_arg).write_bytes((converted / "train-00000-of-00001").read_bytes())
        expected = f"{tmp_path / 'label_map.pbtxt'}: no label map beside the records"
    else:
        dets[0]["category_id"] = 9
        expected = "category_id 9"
    rc = main(["eval", "--gt", gt_arg, "--detections", write_json(tmp_path / "d.json", dets),
               "--output", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 1 and len(errors) == 1 and expected in errors[0], err
    assert not (tmp_path / "out" / "metrics.json").exists()
