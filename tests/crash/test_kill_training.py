"""SIGKILL during ``tfmask train``, aimed at a checkpoint write: the latest checkpoint is
always complete, and the same command resumes from it and finishes."""

from __future__ import annotations

import re

import pytest

from crashlib import Run, export_testlib
from tfmask.training.ckpt_safety import remove_interrupted_saves

STEPS, EVERY = 5, 3  # checkpoints at steps 1, 4 and 5


def _ckpt_step(prefix: str) -> int:
    return int(re.search(r"ckpt-(\d+)$", prefix).group(1))


def assert_complete(model_dir) -> int:
    """Asserts the latest checkpoint is whole and readable; returns its global step."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(model_dir))
    assert latest is not None
    reader = tf.train.load_checkpoint(latest)  # fails on a missing or torn index / data file
    for name, _ in tf.train.list_variables(latest):
        reader.get_tensor(name)  # reads (and checksums) every tensor of the data files
    step = int(reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert step == _ckpt_step(latest)
    return step


@pytest.mark.slow
def test_kill_during_checkpoint_write_then_resume(tmp_path_factory, tmp_path):
    import tensorflow as tf

    config = export_testlib().dataset(tmp_path_factory) / "pipeline.config"
    model_dir = tmp_path / "model"
    args = ["train", "--pipeline_config_path", config, "--model_dir", model_dir,
            "--num_train_steps", STEPS, "--checkpoint_every_n", EVERY, "--keep_checkpoints", 1]
    run = Run(args, tmp_path / "killed.log")
    first = run.wait_until(lambda: tf.train.latest_checkpoint(str(model_dir)), timeout=400)

    def newer_checkpoint_started():  # the first file (or _temp folder) of the next one
        return [p for p in model_dir.glob("ckpt-*")
                if int(re.match(r"ckpt-(\d+)", p.name).group(1)) > _ckpt_step(first)]

    run.wait_until(newer_checkpoint_started, timeout=300, poll_s=0.001)
    run.kill()
    saved = assert_complete(model_dir)
    assert saved >= 1
    debris = sorted(model_dir.glob("ckpt-*_temp"))  # a save cut short, if the kill hit one

    out = Run(args, tmp_path / "resumed.log").finish()
    for path in debris:  # train() removes it first, and says so
        assert f"removed {path}, left by a run killed while saving" in out, out[-3000:]
    assert re.search(rf"resuming from \S*ckpt-{saved}\n", out), out[-3000:]
    steps = [int(s) for s in re.findall(rf"^step (\d+)/{STEPS}\b", out, re.M)]
    assert steps == list(range(saved + 1, STEPS + 1)), out[-3000:]
    assert assert_complete(model_dir) == STEPS
    assert not list(model_dir.glob("ckpt-*_temp")) and not list(model_dir.glob("*.tmp*"))


def test_remove_interrupted_saves_keeps_checkpoints(tmp_path):
    (tmp_path / "ckpt-4_temp").mkdir()
    (tmp_path / "ckpt-4_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(
        b"partial")
    (tmp_path / ("checkpoint.tmp" + "0" * 32)).write_text("model_checkpoint_path")
    keep = ["checkpoint", "ckpt-1.index", "ckpt-1.data-00000-of-00001", "ckpt-7.index",
            "ckpt-7.data-00000-of-00001", "params.yaml"]
    for name in keep:
        (tmp_path / name).write_text("x")
    assert [p.name for p in remove_interrupted_saves(tmp_path)] == [
        "checkpoint.tmp" + "0" * 32, "ckpt-4_temp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert remove_interrupted_saves(tmp_path / "missing") == []
