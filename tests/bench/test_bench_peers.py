"""``tfmask.bench.peers`` in quick mode: torchvision and tfmask measured at the same settings."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torchvision")  # the [peers] extra, which `make test` installs

from tfmask.bench import peers  # noqa: E402


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    return peers.run(tmp_path_factory.mktemp("peers"), quick=True)


def test_every_row_is_a_finite_comparison(section):
    names = [r.name for r in section.rows]
    assert "R50-FPN inference latency, batch 1, float32" in names
    assert "R50-FPN inference latency, batch 4, float32" in names
    assert "R50-FPN training step, 640 px, batch 1" in names
    assert names[-1] == "R50-FPN inference latency, batch 1, best against best"
    for row in section.rows:
        assert math.isfinite(row.value) and row.value > 0, row
        assert row.baseline and row.baseline > 0 and row.ratio > 0, row
        assert row.target is not None and not row.higher_is_better
    if "bfloat16" not in section.details["tfmask"]["inference"]:
        assert "no native bfloat16" in section.details["bfloat16"]


def test_both_sides_ran_with_the_same_numbers(section):
    cfg, tv = section.details["settings"], section.details["torchvision_arguments"]
    assert tv["rpn_post_nms_top_n_test"] == cfg["test_proposals"]
    assert tv["box_detections_per_img"] == cfg["detections"] and tv["box_score_thresh"] == 0.0
    assert tv["infer_min_max_size"] == [96, 128]
    theirs, ours = section.details["torchvision"], section.details["tfmask"]["inference"]
    assert theirs["threads"] == section.details["threads"]
    # Score threshold 0: every one of the detections goes through both mask heads.
    for batch in (1, 4):
        assert ours["float32"][f"b{batch}_detections"] == cfg["detections"]
        assert theirs[f"float32_b{batch}_detections"] == cfg["detections"]
    assert len(section.details["tfmask"]["train_step_s"]) == cfg["train_steps"]
    assert len(theirs["train_step_s"]) == cfg["train_steps"]


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
