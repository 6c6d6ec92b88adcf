"""Atomic file output: write to a temporary name, rename when complete.

A reader never sees a half-written file under its final name, even if the
writer is killed: the temporary file sits beside the target (same file
system, so :func:`os.replace` is atomic) and is removed on error.

A writer killed with SIGKILL cannot remove its temporary file. Each one is
therefore held under an advisory lock (``flock``) while it is written, which
the kernel releases when the process dies: :func:`remove_stale_temps` deletes
the temporary files nobody holds any more, and leaves a live writer's alone.

:func:`atomic_dir` and :func:`replace_dir` do for a folder (an export) what
:func:`atomic_path` does for a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Union

from tfmask.errors import PathLike

_log = logging.getLogger(__name__)
# tempfile.mkstemp's random part: 8 characters of [a-z0-9_].
_TEMP_TAG = r"\.[a-z0-9_]{8}\.tmp"


def chmod_like_new_file(path: PathLike) -> None:
    """Gives a mkstemp file (mode 0600) the mode ``open()`` would: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it to ``path`` on success.

    The temporary name (``.NAME.XXXXXXXX.tmp``) starts with ``.`` and ends with
    ``.tmp`` so that globs such as ``train-*`` never match it. It stays locked
    (see the module docstring) until it is renamed or removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp_path = Path(tmp)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        chmod_like_new_file(tmp_path)
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        os.close(fd)  # releases the lock, after the rename or removal


def remove_stale_temps(folder: PathLike, name_regex: str) -> List[Path]:
    """Deletes the temporary files of killed writers for targets matching ``name_regex``.

    Args:
      folder: where the targets (and their temporary files) are.
      name_regex: a regex matching the whole target name, e.g.
        ``re.escape("train") + r"-\\d{5}-of-\\d{5}"`` for every shard of ``train``.

    Returns:
      The removed files. Temporary files whose writer is still running (their
      lock is held) are left alone, so a concurrent writer never loses its file.
    """
    pattern = re.compile(r"\." + name_regex + _TEMP_TAG + "$")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not pattern.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:  # renamed or removed by its writer meanwhile, or not ours
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live writer holds it
            os.close(fd)
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return sorted(removed)


def atomic_write(path: PathLike, data: Union[bytes, str]) -> None:
    """Writes ``data`` (bytes, or str as UTF-8) to ``path`` atomically."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swaps the names ``a`` and ``b`` in one step (Linux ``renameat2``).

    Returns False where that is not available (another OS, an old C library,
    kernel or file system); raises OSError on other failures.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(new: PathLike, out: PathLike) -> None:
    """Puts the complete folder ``new`` at ``out`` (same file system); the old ``out`` goes.

    An existing ``out`` is swapped with ``new`` in one step where the system
    allows it, so ``out`` names a complete folder at every moment, even if the
    process is killed; the old folder is deleted afterwards (under ``new``'s
    name). Elsewhere ``out`` is first moved aside to ``.OUT.old-XXXX``: a kill
    between the two renames leaves no ``out``, and the next call for ``out``
    moves that folder back before anything else.
    """
    new, out = Path(new), Path(out)
    restore_aside_dir(out)
    if not os.path.lexists(out):
        os.rename(new, out)
        return
    if _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(aside)
    os.rename(out, aside)
    try:
        os.rename(new, out)
    except OSError:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def restore_aside_dir(out: PathLike) -> bool:
    """Moves back a folder :func:`replace_dir` had moved aside when it was killed.

    Only when ``out`` is missing and exactly one such folder exists (with
    several, which one is whole is unknown: they are left for a person).
    Returns True when one was moved back.
    """
    out = Path(out)
    if os.path.lexists(out):
        return False
    pattern = re.compile(r"\." + re.escape(out.name) + r"\.old-[a-z0-9_]{8}$")
    try:
        asides = [e.path for e in os.scandir(out.parent)
                  if pattern.match(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return False
    if len(asides) != 1:
        return False
    os.rename(asides[0], out)
    return True


@contextlib.contextmanager
def atomic_dir(out: PathLike) -> Iterator[Path]:
    """Yields an empty folder beside ``out``; puts it at ``out`` on success (:func:`replace_dir`).

    The folder (``.OUT.tmp-XXXXXXXX``, mode as ``mkdir`` gives) is removed on an
    exception, and locked while it is built: build folders left by killed
    writers for the same ``out`` are removed on entry, and a folder moved
    aside by a killed swap is put back (see :func:`restore_aside_dir`).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    restore_aside_dir(out)
    for stale in remove_stale_temp_dirs(out):
        _log.warning("removed %s, a folder left by an interrupted run", stale)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 -> what mkdir would give
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
        replace_dir(tmp, out)
    finally:
        os.close(fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temp_dirs(out: PathLike) -> List[Path]:
    """Deletes the build folders of :func:`atomic_dir` calls for ``out`` that were killed.

    Folders whose writer is still running (their lock is held) are kept.
    """
    out = Path(out)
    pattern = re.compile(r"\." + re.escape(out.name) + r"\.tmp-[a-z0-9_]{8}$")
    try:
        entries = [e for e in os.scandir(out.parent)
                   if pattern.match(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
        except BlockingIOError:  # a live writer holds it
            pass
        finally:
            os.close(fd)
    return sorted(removed)
