"""``tfmask tfrecord`` and the tutorial's create_mask_rcnn_tf_record.py, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_dataset
from tfmask.cli.legacy_tfrecord import main as legacy_main
from tfmask.cli.tfrecord import instance_mode
from tfmask.data.convert import ConvertConfig, default_workers
from tfmask.errors import ConfigError
from tfmask.data.records.reader import read_examples

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tfmask", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_tfrecord_command_writes_split_records(tmp_path):
    ds = make_dataset(tmp_path / "d")
    res = run_cli("tfrecord", "--data-dir", str(ds.root), "--instance-mode", "components",
                  "--val-fraction", "0.5", "--coco-json-out", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "images written: train 1, val 1" in res.stdout
    out = ds.root / "records"
    assert {p.name for p in out.iterdir()} == {
        "train-00000-of-00001", "val-00000-of-00001", "label_map.pbtxt", "train_coco.json",
        "val_coco.json", "conversion_report.json"}


def test_tfrecord_command_bad_input_is_one_line_and_exit_1(tmp_path):
    ds = make_dataset(tmp_path / "d")
    (ds.root / "train_masks" / "b.png").unlink()
    res = run_cli("tfrecord", "--data-dir", str(ds.root), "--no-progress")
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "b.jpg: no mask" in lines[0]
    assert "Traceback" not in res.stderr
    assert not (ds.root / "records").exists() or not list((ds.root / "records").glob("train*"))


def test_legacy_script_requires_bboxes_provided(tmp_path, capsys):
    ds = make_dataset(tmp_path / "d")
    assert legacy_main([f"--data_dir_path={ds.root}"]) == 2
    assert "Please set bboxes_provided flag to True or False" in capsys.readouterr().err
    assert not list(ds.root.glob("train_data*"))


@pytest.mark.parametrize("flag,names", [
    ("--bboxes_provided=False", ["speaker", "cup"]),  # one instance per class
    ("--bboxes_provided=True", ["speaker", "speaker", "cup"]),  # one per XML object
])
def test_legacy_script_default_names_and_modes(tmp_path, flag, names):
    ds = make_dataset(tmp_path / "d")
    assert legacy_main([f"--data_dir_path={ds.root}", flag]) == 0
    out = ds.root / "train_data-00000-of-00001"
    assert out.exists() and (ds.root / "label_map.pbtxt").exists()
    by_name = {e.filename: e for e in read_examples(str(out))}
    assert list(by_name["a.jpg"].class_names) == names


def test_legacy_script_file_runs_as_the_tutorial_ran_it(tmp_path):
    ds = make_dataset(tmp_path / "d")
    res = subprocess.run([sys.executable, str(ROOT / "dataset_tools" /
                                              "create_mask_rcnn_tf_record.py"),
                          f"--data_dir_path={ds.root}", "--bboxes_provided=True",
                          "--num_shards=2", "--tfrecord_filename=mine"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in ds.root.glob("mine-*")) == ["mine-00000-of-00002",
                                                              "mine-00001-of-00002"]


def test_instance_mode_flags_must_agree():
    assert instance_mode(None, None) == "class"
    assert instance_mode(None, True) == "box"
    assert instance_mode("components", False) == "components"
    with pytest.raises(ConfigError, match="contradicts"):
        instance_mode("class", True)


def test_workers_default_to_the_cpus_this_process_may_use():
    from tfmask.cli import build_parser
    from tfmask.cli.legacy_tfrecord import build_parser as legacy_parser

    cpus = len(os.sched_getaffinity(0))
    assert default_workers() == cpus
    # The flags leave the default to the library, which resolves it once.
    assert legacy_parser().parse_args(["--bboxes_provided=False"]).workers is None
    assert build_parser().parse_args(["tfrecord", "--data-dir", "d"]).workers is None
    assert ConvertConfig(data_dir="d", output_dir="o").workers == cpus
    assert ConvertConfig(data_dir="d", output_dir="o", workers=None).workers == cpus
    assert legacy_parser().parse_args(["--bboxes_provided=False", "--workers=1"]).workers == 1


def test_val_fraction_default_is_the_library_default():
    from tfmask.cli import build_parser
    from tfmask.data.convert import DEFAULT_VAL_FRACTION

    assert build_parser().parse_args(["tfrecord", "--data-dir", "d"]).val_fraction is None
    assert ConvertConfig(data_dir="d", output_dir="o").val_fraction == DEFAULT_VAL_FRACTION == 0.2
    assert ConvertConfig(yolo_data="y.yaml", output_dir="o").val_fraction == 0.0
    assert ConvertConfig(data_dir="d", output_dir="o", val_fraction=0.0).val_fraction == 0.0


def test_legacy_script_default_workers_write_the_one_worker_bytes(tmp_path, monkeypatch):
    # Three CPUs even on a 1-CPU machine, so the default really runs a process pool.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    outputs = {}
    for name, extra in (("default", []), ("one", ["--workers=1"])):
        ds = make_dataset(tmp_path / name)
        assert legacy_main([f"--data_dir_path={ds.root}", "--bboxes_provided=True",
                            "--num_shards=2", *extra]) == 0
        outputs[name] = {p.name: p.read_bytes() for p in ds.root.glob("train_data-*")}
    assert len(outputs["one"]) == 2 and outputs["default"] == outputs["one"]
