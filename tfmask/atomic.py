"""Atomic file output: write to a temporary name, rename when complete.

A reader never sees a half-written file under its final name, even if the
writer is killed: the temporary file sits beside the target (same file
system, so :func:`os.replace` is atomic) and is removed on error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

from tfmask.errors import PathLike


def chmod_like_new_file(path: PathLike) -> None:
    """Gives a mkstemp file (mode 0600) the mode ``open()`` would: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it to ``path`` on success.

    The temporary name starts with ``.`` and ends with ``.tmp`` so that globs
    such as ``train-*`` never match it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    chmod_like_new_file(tmp_path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write(path: PathLike, data: Union[bytes, str]) -> None:
    """Writes ``data`` (bytes, or str as UTF-8) to ``path`` atomically."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
