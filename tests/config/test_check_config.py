"""``tfmask check-config`` on every shipped config and every published OD API config.

Each is translated, built and stepped once (forward and backward) on one
synthetic 64 px image; the report lists what the translation honoured and
not. The published configs are filled in as the tutorial says, without the
zoo checkpoint (which is refused: ``test_published_configs.py``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from config_runs import fill_in, records
from published_configs import CONFIGS, config_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {p.stem: p for p in sorted((ROOT / "configs").glob("*.config"))}
NAMES = list(SHIPPED) + [n for n in CONFIGS if n != "tf1_inception_v2"]


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    return records(tmp_path_factory)


def _config(name, recs, tmp_path):
    text = SHIPPED[name].read_text() if name in SHIPPED else config_text(name)
    return fill_in(text, tmp_path / f"{name}.config", recs, size=None)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_check_config_steps_every_config(name, recs, tmp_path):
    from tfmask.config.translate import translate
    from tfmask.training.check_config import check_config

    cfg = _config(name, recs, tmp_path)
    report = check_config(cfg, size=64)
    t = translate(cfg)
    assert (report.honoured, report.ignored, report.notes) == (t.honoured, t.ignored, t.notes)
    assert report.checked_size_hw == (64, 64)
    assert report.input_size_hw == tuple(t.params.task.model.input_size[:2])
    assert set(report.losses) >= {"total_loss", "rpn_score_loss", "rpn_box_loss",
                                  "frcnn_cls_loss", "frcnn_box_loss", "mask_loss"}
    assert all(math.isfinite(v) for v in report.losses.values())
    assert report.losses["mask_loss"] > 0 and report.losses["frcnn_cls_loss"] > 0
    with_grad, total = report.variables_with_gradient
    assert total > 50  # the tiny model has 91 trainable variables
    assert with_grad >= 0.9 * total, report.variables_with_gradient
    text = "\n".join(report.lines())
    assert f"honoured ({len(t.honoured)}):" in text
    assert f"not honoured ({len(t.ignored)}):" in text


def test_check_config_cli(recs, tmp_path, capsys):
    """The command prints the report; a refused config is one error line."""
    from tfmask.cli import main

    cfg = _config("mask_rcnn_tiny_cpu", recs, tmp_path)
    assert main(["check-config", "--pipeline_config_path", str(cfg), "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "translated, built and stepped once (32x32 synthetic image; the config trains " \
           "at 128x128)" in out
    assert "model: resnet-10 + FPN 64 (levels 3-5); box head 0 conv x 64 + 1 fc x 256" in out
    assert "sampling: 64 proposals, 64 sampled ROIs, 16 sampled masks, 20 detections" in out
    assert "\n  model.faster_rcnn.num_classes\n" in out and "not honoured (0):" in out
    bad = fill_in(config_text("tf1_inception_v2"), tmp_path / "v2.config", recs)
    assert main(["check-config", "--pipeline_config_path", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "faster_rcnn_inception_v2' is not supported" in err[0]
