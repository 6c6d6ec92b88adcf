"""No traceback for a user: known bad inputs give ``error: FILE: reason``, anything else one
``error:`` line naming the log file that holds the traceback; ``--debug`` prints it.

Corrupt record files (truncated, not a TFRecord, records that are not image examples)
are given to ``preview``, ``train`` and ``eval``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import make_dataset
from tfmask.cli import main
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.wire import write_record

TINY = Path(__file__).resolve().parents[2] / "configs" / "mask_rcnn_tiny_cpu.config"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Good records of the two-image conftest dataset, and corrupt variants of them."""
    root = tmp_path_factory.mktemp("errors")
    make_dataset(root / "data")
    good = root / "good"
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(good),
                          instance_mode="box", val_fraction=0.5, progress=False))
    data = (good / "train-00000-of-00001").read_bytes()
    bad = {"truncated": data[:len(data) // 2], "not_tfrecord": b"\x89PNG not a record" * 9}
    foreign = root / "foreign.tmp"
    with open(foreign, "wb") as f:
        write_record(f, b"\x0a\x00")  # an empty tf.train.Example: no image
    bad["foreign"] = foreign.read_bytes()
    folders = {}
    for kind, payload in bad.items():
        folder = root / kind
        folder.mkdir()
        (folder / "label_map.pbtxt").write_bytes((good / "label_map.pbtxt").read_bytes())
        (folder / "val-00000-of-00001").write_bytes(payload)
        folders[kind] = folder
    return good, folders


def _config(path: Path, train_records: Path, eval_records: Path) -> Path:
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(TINY)
    edit.point_at_records(msg, train_records)
    edit.set_num_classes(msg, 2)
    msg.set("eval_input_reader.tf_record_input_reader.input_path",
            str(eval_records / "val-?????-of-?????"))
    write_text_file(path, msg)
    return path


def _one_error_line(capsys, path: Path, *fragments):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in captured.out + captured.err


CORRUPT = [("truncated", "truncated record at record 0"),
           ("not_tfrecord", "not a valid TFRecord file"),
           ("foreign", "record 0 is not an image example")]


@pytest.mark.parametrize("kind,reason", CORRUPT)
def test_preview_of_a_corrupt_record_file(records, kind, reason, tmp_path, capsys):
    _, bad = records
    path = bad[kind] / "val-00000-of-00001"
    assert main(["preview", str(path), "--out", str(tmp_path / "out")]) == 1
    _one_error_line(capsys, path, reason)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind,reason", CORRUPT)
def test_eval_of_a_corrupt_record_file(records, kind, reason, tmp_path, capsys):
    _, bad = records
    path = bad[kind] / "val-00000-of-00001"
    dets = tmp_path / "d.json"
    dets.write_text("[]")
    assert main(["eval", "--gt", str(path), "--detections", str(dets),
                 "--output", str(tmp_path / "out")]) == 1
    _one_error_line(capsys, path, reason)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("which", ["train", "eval"])
def test_train_stops_on_a_corrupt_record_file_before_the_first_step(records, which,
                                                                    tmp_path, capsys):
    good, bad = records
    folder = tmp_path / "records"
    shutil.copytree(good, folder)
    name = "train" if which == "train" else "val"
    (folder / f"{name}-00000-of-00001").write_bytes(
        (bad["truncated"] / "val-00000-of-00001").read_bytes())
    config = _config(tmp_path / "pipeline.config", folder, folder)
    model_dir = tmp_path / "model"
    assert main(["train", "--pipeline_config_path", str(config), "--model_dir",
                 str(model_dir), "--num_train_steps", "1"]) == 1
    _one_error_line(capsys, folder / f"{name}-00000-of-00001", "truncated record")
    assert not model_dir.exists()


def _boom(*args, **kwargs):
    raise RuntimeError("boom: something nobody expected\nsecond line")


def test_unexpected_error_is_one_line_naming_the_log(records, tmp_path, monkeypatch, capsys):
    import tfmask.data.preview

    good, _ = records
    monkeypatch.setattr(tfmask.data.preview, "preview_records", _boom)
    out = tmp_path / "out"
    out.mkdir()  # the log goes into the output folder when it exists
    assert main(["preview", str(good / "val-*"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    log = out / "tfmask-preview.log"
    assert err == [f"error: tfmask preview failed with an unexpected RuntimeError: boom: "
                   f"something nobody expected (full traceback in {log}; run with --debug "
                   "(or TFMASK_DEBUG=1) to print it)"]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "second line" in text
    assert "tfmask preview" in text.splitlines()[0]

    # Without an output folder the log stays in the temporary folder, still named.
    assert main(["preview", str(good / "val-*"), "--out", str(tmp_path / "new")]) == 1
    line, = capsys.readouterr().err.strip().splitlines()
    temp_log = Path(line.split("full traceback in ")[1].split(";")[0])
    assert temp_log.parent == Path(tempfile.gettempdir())
    assert "RuntimeError: boom" in temp_log.read_text()
    temp_log.unlink()
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("how", ["flag_before", "flag_after", "env"])
def test_debug_prints_the_traceback(records, tmp_path, monkeypatch, capsys, how):
    import tfmask.data.preview

    good, _ = records
    monkeypatch.setattr(tfmask.data.preview, "preview_records", _boom)
    argv = ["preview", str(good / "val-*"), "--out", str(tmp_path)]
    if how == "flag_before":
        argv = ["--debug"] + argv
    elif how == "flag_after":
        argv = argv + ["--debug"]
    else:
        monkeypatch.setenv("TFMASK_DEBUG", "1")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_boom" in err
    assert err.strip().splitlines()[-1].startswith("error: tfmask preview failed with an "
                                                   "unexpected RuntimeError")


def test_a_known_error_writes_no_log(records, tmp_path, capsys):
    before = set(Path(tempfile.gettempdir()).glob("tfmask-preview-*.log"))
    assert main(["preview", str(tmp_path / "missing-*"), "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'missing-*'}: ")
    assert set(Path(tempfile.gettempdir()).glob("tfmask-preview-*.log")) == before
    assert not (tmp_path / "o").exists()


def test_a_crashing_command_prints_one_line_in_a_real_process(records, tmp_path):
    """Streams at the file-descriptor level: exactly one stderr line, nothing on stdout."""
    good, _ = records
    code = ("import sys, tfmask.data.preview as p\n"
            "def boom(*a, **k):\n    raise KeyError('no such thing')\n"
            "p.preview_records = boom\n"
            "from tfmask.cli import main\n"
            f"sys.exit(main(['preview', {str(good / 'val-*')!r}, '--out', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == ""
    log = tmp_path / "tfmask-preview.log"
    assert proc.stderr.splitlines() == [
        f"error: tfmask preview failed with an unexpected KeyError: 'no such thing' (full "
        f"traceback in {log}; run with --debug (or TFMASK_DEBUG=1) to print it)"]
    assert "KeyError: 'no such thing'" in log.read_text()
