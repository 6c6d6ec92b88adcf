"""``tfmask.bench.peers`` in quick mode: torchvision and tfmask measured at the same settings."""

from __future__ import annotations

import importlib.util
import math

import pytest

if importlib.util.find_spec("torchvision") is None:  # the [peers] extra, which `make test` installs
    pytest.skip("torchvision is not installed", allow_module_level=True)

from tfmask.bench import peers  # noqa: E402
from tfmask.bench.peers_torchvision import batch_runs  # noqa: E402


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    return peers.run(tmp_path_factory.mktemp("peers"), quick=True)


@pytest.mark.slow  # ~4 min on 2 cores: graph building dominates
def test_every_row_is_a_finite_comparison(section):
    cfg = section.details["settings"]
    names = [r.name for r in section.rows]
    assert [batch for batch, _ in batch_runs(cfg)] == [1, 2]  # quick: batch 2 for 4
    assert "R50-FPN inference latency, batch 1, float32" in names
    assert "R50-FPN inference latency, batch 2, float32" in names
    assert "R50-FPN training step, 128 px, batch 1" in names
    bf16 = "bfloat16" in section.details["tfmask"]["inference"]
    timed = [r for r in section.rows if r.target is not None and r.unit == "ms"]
    assert timed[-1].name == "R50-FPN inference latency, batch 1, best against best"
    extra = section.rows[len(timed):]
    assert [r.name for r in extra] == ([
        "mask AP cost of the bfloat16 export (vs float32)",
        "mask AP cost of the bfloat16 export, fewer proposals (vs float32)",
        "R50-FPN inference latency, batch 1, bfloat16, 30 test proposals"] if bf16 else [])
    for row in extra[:2]:
        assert row.unit == "AP points" and row.target == 1.0 and 0 <= row.value <= 100, row
    if bf16:
        assert extra[2].value > 0 and extra[2].baseline > 0 and extra[2].target is None
        acc = section.details["accuracy"]
        assert acc["training"]["steps"] == 30 and acc["float32"]["proposals"] == 64
        assert acc["bfloat16_fewer_proposals"]["proposals"] == 20  # ceil(0.3 * 64)
    for row in timed:
        assert row.unit == "ms", row
        assert math.isfinite(row.value) and row.value > 0, row
        assert row.baseline and row.baseline > 0 and row.ratio > 0, row
        assert math.isfinite(row.ratio), row
        assert row.target is not None and not row.higher_is_better
    if bf16:
        assert "R50-FPN training step, 128 px, batch 1, bfloat16" in names
        assert len(section.details["torchvision"]["bfloat16_train_step_s"]) == cfg["train_steps"]
    else:
        assert "no native bfloat16" in section.details["bfloat16"]
    assert section.details["tfmask"]["square_frame"] == {}  # full mode only


@pytest.mark.slow  # ~4 min on 2 cores: graph building dominates
def test_both_sides_ran_with_the_same_numbers(section):
    cfg, tv = section.details["settings"], section.details["torchvision_arguments"]
    assert tv["rpn_post_nms_top_n_test"] == cfg["test_proposals"]
    assert tv["box_detections_per_img"] == cfg["detections"] and tv["box_score_thresh"] == 0.0
    assert tv["rpn_pre_nms_top_n_train"] == tv["rpn_post_nms_top_n_train"] \
        == cfg["train_proposals"]
    assert tv["box_batch_size_per_image"] == cfg["sampled_rois"]
    assert tv["infer_min_max_size"] == [96, 128] and tv["train_min_max_size"] == [96, 128]
    theirs, ours = section.details["torchvision"], section.details["tfmask"]["inference"]
    assert theirs["threads"] == section.details["threads"]
    # Score threshold 0: every one of the detections goes through both mask heads.
    for batch, runs in batch_runs(cfg):
        assert ours["float32"][f"b{batch}_detections"] == cfg["detections"]
        assert theirs[f"float32_b{batch}_detections"] == cfg["detections"]
        assert len(ours["float32"][f"b{batch}_ms"]) == len(theirs[f"float32_b{batch}_ms"]) \
            == runs
    assert len(section.details["tfmask"]["train_step_s"]) == cfg["train_steps"]
    assert len(theirs["train_step_s"]) == cfg["train_steps"]


def test_the_fitted_frame_holds_the_resized_photo_in_multiples_of_the_stride():
    assert peers.fitted_frame([384, 512], 512, 64) == [384, 512]
    assert peers.fitted_frame([384, 512], 640, 64) == [512, 640]  # 640x480 content
    assert peers.fitted_frame([512, 384], 640, 64) == [640, 512]  # portrait
    assert peers.fitted_frame([96, 128], 128, 64) == [128, 128]  # quick mode: square


def test_full_settings_are_the_benchmarks():
    cfg = peers._settings(quick=False)
    assert cfg == {"image_hw": [384, 512], "infer_size": 512, "train_size": 640,
                   "test_proposals": 1000, "detections": 100, "runs_b1": 8, "runs_b4": 3,
                   "warmup": 1, "train_warmup": 2, "train_steps": 6}
    assert batch_runs(cfg) == [(1, 8), (4, 3)]


def test_torchvision_settings_follow_the_translated_model():
    from types import SimpleNamespace as NS

    model = NS(num_classes=4, roi_generator=NS(
        test_pre_nms_top_k=300, test_num_proposals=200, pre_nms_top_k=2000, num_proposals=1000,
        test_nms_iou_threshold=0.7), roi_sampler=NS(num_sampled_rois=512,
                                                     foreground_fraction=0.25),
        detection_generator=NS(nms_iou_threshold=0.5, max_num_detections=100))
    params = NS(task=NS(model=model, train_data=NS(parser=NS(rpn_batch_size_per_im=256,
                                                             rpn_fg_fraction=0.5))))
    tv = peers.torchvision_settings(params, {"image_hw": [384, 512], "infer_size": 512,
                                             "train_size": 640})
    assert tv["rpn_pre_nms_top_n_test"] == 300 and tv["rpn_post_nms_top_n_test"] == 200
    assert tv["rpn_post_nms_top_n_train"] == 1000 and tv["box_batch_size_per_image"] == 512
    assert tv["infer_min_max_size"] == [384, 512] and tv["train_min_max_size"] == [480, 640]
    assert tv["num_classes"] == 4 and tv["box_score_thresh"] == 0.0
