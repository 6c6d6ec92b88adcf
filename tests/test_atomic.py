"""Atomic output: stale temporary files of killed writers are removed, live ones kept."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tfmask import atomic
from tfmask.atomic import atomic_dir, atomic_path, atomic_write, remove_stale_temps
from tfmask.data.records.writer import ShardedWriter

SHARDS = re.escape("train") + r"-\d{5}-of-\d{5}"


def _orphan_temp(path):
    """A temporary file of ``path`` whose writer was killed (SIGKILL in a child)."""
    code = ("import os, sys\nfrom tfmask.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'partial')\n    os._exit(0)\n")  # exits without cleaning up
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    (tmp,) = path.parent.glob(f".{path.name}.*.tmp")
    return tmp


def test_atomic_write_leaves_only_the_target(tmp_path):
    atomic_write(tmp_path / "a.txt", "hello")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_stale_temps_of_matching_names_only_are_removed(tmp_path):
    stale = [_orphan_temp(tmp_path / "train-00000-of-00002"),
             _orphan_temp(tmp_path / "train-00003-of-00004")]  # another shard count
    others = [_orphan_temp(tmp_path / "val-00000-of-00002"),
              _orphan_temp(tmp_path / "train-00000-of-00002.bak")]
    (tmp_path / "train-00000-of-00002.x.tmp").write_text("not ours")
    assert remove_stale_temps(tmp_path, SHARDS) == sorted(stale)
    assert all(p.exists() for p in others)
    assert (tmp_path / "train-00000-of-00002.x.tmp").exists()
    assert remove_stale_temps(tmp_path / "missing", SHARDS) == []


def test_a_live_writers_temp_file_is_kept(tmp_path):
    with atomic_path(tmp_path / "train-00000-of-00001") as tmp:
        tmp.write_bytes(b"in progress")
        assert remove_stale_temps(tmp_path, SHARDS) == []
        assert tmp.exists()
    assert (tmp_path / "train-00000-of-00001").read_bytes() == b"in progress"


def test_sharded_writer_removes_and_lists_stale_temps(tmp_path, caplog):
    stale = _orphan_temp(tmp_path / "train-00001-of-00002")
    with ShardedWriter(tmp_path / "train", 2) as writer:
        writer.write(b"x")
    assert writer.stale_temps_removed == [stale] and not stale.exists()
    assert f"removed {stale}" in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["train-00000-of-00002", "train-00001-of-00002"]


def _tree(root):
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two_renames"])
def test_replace_dir_swaps_in_the_new_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out, new = tmp_path / "out", tmp_path / "out.tmp-1"
    (out / "saved_model").mkdir(parents=True)
    (out / "saved_model" / "saved_model.pb").write_text("old")
    (new / "saved_model").mkdir(parents=True)
    (new / "saved_model" / "saved_model.pb").write_text("new")
    atomic.replace_dir(new, out)
    assert _tree(out) == {"saved_model/saved_model.pb": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    fresh = tmp_path / "other"
    (fresh / "f").parent.mkdir()
    (fresh / "f").write_text("x")
    atomic.replace_dir(fresh, tmp_path / "first")  # no folder there yet
    assert _tree(tmp_path / "first") == {"f": "x"}


def test_replace_dir_restores_a_folder_moved_aside_by_a_killed_call(tmp_path):
    (tmp_path / ".out.old-abcd1234").mkdir()  # a kill between the two renames left this
    (tmp_path / ".out.old-abcd1234" / "f").write_text("good")
    assert atomic.restore_aside_dir(tmp_path / "out")
    assert _tree(tmp_path / "out") == {"f": "good"}
    assert not atomic.restore_aside_dir(tmp_path / "out")  # out exists: nothing to do
    new = tmp_path / "new"
    new.mkdir()
    (tmp_path / "out").rename(tmp_path / ".out.old-abcd1234")
    atomic.replace_dir(new, tmp_path / "out")  # restores first, then replaces
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _killed_atomic_dir(out):
    """The build folder of an atomic_dir whose process died (os._exit in a child)."""
    code = ("import os, sys\nfrom tfmask.atomic import atomic_dir\n"
            "with atomic_dir(sys.argv[1]) as tmp:\n"
            "    (tmp / 'saved_model.pb').write_bytes(b'partial')\n    os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=60)
    (tmp,) = out.parent.glob(f".{out.name}.tmp-*")
    return tmp


def test_atomic_dir_builds_beside_and_swaps_in(tmp_path):
    out = tmp_path / "export"
    (out / "old").parent.mkdir()
    (out / "old").write_text("old")
    stale = _killed_atomic_dir(out)
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "new").write_text("new")
            raise RuntimeError("verification failed")
    assert not stale.exists()  # removed on entry
    assert _tree(out) == {"old": "old"} and [p.name for p in tmp_path.iterdir()] == ["export"]
    with atomic_dir(out) as tmp:
        assert oct(tmp.stat().st_mode & 0o777) == oct(out.stat().st_mode & 0o777)
        (tmp / "new").write_text("new")
        with atomic_dir(out):  # a concurrent writer keeps this one's folder
            assert tmp.is_dir()
    assert _tree(out) == {"new": "new"} and [p.name for p in tmp_path.iterdir()] == ["export"]
