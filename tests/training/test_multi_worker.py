"""Two worker processes on localhost train one model with multi_worker_mirrored (CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import write_config


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _run_two_workers(cfg, model_dir, steps):
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}),
            CUDA_VISIBLE_DEVICES="-1")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tfmask", "train", "--pipeline_config_path", str(cfg),
             "--model_dir", str(model_dir), "--num_train_steps", str(steps),
             "--checkpoint_every_n", "4", "--distribution_strategy", "multi_worker_mirrored"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=600)
            outputs.append(out)
    finally:
        for p in procs:
            p.kill()
    steps_seen = []
    for index, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, "\n".join(
            f"--- worker {i} (exit {q.returncode}):\n{o[:2500]}\n...\n{o[-1500:]}"
            for i, (q, o) in enumerate(zip(procs, outputs)))
        steps_seen.append([int(line.split()[1].split("/")[0]) for line in out.splitlines()
                           if line.startswith("step ")])
    return outputs, steps_seen


@pytest.mark.slow  # two TensorFlow processes training together: minutes on 2 cores
def test_two_workers_train_one_model_and_resume(tiny_records, tmp_path):
    # The tiny config's global batches of 4 split into 2 + 2 over the two workers.
    cfg = write_config(tmp_path / "p.config", tiny_records)
    model_dir = tmp_path / "m"
    outputs, steps = _run_two_workers(cfg, model_dir, 4)
    assert steps == [[1, 2, 3, 4], [1, 2, 3, 4]], outputs[0][-2000:]
    # The chief (worker 0) owns the model dir: checkpoints at step 4, params, metrics.
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-4")
    reader = tf.train.load_checkpoint(str(model_dir))
    assert int(reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE")) == 4
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert saved["step"] == 4 and {"AP", "mask_AP"} <= set(saved["metrics"])
    assert "multi_worker_mirrored over 2 replicas (worker 0, chief)" in outputs[0]
    assert "multi_worker_mirrored over 2 replicas (worker 1)" in outputs[1]
    # Both workers resume from the chief's checkpoint and count on from step 4.
    outputs, steps = _run_two_workers(cfg, model_dir, 6)
    assert steps == [[5, 6], [5, 6]], outputs[1][-2000:]
    assert all(f"resuming from {model_dir / 'ckpt-4'}" in out for out in outputs)
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-6")
