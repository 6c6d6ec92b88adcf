"""``tfmask export``: SavedModel round trip, the OD API output contract, mask pasting, atomicity."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import export_testlib as lib
from tfmask.export import exporter as export, serving
from tfmask.cli import main
from tfmask.errors import DataError

NUM_CLASSES = 3  # the tiny config's label map


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    return lib.exported(tmp_path_factory, "image_tensor", True)


@pytest.fixture(scope="module")
def serve(image_export):
    loaded = tf.saved_model.load(str(image_export[0] / "saved_model"))
    return loaded.signatures["serving_default"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The trained model restored independently of the export."""
    from tfmask.config.translate import translate

    params = translate(lib.dataset(tmp_path_factory) / "pipeline.config").params
    ckpt = tf.train.latest_checkpoint(str(lib.trained(tmp_path_factory)))
    return params, export.restore_model(params, ckpt)


def _run(serve, batch):
    return {k: v.numpy() for k, v in serve(input_tensor=tf.constant(batch)).items()}


def _valid(out, b=0):
    return slice(0, int(out["num_detections"][b]))


# --------------------------------------------------------------------------- pasting

def test_paste_places_a_box_relative_mask_exactly():
    masks = np.zeros((2, 4, 4), np.float32)
    masks[0, :2, :] = 1.0  # the top half of its box
    masks[1, :, :1] = 1.0  # the left quarter
    box = [10.0, 20.0, 18.0, 36.0]  # ymin, xmin, ymax, xmax pixel edges: 8 x 16 px
    pasted = serving.paste_masks(masks, [box, box], (40, 50)).numpy() > serving.MASK_THRESHOLD
    want = np.zeros((2, 40, 50), bool)
    want[0, 10:14, 20:36] = True
    want[1, 10:18, 20:24] = True
    np.testing.assert_array_equal(pasted, want)
    # A full mask fills exactly the pixels whose centres are inside the box.
    full = serving.paste_masks(np.ones((1, 28, 28), np.float32),
                              [[10.2, 19.6, 17.5, 36.4]], (40, 50)).numpy()[0]
    want = np.zeros((40, 50))
    want[10:17, 20:36] = 1.0
    np.testing.assert_allclose(full, want, atol=1e-6)
    # Parts of a box outside the image are cut off; a degenerate box pastes nothing.
    edge = serving.paste_masks(np.ones((2, 28, 28), np.float32),
                              [[-5.0, 45.0, 3.0, 60.0], [7.0, 7.0, 7.0, 7.0]], (40, 50))
    assert edge.numpy()[0].sum() == 3 * 5 and edge.numpy()[1].sum() == 0


def test_mask_resampled_onto_a_clipped_box_pastes_to_the_same_pixels():
    yy, xx = np.mgrid[0:28, 0:28]
    disk = (((yy - 12.0) ** 2 + (xx - 15.0) ** 2) < 100).astype(np.float32)[None]
    src = np.float32([[-8.0, -5.0, 30.0, 60.0]])  # reaches past a 40 x 50 image
    dst = np.float32([[0.0, 0.0, 30.0, 50.0]])  # the same box clipped to it
    recropped = serving.resample_masks(disk, src, dst, (28, 28))
    direct = serving.paste_masks(disk, src, (40, 50)).numpy()[0] > 0.5
    via_clip = serving.paste_masks(recropped, dst, (40, 50)).numpy()[0] > 0.5
    assert direct.sum() > 300
    assert (direct != via_clip).mean() < 0.01  # only a few boundary pixels differ


def test_paste_with_a_threshold_equals_thresholding_the_pasted_probabilities():
    rng = np.random.default_rng(3)
    masks = rng.random((6, 28, 28), np.float32)
    masks[0] = 0.5  # exactly at the threshold: not part of the mask
    boxes = np.float32([[2, 3, 30, 41], [-9, -4, 12, 20], [35, 44, 58, 70],
                        [5.5, 6.25, 6.0, 30.0], [0, 0, 40, 50], [7, 7, 7, 7]])
    probs = serving.paste_masks(masks, boxes, (40, 50)).numpy()
    binary = serving.paste_masks(masks, boxes, (40, 50), serving.MASK_THRESHOLD).numpy()
    assert binary.dtype == bool and binary.shape == (6, 40, 50)
    np.testing.assert_array_equal(binary, probs > serving.MASK_THRESHOLD)
    assert 0 < binary.sum() < binary.size  # masks on, cut off at box and image edges
    assert not binary[0].any() and not binary[5].any()


# --------------------------------------------------------------------------- round trip

def test_export_writes_the_layout_and_a_verified_signature(image_export, tmp_path_factory):
    out, result = image_export
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint", "export.json", "label_map.pbtxt", "pipeline.config", "saved_model"]
    info = json.loads((out / "export.json").read_text())
    assert (info["format"], info["model"], info["input_type"]) == (
        "savedmodel", "saved_model", "image_tensor")
    assert info["outputs"] == result.outputs and info["max_abs_diff"] == {}
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))
    assert not list(out.parent.glob(f".{out.name}.old-*"))
    assert result.inputs == {"input_tensor": "uint8 [None, None, None, 3]"}
    assert result.outputs == {
        "detection_boxes": "float32 [None, 20, 4]", "detection_scores": "float32 [None, 20]",
        "detection_classes": "float32 [None, 20]", "num_detections": "float32 [None]",
        "detection_masks": "float32 [None, 20, 28, 28]",
        "detection_masks_reframed": "uint8 [None, 20, None, None]"}
    assert set(result.max_abs_diff) == set(result.outputs)
    assert max(result.max_abs_diff.values()) < 1e-4
    cfg = lib.dataset(tmp_path_factory) / "pipeline.config"
    assert (out / "pipeline.config").read_text() == cfg.read_text()
    assert "name: 'speaker'" in (out / "label_map.pbtxt").read_text()


@pytest.mark.parametrize("input_type", ["image_tensor", "encoded_image_string_tensor"])
def test_reloaded_savedmodel_matches_the_in_memory_model(input_type, model, tmp_path_factory):
    params, mem_model = model
    out, _ = lib.exported(tmp_path_factory, input_type, input_type == "image_tensor")
    image = lib.synth_image(tmp_path_factory, "image0005.png")[:, 10:]  # 96 x 118
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    got = {k: v.numpy() for k, v in
           serve(input_tensor=export.verification_input(input_type, image)).items()}
    prep = serving.Preprocessing.from_model_config(params.task.model)
    want = serving.detect(mem_model, prep, tf.constant(image[None]))
    assert got["num_detections"][0] > 0
    for name in ("detection_boxes", "detection_scores", "detection_masks"):
        np.testing.assert_allclose(got[name], want[name].numpy(), atol=1e-4, err_msg=name)
    np.testing.assert_array_equal(got["detection_classes"], want["detection_classes"].numpy())


def test_tf_example_input_matches_model_garden_eval_pipeline(model, tmp_path_factory):
    """Records through the serving computation (``tf_example`` input, run eagerly) give
    Model Garden's eval-parser results, mapped to normalized input-image boxes."""
    from official.core import task_factory

    params, mem_model = model
    task = task_factory.get_task(params.task)
    images, labels = next(iter(task.build_inputs(params.task.validation_data)))
    info = labels["image_info"].numpy()
    ref = mem_model.call(images, image_shape=labels["image_info"][:, 1, :],
                         anchor_boxes=labels["anchor_boxes"], training=False)
    records = lib.dataset(tmp_path_factory) / "records"
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(
        sorted(str(p) for p in records.glob("val-*")))]
    assert len(serialized) == images.shape[0] == 3
    prep = serving.Preprocessing.from_model_config(params.task.model)
    got = {k: v.numpy() for k, v in
           serving.detect(mem_model, prep, tf.constant(serialized), "tf_example").items()}
    for b in range(3):
        n = int(ref["num_detections"][b])
        assert n > 0 and int(got["num_detections"][b]) == n
        # Model Garden: pixels of the resized frame -> input pixels -> normalized, clipped.
        boxes = ref["detection_boxes"][b, :n].numpy() / np.tile(info[b, 2], 2)
        want = np.clip(boxes / np.tile(info[b, 0], 2), 0.0, 1.0)
        np.testing.assert_allclose(got["detection_boxes"][b, :n], want, atol=1e-4)
        np.testing.assert_allclose(got["detection_scores"][b, :n],
                                   ref["detection_scores"][b, :n], atol=1e-4)
        np.testing.assert_array_equal(got["detection_classes"][b, :n],
                                      ref["detection_classes"][b, :n].numpy().astype(np.float32))


# --------------------------------------------------------------------------- contract

@pytest.fixture(scope="module")
def small_and_large(tmp_path_factory, serve):
    small = lib.synth_image(tmp_path_factory)  # 96 x 128
    large = small.repeat(2, axis=0).repeat(2, axis=1)  # nearest-neighbour 192 x 256
    return small, _run(serve, small[None]), _run(serve, large[None])


def test_normalized_boxes_do_not_depend_on_the_input_size(small_and_large):
    small, out_small, out_large = small_and_large
    n = _valid(out_small)
    assert int(out_small["num_detections"][0]) == int(out_large["num_detections"][0]) > 0
    np.testing.assert_allclose(out_large["detection_boxes"][0, n],
                               out_small["detection_boxes"][0, n], atol=1e-4)
    np.testing.assert_allclose(out_large["detection_scores"], out_small["detection_scores"],
                               atol=1e-4)
    boxes = out_small["detection_boxes"][0, n]
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    classes = out_small["detection_classes"][0, n]
    assert out_small["detection_classes"].dtype == np.float32
    assert set(np.unique(classes)) <= set(range(1, NUM_CLASSES + 1))
    assert out_small["num_detections"].dtype == np.float32


def test_a_batch_gives_each_image_its_single_image_result(serve, tmp_path_factory):
    a = lib.synth_image(tmp_path_factory, "image0002.png")
    b = lib.synth_image(tmp_path_factory, "image0007.png")
    both = _run(serve, np.stack([a, b]))
    for i, image in enumerate((a, b)):
        alone = _run(serve, image[None])
        for name in ("detection_boxes", "detection_scores", "detection_classes"):
            np.testing.assert_allclose(both[name][i], alone[name][0], atol=1e-4, err_msg=name)


def test_full_image_masks_lie_in_their_boxes_on_a_non_square_input(serve, tmp_path_factory):
    image = tf.image.resize(lib.synth_image(tmp_path_factory, "image0003.png"), (100, 150),
                            method="nearest").numpy()  # scale 0.85, not 1 or 0.5
    out = _run(serve, image[None])
    n = _valid(out)
    masks = out["detection_masks_reframed"][0, n]
    assert out["detection_masks_reframed"].dtype == np.uint8
    assert masks.shape[1:] == (100, 150) and set(np.unique(masks)) <= {0, 1}
    assert masks.sum() > 0  # (a weakly trained mask head may leave some masks empty)
    for mask, box in zip(masks, out["detection_boxes"][0, n]):
        y0, x0, y1, x1 = box * [100, 150, 100, 150]
        inside = np.zeros_like(mask, bool)
        inside[max(0, int(np.floor(y0)) - 1):int(np.ceil(y1)) + 1,
               max(0, int(np.floor(x0)) - 1):int(np.ceil(x1)) + 1] = True
        assert mask[~inside].sum() == 0


def test_exported_checkpoint_restores_the_same_weights(image_export, model):
    params, mem_model = model
    ckpt = tf.train.latest_checkpoint(str(image_export[0] / "checkpoint"))
    assert ckpt.endswith("ckpt-0")
    assert export.find_checkpoint(image_export[0]) == ckpt  # the export folder itself works
    again = export.restore_model(params, ckpt)
    for a, b in zip(mem_model.variables, again.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


# --------------------------------------------------------------------------- failures

def test_a_failed_export_leaves_no_partial_folder_and_keeps_a_good_one(
        image_export, tmp_path, tmp_path_factory, monkeypatch):
    cfg = lib.dataset(tmp_path_factory) / "pipeline.config"
    good = tmp_path / "good"
    shutil.copytree(image_export[0], good)
    before = {p.relative_to(good): p.read_bytes() for p in good.rglob("*") if p.is_file()}
    written = []

    def broken_save(module, path, **kwargs):  # fails halfway through writing
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        written.append(path)
        raise OSError("disk full (test)")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    for target in (good, tmp_path / "fresh"):
        with pytest.raises(OSError, match="disk full"):
            export.export_model(cfg, lib.trained(tmp_path_factory), target)
    assert len(written) == 2
    after = {p.relative_to(good): p.read_bytes() for p in good.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_verification_names_the_output_that_differs():
    want = {"detection_boxes": np.zeros((1, 2, 4)), "detection_classes": np.ones((1, 2))}
    got = {"detection_boxes": np.zeros((1, 2, 4)), "detection_classes": np.ones((1, 2))}
    assert export.compare_outputs(want, got) == {"detection_boxes": 0.0, "detection_classes": 0.0}
    got["detection_boxes"] = np.full((1, 2, 4), 1e-3)
    with pytest.raises(export.ExportVerificationError, match="'detection_boxes'.*0.001"):
        export.compare_outputs(want, got)
    with pytest.raises(export.ExportVerificationError, match="no output 'detection_classes'"):
        export.compare_outputs(want, {"detection_boxes": want["detection_boxes"]})


def _detections(scores, boxes, classes, slots=4, m=3):
    """One image's outputs: the given detections first, zero padding to ``slots``."""
    n = len(scores)
    out = {"detection_boxes": np.zeros((1, slots, 4)), "detection_scores": np.zeros((1, slots)),
           "detection_classes": np.zeros((1, slots)), "num_detections": np.array([float(n)]),
           "detection_masks": np.zeros((1, slots, m, m)),
           "detection_masks_reframed": np.zeros((1, slots, 5, 6), np.uint8)}
    out["detection_boxes"][0, :n] = boxes
    out["detection_scores"][0, :n] = scores
    out["detection_classes"][0, :n] = classes
    for i in range(n):  # each detection's own mask
        out["detection_masks"][0, i] = (i + 1) / (n + 1)
        out["detection_masks_reframed"][0, i, i % 5] = 1
    return out


def _swapped(out, i, j):
    """``out`` with detections i and j exchanged in every per-detection output."""
    perm = np.arange(out["detection_scores"].shape[1])
    perm[[i, j]] = perm[[j, i]]
    return {k: v if k == "num_detections" else v[:, perm] for k, v in out.items()}


BOXES = [[0.1, 0.1, 0.5, 0.5], [0.0, 0.9, 0.8, 1.0], [0.3, 0.2, 0.4, 0.9]]


def test_verification_matches_detections_whose_near_tied_scores_swapped():
    # The in-memory model (op by op) and the SavedModel (Grappler-optimized graph) differ
    # by ~1e-6: two detections closer than that may leave NMS in either order.
    want = _detections([0.5, 0.2400010, 0.2400005], BOXES, [1, 2, 2])
    got = _swapped(want, 1, 2)
    got["detection_scores"][0, 1:3] = [0.2400006, 0.2400009]  # now in the other order
    diffs = export.compare_outputs(want, got)
    assert diffs["detection_boxes"] == 0.0 and diffs["detection_masks"] == 0.0
    assert diffs["detection_scores"] == pytest.approx(1e-7, rel=1e-3)
    assert diffs["detection_masks_reframed"] == 0.0


@pytest.mark.parametrize("change, output", [
    ("box", "detection_boxes"),        # a detection moved
    ("score", "detection_scores"),     # a detection scored differently
    ("class", "detection_classes"),    # swapped and relabeled
    ("masks", "detection_masks"),      # masks that do not follow their detection
    ("padding", "detection_boxes"),    # a box in a padding slot
    ("count", "detection_boxes"),      # one detection fewer
])
def test_verification_of_matched_detections_still_catches_a_real_difference(change, output):
    want = _detections([0.5, 0.2400010, 0.2400005], BOXES, [1, 2, 2])
    got = _swapped(want, 1, 2)
    if change == "box":
        got["detection_boxes"][0, 2, 0] += 1e-3
    elif change == "score":
        got["detection_scores"][0, 0] -= 1e-3
    elif change == "class":
        got["detection_classes"][0, 1] = 1
    elif change == "masks":
        got["detection_masks"] = want["detection_masks"].copy()  # in the unswapped order
    elif change == "padding":
        got["detection_boxes"][0, 3] = [0.1, 0.1, 0.2, 0.2]
    else:
        got = _detections([0.5, 0.2400010], BOXES[:2], [1, 2])
    with pytest.raises(export.ExportVerificationError, match=f"'{output}'"):
        export.compare_outputs(want, got)


def _twenty():
    """20 detections of 3 classes with distinct boxes and scores, in 20 slots."""
    i = np.arange(20)
    boxes = np.stack([i / 40, (i % 5) / 10, i / 40 + 0.3, (i % 5) / 10 + 0.4], 1)
    return _detections(0.9 - i / 50, boxes, 1 + i % 3, slots=20)


def _replaced(out, slots, count=None):
    """``out`` with the detections in ``slots`` replaced by other boxes (a proposal that
    went the other way); ``count`` detections kept (padding after)."""
    got = {k: v.copy() for k, v in out.items()}
    for i in slots:
        got["detection_boxes"][0, i] = [0.6, 0.6, 0.9, 0.95 - i / 100]
        got["detection_masks"][0, i] = 0.99
    if count is not None:
        got["num_detections"][0] = count
        for k in ("detection_boxes", "detection_scores", "detection_classes",
                  "detection_masks"):
            got[k][0, count:] = 0
    return got


def test_a_converted_model_may_replace_a_few_detections_and_says_how_many():
    # The first stage's top-k/NMS: a proposal tied within rounding goes either way in
    # another runtime, replacing up to one detection per class (seen with OpenVINO).
    want = _twenty()
    got = _swapped(_replaced(want, [13, 18]), 0, 5)
    diffs = export.compare_outputs(want, got, 2e-4, unpaired_share=0.15)
    assert diffs["unpaired_detections"] == 2
    assert diffs["detection_boxes"] == 0.0 and diffs["detection_masks"] == 0.0
    # one fewer detection in one of them: unpaired too
    diffs = export.compare_outputs(want, _replaced(want, [], count=19), 2e-4,
                                   unpaired_share=0.15)
    assert diffs["unpaired_detections"] == 1 and diffs["num_detections"] == 0.0
    # the SavedModel's own check (and the default) allows none
    with pytest.raises(export.ExportVerificationError, match="'detection_boxes'"):
        export.compare_outputs(want, got, 2e-4)


@pytest.mark.parametrize("change", ["too_many", "mask_of_a_pair", "score_of_a_pair"])
def test_the_unpaired_allowance_still_fails_a_wrong_conversion(change):
    want = _twenty()
    got = _replaced(want, [2, 7, 11, 15] if change == "too_many" else [4])  # 3 allowed of 20
    if change == "mask_of_a_pair":
        got["detection_masks"][0, 9] += 0.01
    elif change == "score_of_a_pair":
        got["detection_scores"][0, 9] += 1e-3
    output = {"too_many": "detection_boxes", "mask_of_a_pair": "detection_masks",
              "score_of_a_pair": "detection_scores"}[change]
    with pytest.raises(export.ExportVerificationError, match=f"'{output}'"):
        export.compare_outputs(want, got, 2e-4, unpaired_share=0.15)


def test_cli_missing_checkpoint_is_one_error_line(tmp_path, tmp_path_factory, capsys):
    cfg = lib.dataset(tmp_path_factory) / "pipeline.config"
    empty = tmp_path / "no_ckpt"
    empty.mkdir()
    code = main(["export", "--pipeline_config_path", str(cfg), "--trained_checkpoint_dir",
                 str(empty), "--output_directory", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"error: {empty}: no checkpoint found in this folder"
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_model_is_a_data_error(tmp_path, tmp_path_factory):
    """A checkpoint that lacks the model's variables is refused, naming it."""
    other = tf.train.Checkpoint(model=tf.Module())
    other.model.v = tf.Variable(1.0)
    prefix = other.write(str(tmp_path / "ckpt-1"))
    with pytest.raises(DataError, match="does not match the model"):
        export.export_model(lib.dataset(tmp_path_factory) / "pipeline.config", prefix,
                            tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-1.data-00000-of-00001",
                                                         "ckpt-1.index"]


def test_refuses_to_replace_a_folder_that_is_not_an_export(tmp_path, tmp_path_factory):
    from tfmask.errors import ConfigError

    (tmp_path / "precious.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an export"):
        export.export_model(lib.dataset(tmp_path_factory) / "pipeline.config",
                            lib.trained(tmp_path_factory), tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_bfloat16_masks_are_held_to_a_mean_difference_per_detection():
    # A bfloat16 box moved within tolerance resamples its mask: its edge moves (demo model
    # after 30 steps: mean 0.047, largest 0.37). A mask of another class or detection still fails.
    want = _twenty()
    got = {k: v.copy() for k, v in want.items()}
    got["detection_masks"][0, 3, 0, 0] += 0.37  # one pixel of 9 (mean 0.041): the edge moved
    mean = export.MASK_MEAN_TOLERANCE["bfloat16"]
    diffs = export.compare_outputs(want, got, 2e-2, mask_mean_tolerance=mean)
    assert diffs["detection_masks"] == pytest.approx(0.37)
    with pytest.raises(export.ExportVerificationError, match="'detection_masks'"):
        export.compare_outputs(want, got, 2e-2)  # float32's rule: the largest difference
    got["detection_masks"][0, 3] = 1 - want["detection_masks"][0, 3]  # another mask
    with pytest.raises(export.ExportVerificationError, match="a detection's mean"):
        export.compare_outputs(want, got, 2e-2, mask_mean_tolerance=mean)
    assert export.MASK_MEAN_TOLERANCE["float32"] is None
