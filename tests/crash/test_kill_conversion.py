"""SIGKILL during ``tfmask tfrecord``: nothing under a final name; a rerun cleans up and
writes the same bytes as an uninterrupted run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crashlib import Run
from tfmask.data.synth import synthesize

ARGS = ("--num-shards", "2", "--val-fraction", "0.2", "--no-progress")
FINAL = re.compile(r"(train|val)-\d{5}-of-\d{5}$|label_map\.pbtxt$|conversion_report\.json$")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """150 labelled 256x192 photos: a conversion of several seconds here."""
    root = tmp_path_factory.mktemp("crash_data") / "data"
    synthesize(root, num_train=150, num_test=0, size_hw=(192, 256), seed=3)
    return root


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The records of an uninterrupted run."""
    out = tmp_path_factory.mktemp("crash_reference") / "records"
    Run(["tfrecord", "--data-dir", data, "--output-dir", out, *ARGS],
        out.parent / "log").finish()
    return out


def _normalized(path: Path, out_dir: Path) -> bytes:
    data = path.read_bytes()
    return data.replace(str(out_dir).encode(), b"OUT") if path.suffix == ".json" else data


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_during_conversion_then_rerun(data, reference, tmp_path, workers):
    out = tmp_path / "records"
    args = ["tfrecord", "--data-dir", data, "--output-dir", out, "--workers", workers, *ARGS]
    run = Run(args, tmp_path / "killed.log")

    def partial_shard():  # a train shard well on its way under its temporary name
        return [p for p in out.glob(".train-*.tmp") if p.stat().st_size > 100_000] \
            if out.is_dir() else []

    run.wait_until(partial_shard, timeout=120)
    run.kill()
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if FINAL.match(n)], left
    stale = [n for n in left if n.endswith(".tmp")]
    assert len(stale) == 4, left  # train and val, two shards each: nothing else

    out_text = Run(args, tmp_path / "rerun.log").finish()
    for name in stale:
        assert f"removed {out / name}, a temporary file left by an interrupted run" in out_text
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    for ref in reference.iterdir():
        assert _normalized(out / ref.name, out) == _normalized(ref, reference), ref.name
