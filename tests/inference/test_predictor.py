"""``tfmask.Predictor``: detections of an exported model in the original image's pixel frame."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import export_testlib as lib
from tfmask.errors import ConfigError, DataError
from tfmask.inference.predictor import Detections


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return lib.exported(tmp_path_factory, "image_tensor", True)[0]


@pytest.fixture(scope="module")
def predictor(export_dir):
    import tfmask

    return tfmask.Predictor(export_dir, min_score=0.5)


@pytest.fixture(scope="module")
def predictor_all(export_dir):
    """Keeps every detection: no score close to the threshold can flip in or out."""
    from tfmask import Predictor

    return Predictor(export_dir, min_score=0.0)


def _same(a, b):
    """Equal up to float noise: 0.02 px (1e-4 of the 128 px model input), 1e-4 in score,
    mask pixels within 0.2% (a probability at 0.5 may cross the threshold)."""
    assert a.size_hw == b.size_hw and a.class_names == b.class_names
    np.testing.assert_allclose(a.boxes_xyxy_px, b.boxes_xyxy_px, atol=0.02)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    assert a.masks.size == 0 or (a.masks != b.masks).mean() <= 2e-3


def test_predict_gives_detections_on_the_original_image(predictor_all, predictor,
                                                        tmp_path_factory):
    # Every detection (a short-trained model need not score 0.5 on a given image).
    path = lib.dataset(tmp_path_factory) / "data" / "train_images" / "image0002.png"
    det = predictor_all.predict(path)
    assert len(det) > 0 and det.size_hw == lib.SIZE_HW
    h, w = det.size_hw
    assert det.boxes_xyxy_px.dtype == np.float32 and det.boxes_xyxy_px.shape == (len(det), 4)
    x0, y0, x1, y1 = det.boxes_xyxy_px.T
    assert (0 <= x0).all() and (x0 <= x1).all() and (x1 <= w).all()
    assert (0 <= y0).all() and (y0 <= y1).all() and (y1 <= h).all()
    assert det.masks.dtype == bool and det.masks.shape == (len(det), h, w)
    assert (det.scores >= 0.0).all() and (np.diff(det.scores) <= 0).all()
    names = {1: "speaker", 2: "cup", 3: "bottle"}
    assert det.class_names == tuple(names[int(c)] for c in det.class_ids)
    # A path and the same pixels as an array give the same result (PNG: lossless).
    _same(predictor_all.predict(np.asarray(Image.open(path).convert("RGB"))), det)
    # min_score keeps exactly the detections scoring at least 0.5.
    kept = predictor.predict(path)
    assert len(kept) == int((det.scores >= 0.5).sum()) and (kept.scores >= 0.5).all()


def _edge_band(mask: np.ndarray, px: int) -> np.ndarray:
    """Pixels within ``px`` of the mask's edge (inside or outside)."""
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=px) & ~ndimage.binary_erosion(
        mask, iterations=px, border_value=1)


def test_host_pasted_masks_match_the_in_graph_masks(predictor_all, tmp_path_factory):
    """Without ``detection_masks_reframed`` the Predictor pastes ``detection_masks`` into
    ``detection_boxes`` itself; both ways give the same instance masks, inside the boxes."""
    image = np.asarray(Image.fromarray(lib.synth_image(tmp_path_factory, "image0004.png"))
                       .resize((150, 100), Image.NEAREST))  # non-square, scale 0.85
    out = predictor_all._run(image[None])
    in_graph = predictor_all._detections(out, 0, (100, 150))
    out.pop("detection_masks_reframed")
    on_host = predictor_all._detections(out, 0, (100, 150))
    assert len(in_graph) > 0 and in_graph.masks.any()
    # Boundary pixels (probabilities near 0.5, resampled differently) may differ, so every
    # differing pixel must lie within 2 px of the other mask's edge; a misplaced paste
    # would differ far from any edge. Large masks must also overlap mostly.
    compared = 0
    for a, b in zip(in_graph.masks, on_host.masks):
        if not (a | b).any():
            continue
        near_edge = _edge_band(a, 2) | _edge_band(b, 2)
        assert not ((a ^ b) & ~near_edge).any()
        if (a | b).sum() >= 400:
            assert (a & b).sum() / (a | b).sum() >= 0.75
        compared += 1
    assert compared > 0
    for mask, (x0, y0, x1, y1) in zip(on_host.masks, on_host.boxes_xyxy_px):
        ys, xs = np.nonzero(mask)
        if not len(ys):
            continue
        assert ys.min() >= y0 - 1 and ys.max() + 1 <= y1 + 1
        assert xs.min() >= x0 - 1 and xs.max() + 1 <= x1 + 1


def test_exif_orientation_is_applied_to_image_files(predictor_all, tmp_path,
                                                    tmp_path_factory):
    pixels = lib.synth_image(tmp_path_factory, "image0006.png")  # 96 x 128 as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    det = predictor_all.predict(path)
    assert det.size_hw == (128, 96) and len(det) > 0
    _same(det, predictor_all.predict(np.ascontiguousarray(np.rot90(pixels, k=-1))))


def test_predict_batch_equals_one_by_one(predictor_all, tmp_path_factory):
    a = lib.synth_image(tmp_path_factory, "image0002.png")
    b = lib.synth_image(tmp_path_factory, "image0005.png")[:80]  # another size
    c = lib.synth_image(tmp_path_factory, "image0009.png")
    batch = predictor_all.predict_batch([a, b, c])
    for image, det in zip((a, b, c), batch):
        _same(det, predictor_all.predict(image))


def test_min_score_filters_detections(predictor_all, tmp_path_factory):
    predictor = predictor_all
    image = lib.synth_image(tmp_path_factory, "image0001.png")
    everything = predictor.predict(image)
    scores = everything.scores
    # Split between two different scores near the middle (confident detections tie at ~1.0).
    splits = [i for i in range(1, len(scores)) if scores[i - 1] > scores[i]]
    assert splits, scores
    k = splits[len(splits) // 2]
    threshold = float(scores[k - 1] + scores[k]) / 2  # keeps the best k
    predictor.min_score = threshold
    try:
        kept = predictor.predict(image)
    finally:
        predictor.min_score = 0.0
    assert len(kept) == k and (kept.scores >= threshold).all()
    _same(kept, Detections(everything.boxes_xyxy_px[:k], everything.class_ids[:k],
                           everything.class_names[:k], scores[:k], everything.masks[:k],
                           everything.size_hw))


def test_an_export_with_another_input_type_is_refused(tmp_path_factory):
    from tfmask import Predictor

    out, _ = lib.exported(tmp_path_factory, "encoded_image_string_tensor", False)
    with pytest.raises(ConfigError, match="'encoded_image_string_tensor'.*--input-type "
                                          "image_tensor"):
        Predictor(out)


def test_a_folder_without_an_export_is_a_data_error(tmp_path):
    from tfmask import Predictor

    with pytest.raises(DataError, match="no saved_model"):
        Predictor(tmp_path)


def test_detections_check_their_shapes():
    with pytest.raises(ValueError, match=r"masks must be \[N, 5, 6\]"):
        Detections(np.zeros((1, 4), np.float32), np.ones(1, np.int64), ["a"],
                   np.ones(1, np.float32), np.zeros((1, 5, 5), bool), (5, 6))


def test_import_tfmask_stays_cheap_and_exports_the_predictor():
    code = ("import sys, tfmask; assert 'tensorflow' not in sys.modules; "
            "from tfmask.inference.predictor import Predictor, Detections; "
            "assert tfmask.Predictor is Predictor and tfmask.Detections is Detections; "
            "print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
