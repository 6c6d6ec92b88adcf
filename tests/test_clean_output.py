"""Clean output: a command prints only tfmask's own lines (progress bars included); other
libraries' messages go to the run's log file, and ``--verbose`` shows them.

The commands run in a child process on a pseudo-terminal, as a user's shell runs them:
TensorFlow's C++ logs and progress bars only appear there.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import make_dataset

# tfmask's line formats: demo steps and their indented details, the outputs list,
# command summaries, notes/warnings, eval tables, and tqdm progress bars.
TFMASK_LINE = re.compile("|".join([
    r"\[demo\] \S.*",            # [demo] 4/7 training ...
    r" {7} *\S.*",               # its details: conversion counts, step lines, eval line
    r"  \S.*",                   # the outputs list / indented tables
    r"(note|warning): \S.*",
    r"wrote \S.*",                                   # tfmask eval / preview / report
    r" +(box|mask)( +(box|mask))*",                  # tfmask eval's table
    r"(AP|AP50|AP75|mAP@[\d.:]+) +[-\d. ]+", r"per-class AP", r"\d+ image\(s\), .*",
    r"[\w.-]+( [\w.-]+)*: +\d+%\|[^|]*\| *\d+/\d+ \[[^\]]*\]",  # tqdm: desc: 40%|███ | 4/10 [..]
    r"[\w.-]+( [\w.-]+)*: +\d+%\|[^|]*\| *\d+/\d+ *",           # a bar cut at its refresh
    r"[\w.-]+( [\w.-]+)*: +\d+\w* \[[^\]]*\]",                  # tqdm without a total
]))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_pty(argv, env=None, timeout=1800):
    """(exit status, everything the child wrote to its terminal, stdout and stderr alike)."""
    master, slave = pty.openpty()
    # A terminal of 40 x 120 characters (a new pty has 0 x 0: tqdm would draw empty bars).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=timeout)
    return code, b"".join(chunks).decode("utf-8", "replace")


def foreign_lines(text: str):
    """The terminal fragments (split at newlines and carriage returns) that are not tfmask's."""
    fragments = (ANSI.sub("", f).rstrip() for f in re.split(r"[\r\n]+", text))
    return [f for f in fragments if f and not TFMASK_LINE.fullmatch(f)]


def _env(tmp_path):
    """A fresh matplotlib cache (its 'generated new fontManager' notice), nothing quietened."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFMASK_VERBOSE", "TFMASK_DEBUG")}
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")
    return env


def test_the_line_formats_reject_other_libraries_lines():
    text = ("[demo] 1/7 mask pixel values\n       gray levels [76]\r"
            "converting:  40%|████      | 4/10 [00:01<00:02, 3.1img/s]\r"
            "converting: 100%|██████████| 10/10 [00:02<00:00, 4.0img/s]\n  records   /x\n")
    assert foreign_lines(text) == []
    noise = ["2026-12-01 20:42:34.698200: E external/local_xla/xla/stream_executor/cuda/"
             "cuda_platform.cc:51] failed call to cuInit",
             "W0000 00:00:1796153889.460686   18276 op_level_cost_estimator.cc:699] Error",
             "loading annotations into memory...", "index created!",
             " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.0",
             "Matplotlib is building the font cache; this may take a moment.",
             "generated new fontManager", "WARNING:tensorflow:From deprecation.py:660"]
    assert foreign_lines("\n".join(noise)) == noise


@pytest.fixture(scope="module")
def eval_inputs(tmp_path_factory):
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.evaluation.inputs import ground_truth_from_records

    root = tmp_path_factory.mktemp("clean_eval")
    make_dataset(root / "data")
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "records"),
                          instance_mode="box", val_fraction=0.0, progress=False))
    gt = ground_truth_from_records(str(root / "records" / "train-*"))
    dets = root / "dets.json"
    dets.write_text(json.dumps([dict(a, score=0.9) for a in gt["annotations"]]))
    return root


@pytest.mark.parametrize("verbose", [False, True])
def test_eval_is_quiet_and_verbose_shows_the_libraries(eval_inputs, tmp_path, verbose):
    out = tmp_path / "eval"
    argv = [sys.executable, "-m", "tfmask", "eval", "--gt", str(eval_inputs / "records" / "train-*"),
            "--detections", str(eval_inputs / "dets.json"), "--output", str(out)]
    if verbose:
        argv.append("--verbose")
    code, text = run_on_pty(argv, env=_env(tmp_path))
    assert code == 0, text
    pycocotools = "Accumulating evaluation results"
    foreign = foreign_lines(text)
    if verbose:
        assert pycocotools in text and "generated new fontManager" in text
    else:
        assert pycocotools not in text and "fontManager" not in text
        assert foreign == [], foreign
        log = (out / "tfmask-eval.log").read_text()
        assert pycocotools in log and "generated new fontManager" in log


@pytest.mark.slow
def test_a_short_demo_prints_only_tfmask_lines(tmp_path):
    from tfmask.data.synth import synthesize

    synthesize(tmp_path / "data", num_train=10, num_test=2, size_hw=(96, 128), seed=2)
    out = tmp_path / "out"
    code, text = run_on_pty([sys.executable, "-m", "tfmask", "demo", "--data-dir",
                             str(tmp_path / "data"), "--out", str(out), "--train-steps", "2"],
                            env=_env(tmp_path))
    assert code == 0, text
    assert foreign_lines(text) == [], text
    assert "%|" in text  # progress bars were drawn (a terminal) and are tfmask's format
    assert "[demo] done. Outputs:" in text
    log = (out / "tfmask-demo.log").read_text()
    # The noise went there: pycocotools (Model Garden's eval) and TensorFlow's own logs.
    assert "index created!" in log and "tensorflow" in log.lower()
