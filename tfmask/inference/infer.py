"""Run an exported model on a folder of images: overlays, COCO results, masks.

The library behind ``tfmask infer``::

    tfmask infer --export-dir exported/tiny --images dataset/test_images --output out/infer

For each image (sorted by path) it writes ``OUT/overlays/<stem>.png`` (masks,
boxes, class names and scores drawn on the image, same size as the image),
optionally ``OUT/masks/<stem>_<k>_<class>.png`` (one 0/255 PNG per instance,
k = 0, 1, ... in score order, zero-padded
to the same width within an image), and at the end one ``OUT/detections.json`` in
COCO results format: a list of ``{image_id, file_name, category_id, bbox,
score, segmentation}`` with ``bbox`` ``[x, y, width, height]`` in pixels (pixel
edges, top-left origin), ``segmentation`` a compressed RLE with str counts,
``image_id`` 1..N in the sorted order and ``file_name`` the image's file name,
so an evaluator can match results to ground truth by name. Every file is
written atomically.
"""

from __future__ import annotations

import glob
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from tfmask.errors import ConfigError, DataError, PathLike
from tfmask.data.images import IMAGE_EXTENSIONS, find_images

DETECTIONS_NAME = "detections.json"


@dataclass
class InferSummary:
    """What ``infer`` did.

    Attributes:
      images / detections: counts (detections scoring >= min_score).
      seconds: the whole run; load_seconds: loading the SavedModel.
      output_dir / detections_json / overlays_dir / masks_dir: where things are
        (``masks_dir`` is None without instance masks).
      ignored: files the glob or folder held that are not JPEG/PNG images.
    """

    images: int
    detections: int
    seconds: float
    load_seconds: float
    output_dir: str
    detections_json: str
    overlays_dir: str
    masks_dir: Optional[str] = None
    ignored: List[str] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        """Images per second, model loading excluded."""
        busy = self.seconds - self.load_seconds
        return self.images / busy if busy > 0 else float("inf")


def list_images(images: PathLike) -> Tuple[List[Path], List[Path]]:
    """(images, ignored): a folder's JPEG/PNG files, a glob's, or one file; sorted.

    Raises:
      DataError: nothing matches, or two images share a file stem (their
        outputs would overwrite each other).
    """
    text = str(images)
    path = Path(text)
    if path.is_dir():
        found, ignored = find_images(path)
    elif path.is_file():
        found, ignored = [path], []
    elif glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        found = [p for p in matches if p.suffix.lower() in IMAGE_EXTENSIONS]
        ignored = [p for p in matches if p not in found]
    else:
        raise DataError(text, "no such image, folder or glob match", kind="missing_file")
    if not found:
        raise DataError(text, f"no images found (extensions: {', '.join(IMAGE_EXTENSIONS)})",
                        kind="missing_file")
    stems = {}
    for p in found:
        if p.stem in stems:
            raise DataError(p, f"has the same name stem as {stems[p.stem]}; outputs are named "
                            "after the stem, so rename one of them", kind="duplicate")
        stems[p.stem] = p
    return found, ignored


def _safe(name: str) -> str:
    """A class name usable in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "class"


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    from tfmask.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def coco_results(image_id: int, file_name: str, det) -> List[dict]:
    """COCO result dicts of one image's :class:`~tfmask.inference.predictor.Detections`."""
    from tfmask.boxes import coco_bbox
    from tfmask.data.coco import encode_rle

    out = []
    for box, cid, score, mask in zip(det.boxes_xyxy_px, det.class_ids, det.scores, det.masks):
        out.append({"image_id": int(image_id), "file_name": file_name,
                    "category_id": int(cid), "bbox": coco_bbox(box, decimals=3),
                    "score": round(float(score), 5), "segmentation": encode_rle(mask)})
    return out


def infer(export_dir: PathLike, images: PathLike, output_dir: PathLike, min_score: float = 0.5,
          batch_size: int = 1, instance_masks: bool = False,
          progress: bool = True) -> InferSummary:
    """Runs the exported model in ``export_dir`` on ``images`` (see module docstring).

    Args:
      export_dir: a ``tfmask export`` folder (``image_tensor`` input).
      images: a folder (its JPEG/PNG files), a glob (quote it in a shell) or one file.
      output_dir: created if missing; existing files of the same names are replaced.
      min_score: detections below it are dropped everywhere.
      batch_size: images per model call (same-size images share a call).
      instance_masks: also write one PNG per instance.
      progress: show a progress bar (when stderr is a terminal).

    Raises:
      DataError: no images, an unreadable image (named), a bad export folder.
      ConfigError: bad ``min_score`` / ``batch_size``, or an export of another input type.
    """
    from tqdm import tqdm

    from tfmask.atomic import atomic_write
    from tfmask.inference.predictor import Predictor, read_image

    out = Path(output_dir)
    _check_arguments(min_score, batch_size, out)
    start = time.perf_counter()
    paths, ignored = list_images(images)
    predictor = Predictor(export_dir, min_score=min_score)
    load_s = time.perf_counter() - start
    results: List[dict] = []
    with tqdm(total=len(paths), unit="img", desc="infer",
              disable=None if progress else True) as bar:
        for first in range(0, len(paths), batch_size):
            chunk = paths[first:first + batch_size]
            arrays = [read_image(p) for p in chunk]
            for offset, (path, image, det) in enumerate(
                    zip(chunk, arrays, predictor.predict_batch(arrays))):
                results.extend(coco_results(first + offset + 1, path.name, det))
                _write_image_outputs(out, path.stem, image, det, instance_masks)
            bar.update(len(chunk))
    atomic_write(out / DETECTIONS_NAME, json.dumps(results))
    return InferSummary(
        images=len(paths), detections=len(results), seconds=time.perf_counter() - start,
        load_seconds=load_s, output_dir=str(out), detections_json=str(out / DETECTIONS_NAME),
        overlays_dir=str(out / "overlays"),
        masks_dir=str(out / "masks") if instance_masks else None,
        ignored=[str(p) for p in ignored])


def _check_arguments(min_score: float, batch_size: int, out: Path) -> None:
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"min_score must be in [0, 1], got {min_score}",
                          params=("min_score",))
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}", params=("batch_size",))
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {out} is a file; give a folder", params=("output_dir",))


def _write_image_outputs(out: Path, stem: str, image: np.ndarray, det,
                         instance_masks: bool) -> None:
    """``OUT/overlays/<stem>.png`` and, with ``instance_masks``, one PNG per instance."""
    from tfmask.draw import overlay

    _save_png(out / "overlays" / f"{stem}.png",
              overlay(image, det.masks, det.boxes_xyxy_px, det.class_names, scores=det.scores))
    if instance_masks:
        digits = len(str(max(len(det) - 1, 0)))  # names sort in score order
        for k, (mask, name) in enumerate(zip(det.masks, det.class_names)):
            _save_png(out / "masks" / f"{stem}_{k:0{digits}d}_{_safe(name)}.png",
                      mask.astype(np.uint8) * 255)
