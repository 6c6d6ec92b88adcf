"""``tfmask infer``: overlays, COCO results pycocotools accepts, instance mask PNGs, errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import export_testlib as lib
from tfmask.cli import main


@pytest.fixture(scope="module")
def val_images(tmp_path_factory):
    """A folder with the validation images, and their COCO ground truth."""
    root = lib.dataset(tmp_path_factory)
    gt = json.loads((root / "records" / "val_coco.json").read_text())
    folder = tmp_path_factory.mktemp("val_images")
    for img in gt["images"]:
        shutil.copy(root / "data" / "train_images" / img["file_name"], folder)
    return folder, root / "records" / "val_coco.json"


@pytest.fixture(scope="module")
def inferred(val_images, tmp_path_factory):
    """``tfmask infer`` run through the CLI: (output folder, its stdout)."""
    export_dir, _ = lib.exported(tmp_path_factory, "image_tensor", True)
    out = tmp_path_factory.mktemp("infer") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["infer", "--model", str(export_dir), "--images", str(val_images[0]),
                     "--output", str(out), "--min-score", "0.0", "--instance-masks",
                     "--no-progress"])
    assert code == 0
    return out, stdout.getvalue()


def test_overlays_have_the_input_size_and_show_the_detections(inferred, val_images):
    out, stdout = inferred
    images = sorted(val_images[0].iterdir())
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [
        p.stem + ".png" for p in images]
    results = json.loads((out / "detections.json").read_text())
    for path in images:
        original = np.asarray(Image.open(path).convert("RGB"))
        drawn = np.asarray(Image.open(out / "overlays" / f"{path.stem}.png"))
        assert drawn.shape == original.shape
        has_detections = any(r["file_name"] == path.name for r in results)
        assert (drawn != original).any() == has_detections
    assert f"{len(images)} image(s), {len(results)} detection(s)" in stdout
    assert str(out / "detections.json") in stdout


def test_detections_json_is_coco_results_pycocotools_accepts(inferred, val_images):
    out, _ = inferred
    results = json.loads((out / "detections.json").read_text())
    names = sorted(p.name for p in val_images[0].iterdir())
    assert results and {r["file_name"] for r in results} <= set(names)
    for r in results:  # image ids number the images 1..N in sorted order
        assert r["image_id"] == names.index(r["file_name"]) + 1
        assert r["score"] >= 0.0 and r["category_id"] in (1, 2, 3)
        assert r["segmentation"]["size"] == list(lib.SIZE_HW)
        assert isinstance(r["segmentation"]["counts"], str)
        x, y, w, h = r["bbox"]
        assert x >= 0 and y >= 0 and x + w <= lib.SIZE_HW[1] + 1e-3
        assert y + h <= lib.SIZE_HW[0] + 1e-3
    # An evaluator maps results to ground truth by file name, then pycocotools runs.
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(val_images[1]))
        by_name = {img["file_name"]: img["id"] for img in gt.dataset["images"]}
        mapped = [dict(r, image_id=by_name[r["file_name"]]) for r in results]
        dt = gt.loadRes(mapped)
        for iou_type in ("bbox", "segm"):
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert -1.0 <= ev.stats[0] <= 1.0
    assert len(dt.getAnnIds()) == len(results)


def test_instance_mask_pngs_match_the_results(inferred):
    out, _ = inferred
    results = json.loads((out / "detections.json").read_text())
    files = sorted((out / "masks").iterdir())
    assert len(files) == len(results)
    for stem in {r["file_name"].rsplit(".", 1)[0] for r in results}:
        mine = [r for r in results if r["file_name"].startswith(stem + ".")]
        digits = len(str(len(mine) - 1))
        for k, r in enumerate(mine):
            name = {1: "speaker", 2: "cup", 3: "bottle"}[r["category_id"]]
            png = np.asarray(Image.open(out / "masks" / f"{stem}_{k:0{digits}d}_{name}.png"))
            assert set(np.unique(png)) <= {0, 255}
            np.testing.assert_array_equal(png > 0, mask_utils.decode(r["segmentation"]) > 0)


def test_batches_give_the_same_detections(inferred, val_images, tmp_path, tmp_path_factory):
    from tfmask.inference.infer import infer

    out, _ = inferred
    summary = infer(lib.exported(tmp_path_factory, "image_tensor", True)[0], val_images[0],
                    tmp_path / "b2", min_score=0.0, batch_size=2, progress=False)
    assert summary.images == 3 and summary.masks_dir is None
    assert not (tmp_path / "b2" / "masks").exists()
    one = json.loads((out / "detections.json").read_text())
    two = json.loads((tmp_path / "b2" / "detections.json").read_text())
    assert summary.detections == len(two) == len(one)
    for a, b in zip(one, two):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        np.testing.assert_allclose(a["bbox"], b["bbox"], atol=1e-2)


def test_a_bad_image_stops_with_its_name(tmp_path, tmp_path_factory, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(lib.synth_image(tmp_path_factory)).save(folder / "a.png")
    (folder / "b.jpg").write_bytes(b"this is not a JPEG")
    code = main(["infer", "--model", str(lib.exported(tmp_path_factory, "image_tensor",
                                                      True)[0]),
                 "--images", str(folder), "--output", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: {folder / 'b.jpg'}: ") and err.count("\n") == 1
    assert not (tmp_path / "out" / "detections.json").exists()


@pytest.mark.parametrize("make, message", [
    (lambda d: d.mkdir(), "no images found"),
    (lambda d: None, "no such image, folder or glob match"),
], ids=["empty_folder", "missing"])
def test_no_images_is_an_error(make, message, tmp_path, capsys):
    folder = tmp_path / "empty"
    make(folder)
    code = main(["infer", "--model", str(tmp_path), "--images", str(folder),
                 "--output", str(tmp_path / "out")])
    assert code == 1
    assert capsys.readouterr().err.strip() == f"error: {folder}: {message}" + (
        " (extensions: .jpg, .jpeg, .png)" if message == "no images found" else "")


def test_glob_and_same_stem_images(tmp_path):
    from tfmask.errors import DataError
    from tfmask.inference.infer import list_images

    for name in ("b.png", "a.jpg", "notes.txt", "a.png"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match="same name stem"):
        list_images(tmp_path)
    found, ignored = list_images(str(tmp_path / "[bn]*"))
    assert [p.name for p in found] == ["b.png"] and [p.name for p in ignored] == ["notes.txt"]
