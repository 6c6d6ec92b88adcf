"""``tfmask tfrecord --runner beam``: Beam output equals the local converter's, record for record.

Beam's ``WriteToTFRecord`` spreads records over shards in no fixed order, so
records are compared per split as sorted lists of serialized bytes.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tfmask.data.convert import ConvertConfig, convert
from tfmask.errors import ConfigError, DataError
from tfmask.data.synth import synthesize
from tfmask.data.records.wire import masked_crc32c

pytest.importorskip("apache_beam")
from tfmask.data.convert_beam import convert_with_beam  # noqa: E402

MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
SHARDS = ["train-00000-of-00002", "train-00001-of-00002", "val-00000-of-00002",
          "val-00001-of-00002"]


def config(data_dir, out, **kw) -> ConvertConfig:
    kw = dict(dict(val_fraction=0.25, num_shards=2, write_coco_json=True, workers=1), **kw)
    return ConvertConfig(data_dir=str(data_dir), output_dir=str(out), progress=False, **kw)


def read_records(path: Path):
    """Serialized records of one TFRecord file, checking the framing CRCs."""
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        assert struct.unpack_from("<I", data, pos + 8)[0] == masked_crc32c(data[pos:pos + 8])
        record = data[pos + 12:pos + 12 + length]
        assert struct.unpack_from("<I", data, pos + 12 + length)[0] == masked_crc32c(record)
        out.append(record)
        pos += 16 + length
    return out


def split_records(out: Path, name: str):
    return sorted(r for p in sorted(out.glob(f"{name}-*")) for r in read_records(p))


def report_text(out: Path) -> str:
    return (out / "conversion_report.json").read_text().replace(str(out), "OUT")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("beam") / "data"
    synthesize(root, num_train=12, num_test=0, size_hw=(48, 64), seed=3)
    return root


def test_beam_output_equals_local_output(data_dir, tmp_path):
    for out in (tmp_path / "local", tmp_path / "beam"):
        out.mkdir()
        (out / "train-00000-of-00005").write_bytes(b"stale")
    convert(config(data_dir, tmp_path / "local"))
    report = convert_with_beam(config(data_dir, tmp_path / "beam"), MULTI_PROCESS)
    local, beam = tmp_path / "local", tmp_path / "beam"
    assert sorted(p.name for p in beam.iterdir()) == sorted(p.name for p in local.iterdir()) \
        == sorted(SHARDS + ["label_map.pbtxt", "conversion_report.json", "train_coco.json",
                            "val_coco.json"])
    for name in ("train", "val"):
        assert split_records(beam, name) == split_records(local, name)
        assert (beam / f"{name}_coco.json").read_bytes() == \
            (local / f"{name}_coco.json").read_bytes()
    assert (beam / "label_map.pbtxt").read_bytes() == (local / "label_map.pbtxt").read_bytes()
    assert report_text(beam) == report_text(local)
    assert report.images_per_split == {"train": 9, "val": 3}
    assert [p.kind for p in report.problems] == ["stale_shard_removed"]


@pytest.fixture
def broken(tmp_path) -> Path:
    """A copy of the dataset with two zero-byte JPEGs (image0004 first in input order)."""
    root = tmp_path / "data"
    synthesize(root, num_train=8, num_test=0, size_hw=(48, 64), seed=3)
    for stem in ("image0007", "image0004"):
        (root / "train_images" / f"{stem}.jpg").write_bytes(b"")
    return root


def test_invalid_image_stops_naming_the_first_and_leaves_nothing(broken, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError) as exc:
        convert_with_beam(config(broken, out))
    assert "image0004.jpg" in str(exc.value) and "empty (0 bytes)" in str(exc.value)
    assert list(out.iterdir()) == []  # no shards, no staging folder


def test_skip_invalid_lists_skipped_and_writes_the_rest(broken, tmp_path):
    local = convert(config(broken, tmp_path / "local", skip_invalid=True))
    report = convert_with_beam(config(broken, tmp_path / "beam", skip_invalid=True))
    assert [Path(s.split(":")[0]).name for s in report.skipped] == ["image0004.jpg",
                                                                     "image0007.jpg"]
    assert sum(report.images_per_split.values()) == 6
    assert report.images_per_split == local.images_per_split
    for name in ("train", "val"):
        assert split_records(tmp_path / "beam", name) == split_records(tmp_path / "local", name)
    assert not [p for p in (tmp_path / "beam").iterdir() if p.name.startswith(".")]


def _explode(item):
    raise RuntimeError("worker crashed")


def test_pipeline_failure_leaves_nothing(monkeypatch, data_dir, tmp_path):
    from tfmask.data import convert_beam

    original = convert_beam.plan_conversion

    def plan(cfg):
        result = original(cfg)
        result.convert_item = _explode
        return result

    monkeypatch.setattr(convert_beam, "plan_conversion", plan)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="worker crashed"):
        convert_with_beam(config(data_dir, out))
    assert list(out.iterdir()) == []


def test_missing_beam_is_a_config_error(monkeypatch, data_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    with pytest.raises(ConfigError, match=r"pip install 'tfmask\[beam\]'"):
        convert_with_beam(config(data_dir, tmp_path / "out"))


def test_cli_runner_beam(data_dir, tmp_path):
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "tfmask", "tfrecord", "--data-dir", str(data_dir),
         "--output-dir", str(out), "--runner", "beam", "--num-shards", "2", "--no-progress",
         "--beam-arg=--direct_num_workers=2", "--beam-arg=--direct_running_mode=in_memory"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "images written: train 10, val 2" in res.stdout
    assert sorted(p.name for p in out.glob("*-of-*")) == SHARDS
