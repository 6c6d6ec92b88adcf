"""Ground-truth previews: draw every record's instances into a PNG per image.

The library behind ``tfmask preview``. It reads records with tfmask's own
reader (:func:`tfmask.data.records.reader.read_examples`), so what it shows is what the
records hold: decoded image, instance masks, boxes and class names.

Example::

    from tfmask.data.preview import preview_records
    paths = preview_records("dataset/records/*-of-*", "dataset/preview", limit=20)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Set, Union

import numpy as np
from PIL import Image

from tfmask.atomic import atomic_path
from tfmask.draw import overlay
from tfmask.errors import DataError, PathLike
from tfmask.data.records.reader import DecodedExample, read_examples
from tfmask.data.records.scan import scan_records


def example_labels(example: DecodedExample) -> List[str]:
    """One label per instance: the class name (the id if the record has no
    names), marked ``crowd`` for COCO crowd regions."""
    labels = []
    for k, class_id in enumerate(example.class_ids):
        name = example.class_names[k] if k < len(example.class_names) else f"id {class_id}"
        crowd = k < len(example.is_crowd) and bool(example.is_crowd[k])
        labels.append(name + (" (crowd)" if crowd else ""))
    return labels


def draw_example(example: DecodedExample) -> np.ndarray:
    """[H, W, 3] uint8: the example's image with its ground truth drawn on it.

    Raises:
      DataError: the image does not decode, or its size differs from the
        record's height/width or from the masks.
    """
    where = f"{example.filename} (source_id {example.source_id})"
    try:
        image = example.image()
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(where, f"image/encoded does not decode: {exc}",
                        kind="unreadable") from None
    if image.shape[:2] != tuple(example.size_hw) or example.masks.shape[1:] != image.shape[:2]:
        raise DataError(where, f"decoded image is {image.shape[1]}x{image.shape[0]} but the "
                        f"record says {example.size_hw[1]}x{example.size_hw[0]} and its "
                        f"masks are {example.masks.shape[2]}x{example.masks.shape[1]}",
                        kind="size_mismatch")
    return overlay(image, example.masks, example.boxes_xyxy_px, example_labels(example))


def preview_name(example: DecodedExample, used: Set[str]) -> str:
    """A file name for the example's preview not yet in ``used`` (which it joins).

    The image's stem, e.g. ``a.png`` for ``a.jpg``; a later example with the
    same stem gets its source id added (``a_7.png``), then a counter.
    """
    stem = Path(example.filename.replace("\\", "/")).stem or "image"
    candidates = [f"{stem}.png", f"{stem}_{example.source_id}.png"]
    name = next((c for c in candidates if c not in used), None)
    k = 2
    while name is None:
        if f"{stem}_{example.source_id}_{k}.png" not in used:
            name = f"{stem}_{example.source_id}_{k}.png"
        k += 1
    used.add(name)
    return name


def preview_records(patterns: Union[PathLike, Iterable[PathLike]], out_dir: PathLike,
                    limit: Optional[int] = None, progress: bool = False) -> List[Path]:
    """Writes ``OUT_DIR/<image stem>.png`` with the ground truth of each example.

    Args:
      patterns: record files: a glob, a comma-separated list, or a list of them.
      out_dir: created if missing; each PNG is written atomically.
      limit: stop after this many examples (None: all).
      progress: show a progress bar on stderr (when it is a terminal).

    Returns:
      The written paths, in record order.

    Raises:
      DataError: no file matches a pattern, a file is not a TFRecord of
        examples, or an example's image does not decode or fit its masks.
    """
    from tqdm import tqdm

    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    out_dir = Path(out_dir)
    written: List[Path] = []
    used: Set[str] = set()
    if limit == 0:
        return written
    scan_records(patterns)  # a corrupt or foreign file stops the run before any PNG is written
    examples = read_examples(patterns)
    for example in tqdm(examples, total=limit, unit="img", desc="preview",
                        disable=None if progress else True):
        picture = draw_example(example)
        path = out_dir / preview_name(example, used)
        with atomic_path(path) as tmp:
            Image.fromarray(picture).save(tmp, format="PNG")
        written.append(path)
        if limit is not None and len(written) >= limit:
            break
    return written
