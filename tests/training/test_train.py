"""Training on Model Garden: loss falls, resume, interrupt, NaN guard, evaluation."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfmask.training import loop
from tfmask.config import experiment
from tfmask.errors import DataError
from tfmask.training.progress import NonFiniteLossError, ProgressAction
from conftest import write_config


def _train(cfg, model_dir, steps, every=None):
    exp = experiment.from_pipeline_config(cfg)
    opts = experiment.RunOptions(num_train_steps=steps, checkpoint_every_n=every or steps)
    return loop.train(exp, model_dir, opts, say=lambda s: None)


def test_tiny_config_trains_and_loss_falls(tiny_records, tmp_path):
    cfg = write_config(tmp_path / "p.config", tiny_records)
    result = _train(cfg, tmp_path / "m", steps=30, every=10)
    losses = [h["total_loss"] for h in result.history]
    assert result.step == 30 and len(losses) == 30
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses
    # Evaluation ran on the val records: COCO box and mask metrics exist.
    assert {"AP", "AP50", "mask_AP", "mask_AP50"} <= set(result.metrics)
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved["step"] == 30
    assert (tmp_path / "m" / "params.yaml").exists()
    assert (tmp_path / "m" / "pipeline.config").read_text() == cfg.read_text()
    assert tf.train.latest_checkpoint(str(tmp_path / "m")).endswith("ckpt-30")
    # Evaluated at steps 10, 20 and 30; TensorBoard has the AP curves and prediction images.
    events = [e for f in (tmp_path / "m" / "validation").iterdir()
              for e in tf.compat.v1.train.summary_iterator(str(f))]
    steps_by_tag = {}
    for e in events:
        for v in e.summary.value:
            steps_by_tag.setdefault(v.tag, set()).add(e.step)
    assert steps_by_tag["predictions"] == {10, 20, 30}
    assert steps_by_tag["mask_AP"] == {10, 20, 30}, sorted(steps_by_tag)

    # Resume: a longer run in the same dir continues from step 30.
    more = _train(cfg, tmp_path / "m", steps=33)
    assert [h["step"] for h in more.history] == [31, 32, 33]


def test_progress_action_stops_on_non_finite_loss():
    step = tf.Variable(7, dtype=tf.int64)
    lines = []
    action = ProgressAction(step, 10, say=lines.append)
    action({"total_loss": 1.0, "mask_loss": 0.5, "learning_rate": 0.1})
    assert lines and lines[0].startswith("step 7/10  loss 1.0000")
    with pytest.raises(NonFiniteLossError, match="mask_loss is nan at step 7"):
        action({"total_loss": 1.0, "mask_loss": float("nan")})
    with pytest.raises(NonFiniteLossError, match="total_loss is inf"):
        action({"total_loss": float("inf")})


@contextlib.contextmanager
def _training(cfg, model_dir, env):
    """A 1000-step ``tfmask train`` child; killed on the way out, whatever happened."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfmask", "train", "--pipeline-config-path", str(cfg),
         "--model-dir", str(model_dir), "--num-train-steps", "1000",
         "--checkpoint-every-n", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _read_until(proc, prefix: str, timeout_s: float = 600) -> list:
    """The child's lines up to one starting with ``prefix``; fails (not hangs) otherwise."""
    lines, deadline = [], time.time() + timeout_s
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return lines
        assert time.time() < deadline, f"no '{prefix}' line in {timeout_s} s:\n{''.join(lines)}"
    raise AssertionError(f"the run ended before '{prefix}':\n{''.join(lines)}")


def test_interrupt_saves_a_checkpoint_and_resume_continues(tiny_records, tmp_path):
    cfg = write_config(tmp_path / "p.config", tiny_records)
    model_dir = tmp_path / "m"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with _training(cfg, model_dir, env) as proc:
        lines = _read_until(proc, "step 4/1000")
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=300)
    out = "".join(lines) + rest
    assert proc.returncode == 1, out
    assert "interrupted: checkpoint saved at step" in out
    saved = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
    assert saved >= 4
    # Resuming continues the step counter from the saved step.
    more = _train(cfg, model_dir, steps=saved + 2)
    assert [h["step"] for h in more.history] == [saved + 1, saved + 2]


@pytest.mark.slow  # the SIGINT test above covers the same handler in make test
def test_sigterm_also_saves(tiny_records, tmp_path):
    cfg = write_config(tmp_path / "p.config", tiny_records)
    with _training(cfg, tmp_path / "m", dict(os.environ, PYTHONUNBUFFERED="1")) as proc:
        _read_until(proc, "step 2/1000")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    assert "interrupted: checkpoint saved at step" in out
    assert tf.train.latest_checkpoint(str(tmp_path / "m")) is not None


def test_evaluate_checkpoint_dir(tiny_records, tmp_path):
    cfg = write_config(tmp_path / "p.config", tiny_records)
    _train(cfg, tmp_path / "m", steps=2)
    exp = experiment.from_pipeline_config(cfg)
    metrics = loop.evaluate(exp, tmp_path / "m", tmp_path / "eval")
    assert {"AP", "mask_AP"} <= set(metrics)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["AP"] == \
        pytest.approx(metrics["AP"])
    with pytest.raises(DataError, match="no checkpoint found"):
        loop.evaluate(experiment.from_pipeline_config(cfg), tmp_path / "none", tmp_path / "e2")


def _variables(ckpt, part):
    reader = tf.train.load_checkpoint(ckpt)
    names = [n for n, _ in tf.train.list_variables(ckpt)
             if n.startswith(f"{part}/") and "OPTIMIZER_SLOT" not in n]
    assert names, part
    return {n: reader.get_tensor(n) for n in names}


def test_heads_only_stage_leaves_backbone_unchanged(tiny_records, tmp_path):
    """The staged recipe: all layers, then a run with the backbone frozen (or the reverse)."""
    model_dir = tmp_path / "m"
    cfg = write_config(tmp_path / "all.config", tiny_records)
    _train(cfg, model_dir, steps=2)
    before = tf.train.latest_checkpoint(str(model_dir))
    heads = write_config(tmp_path / "heads.config", tiny_records,
                         {"train_config.freeze_variables": "backbone"})
    result = _train(heads, model_dir, steps=4)
    after = tf.train.latest_checkpoint(str(model_dir))
    assert result.step == 4 and before != after
    for name, value in _variables(before, "backbone").items():
        np.testing.assert_array_equal(value, tf.train.load_checkpoint(after).get_tensor(name),
                                      err_msg=name)
    changed = [not np.array_equal(v, tf.train.load_checkpoint(after).get_tensor(n))
               for n, v in _variables(before, "mask_head").items()]
    assert any(changed)
