"""Clean-up after a training run killed while it was saving a checkpoint.

TensorFlow saves a checkpoint in steps that keep the latest one whole
whatever moment the process dies: the tensors go to ``ckpt-N_temp/``, are
merged into ``ckpt-N.data-*`` + ``ckpt-N.index``, and only then is the
``checkpoint`` state file (the latest pointer) replaced atomically. A SIGKILL
part-way leaves debris that no later save removes: ``ckpt-N_temp/`` holding a
partial data file as large as the model (the next successful merge deletes
the folder only when it is empty), and ``checkpoint.tmp<hex>`` files.

Call :func:`remove_interrupted_saves` on the chief's model dir when training
starts, before the first save (no other process saves there then).

    from tfmask.training.ckpt_safety import remove_interrupted_saves
    for path in remove_interrupted_saves(model_dir):
        say(f"removed {path}, left by a run killed while saving a checkpoint")
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import List

from tfmask.errors import PathLike

_DEBRIS = re.compile(r"(ckpt-\d+_temp|checkpoint\.tmp[0-9a-f]{32})$")


def remove_interrupted_saves(model_dir: PathLike) -> List[Path]:
    """Deletes the staging folders and state-file temporaries of interrupted saves.

    Complete checkpoints, including ones the state file does not list yet, are
    kept: later saves at the same steps overwrite them.

    Returns:
      The removed paths, sorted.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    removed = []
    for path in model_dir.iterdir():
        if not _DEBRIS.match(path.name):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return sorted(removed)
