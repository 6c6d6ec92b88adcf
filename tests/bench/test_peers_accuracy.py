"""``tfmask.bench.peers_accuracy``: the AP check of tfmask's faster inference paths."""

from __future__ import annotations

import pytest

from tfmask.bench import peers_accuracy as acc
from tfmask.config.textproto import read_text_file, write_text_file

TINY = acc.ROOT / "configs" / "mask_rcnn_tiny_cpu.config"
R50 = acc.ROOT / "configs" / "mask_rcnn_resnet50_fpn_640x640.config"


@pytest.mark.parametrize("config, want", [(TINY, 20), (R50, 300)])
def test_fewer_proposals_is_three_tenths_of_the_configs_and_nothing_else(config, want,
                                                                       tmp_path):
    out = tmp_path / "fewer.config"
    assert acc._fewer_proposals_config(config, out) == want
    got, orig = read_text_file(out), read_text_file(config)
    key = "model.faster_rcnn.first_stage_max_proposals"
    assert got.get_path(key) == want
    got.set(key, orig.get_path(key))
    write_text_file(tmp_path / "a.config", got, header="x")
    write_text_file(tmp_path / "b.config", orig, header="x")
    assert (tmp_path / "a.config").read_text() == (tmp_path / "b.config").read_text()


def _accuracy(f32, bf16, fewer):
    return {"training": {"steps": 900, "input_size": 256, "proposals": 64},
            "float32": {"mask_AP": f32, "box_AP": 0.6, "proposals": 64},
            "bfloat16": {"mask_AP": bf16, "box_AP": 0.6, "proposals": 64},
            "bfloat16_fewer_proposals": {"mask_AP": fewer, "box_AP": 0.5, "proposals": 20}}


def test_the_ap_rows_hold_the_bar_of_one_point_either_way():
    rows = acc.accuracy_rows(_accuracy(0.513, 0.5061, 0.4912), [410.0, 400.0, 390.0], 800.0,
                             "torchvision's fastest (bfloat16)", 300, 1000)
    bf16, fewer, latency = rows
    assert (bf16.value, bf16.met) == (0.69, True)
    assert (fewer.value, fewer.met) == (2.18, False)
    assert "0.4912 vs float32 0.5130" in fewer.note and "20 vs 64 test proposals" in fewer.note
    assert latency.name == "R50-FPN inference latency, batch 1, bfloat16, 300 test proposals"
    assert (latency.value, latency.ratio, latency.target) == (400.0, 2.0, None)
    assert "1000" in latency.note
    gain = acc.accuracy_rows(_accuracy(0.50, 0.52, 0.50), [1.0], 2.0, "t", 300, 1000)[0]
    assert (gain.value, gain.met) == (2.0, False)  # 2 points better is not "within 1 point"
