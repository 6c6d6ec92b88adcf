"""SIGKILL during ``tfmask export`` into a folder holding a good export: after each kill the
folder still holds that export, whole and working; a completed export then replaces it."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from crashlib import Run, export_testlib

# Runs `tfmask export`, pausing once the old export has been renamed away from OUT
# (OUT being argv[1]), so that a SIGKILL lands between that rename and the next.
PAUSE_AFTER_OUT_MOVED = """
import os, sys, time
out, argv = os.path.abspath(sys.argv[1]), sys.argv[2:]
rename = os.rename
def rename_then_pause(src, dst):
    rename(src, dst)
    if os.path.abspath(os.fspath(src)) == out:
        time.sleep(600)
os.rename = rename_then_pause
from tfmask.cli import main
sys.exit(main(argv))
"""


def _digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _outputs(export_dir: Path, image: np.ndarray) -> dict:
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_dir / "saved_model")).signatures["serving_default"]
    return {k: v.numpy() for k, v in serve(input_tensor=tf.constant(image[None])).items()}


def assert_same_export(out: Path, good: Path, image, want) -> None:
    assert out.is_dir(), f"{out} is missing; beside it: {os.listdir(out.parent)}"
    assert _digest(out) == _digest(good)
    got = _outputs(out, image)
    assert set(got) == set(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_kills_never_break_the_export_in_place(tmp_path_factory, tmp_path):
    lib = export_testlib()
    good, _ = lib.exported(tmp_path_factory)
    config = lib.dataset(tmp_path_factory) / "pipeline.config"
    trained = lib.trained(tmp_path_factory)
    image = lib.synth_image(tmp_path_factory)
    want = _outputs(good, image)
    out = tmp_path / "out"
    shutil.copytree(good, out)
    args = ["export", "--pipeline_config_path", config, "--trained_checkpoint_dir", trained,
            "--output_directory", out]

    def new_build_dirs(before=()):  # whatever its name: a new folder beside OUT
        return [p for p in tmp_path.iterdir() if p.is_dir() and p != out and p not in before
                and not p.name.startswith(".out.old-")]

    # 1. As soon as the new export's folder appears beside OUT.
    run = Run(args, tmp_path / "kill1.log")
    run.wait_until(new_build_dirs)
    run.kill()
    assert_same_export(out, good, image, want)

    # 2. Later: SavedModel and checkpoint written, the reloaded model being checked.
    before = new_build_dirs()
    run = Run(args, tmp_path / "kill2.log")
    run.wait_until(lambda: [d for d in new_build_dirs(before)
                            if (d / "label_map.pbtxt").exists()])
    run.kill()
    assert_same_export(out, good, image, want)

    # 3. At the swap itself: the new export complete, the old one on its way out.
    run = Run([out, *args], tmp_path / "kill3.log", python_code=PAUSE_AFTER_OUT_MOVED)
    run.wait_until(lambda: list(tmp_path.glob(".out.old-*")) or run.proc.poll() is not None)
    run.kill()
    # Linux swaps the two folders in one renameat2(RENAME_EXCHANGE): OUT never goes
    # missing and the paused rename is never reached, so the export completes.
    assert out.exists(), "a kill during the swap left no OUT"
    assert not list(tmp_path.glob(".out.old-*"))
    assert (out / "saved_model" / "saved_model.pb").is_file()
    np.testing.assert_equal(sorted(_outputs(out, image)), sorted(want))

    # 4. A completed export replaces the folder, and leaves nothing else beside it.
    from tfmask.export.exporter import export_model

    inode = out.stat().st_ino
    export_model(config, trained, out)
    assert out.stat().st_ino != inode
    got = _outputs(out, image)
    for name, value in want.items():  # the same checkpoint, exported again
        np.testing.assert_allclose(got[name], value, atol=1e-5, err_msg=name)
    debris = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out.", ".out.")))
    assert debris == [], f"build folders of killed exports left beside OUT: {debris}"
