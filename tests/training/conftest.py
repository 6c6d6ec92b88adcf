"""A small synthesized record set and tiny pipeline.config for training tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "mask_rcnn_tiny_cpu.config"


def write_config(path: Path, records: Path, **replace) -> Path:
    """The shipped tiny config, pointed at ``records``, with text replacements.

    ``replace`` maps a regex to its replacement (applied in order).
    """
    text = TINY.read_text()
    text = text.replace("../dataset/records", str(records))
    for pattern, repl in replace.items():
        text, n = re.subn(pattern, repl, text)
        assert n, f"pattern {pattern!r} not found in the tiny config"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory) -> Path:
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import synthesize

    root = tmp_path_factory.mktemp("tiny")
    synthesize(root / "data", num_train=12, num_test=0, size_hw=(96, 128), seed=1,
               min_objects=1, max_objects=3)
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "records"),
                          instance_mode="box", val_fraction=0.25, progress=False))
    return root / "records"
