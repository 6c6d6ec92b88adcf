"""The converter behind ``tfmask tfrecord`` and ``create_mask_rcnn_tf_record.py``.

Reads a source (tutorial folders or COCO JSON), converts every image (in
parallel with ``workers > 1``, results kept in input order so the output is
byte-identical whatever the worker count), splits train/val
deterministically, writes sharded TFRecords atomically, a clean
``label_map.pbtxt``, optional COCO ground-truth JSON per split and a
``conversion_report.json``, and returns the :class:`ConversionReport`.

Example::

    from tfmask.data.convert import ConvertConfig, convert
    report = convert(ConvertConfig(data_dir="dataset", output_dir="dataset/records"))
    print(report.format())
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
import re
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from tfmask.data import coco
from tfmask.alloc import keep_freed_memory
from tfmask.errors import ConfigError, DataError
from tfmask.data.images import DEFAULT_MAX_IMAGE_PIXELS
from tfmask.data.instances import INSTANCE_MODES
from tfmask.config.label_map import load_label_map, read_label_map
from tfmask.data.records.writer import ShardedWriter, shard_paths
from tfmask.data.report import ConversionReport, Problem
from tfmask.data.sources import coco_json, masks_voc, select
from tfmask.data.sources.base import ItemResult

LABEL_MAP_NAME = "label_map.pbtxt"
REPORT_NAME = "conversion_report.json"
DEFAULT_VAL_FRACTION = 0.2  # share of images in the val split unless told otherwise


def default_workers() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count``
    where that is unavailable), at least 1: the default ``workers``."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ConvertConfig:
    """Everything a conversion needs.

    Attributes:
      data_dir: the tutorial's dataset folder; the folders and label map
        below default to paths inside it.
      images_dir / masks_dir / bboxes_dir: folder names or paths (relative
        ones resolve against ``data_dir``).
      label_map_path: defaults to ``DATA_DIR/label.pbtxt``.
      class_pixels: ``--class-pixel`` specs (``speaker=76``, ``cup=255,0,0``).
      coco_json: read this COCO file instead of masks (images from images_dir).
      labelme_dir / yolo_data / cvat_xml / instance_masks_dir: read that
        format instead (see :mod:`tfmask.data.sources.select`); a YOLO
        dataset keeps its own train/val split, so ``val_fraction`` must be 0.
      instance_mode: ``class``, ``components`` or ``box``.
      min_instance_area: components smaller than this (pixels) are dropped.
      output_dir: where records and side files go.
      train_name / val_name: record name prefixes.
      val_fraction / seed: deterministic split; 0 writes only ``train_name``.
        None (the default) means :data:`DEFAULT_VAL_FRACTION`, or 0 for a YOLO
        dataset (it has its own split).
      num_shards: shards per split.
      write_coco_json: also write ``NAME_coco.json`` per split.
      skip_invalid: skip (and list) invalid images instead of stopping.
      workers: processes converting images (1 = in this process); None (the
        default) means one per CPU this process may run on
        (:func:`default_workers`). The output is byte-identical for any count.
      progress: show a progress bar.
    """

    data_dir: Optional[str] = None
    images_dir: str = "train_images"
    masks_dir: str = "train_masks"
    bboxes_dir: str = "train_bboxes"
    label_map_path: Optional[str] = None
    class_pixels: Sequence[str] = ()
    coco_json: Optional[str] = None
    labelme_dir: Optional[str] = None
    yolo_data: Optional[str] = None
    cvat_xml: Optional[str] = None
    instance_masks_dir: Optional[str] = None
    instance_mode: str = "class"
    min_instance_area: int = 1
    output_dir: Optional[str] = None
    train_name: str = "train"
    val_name: str = "val"
    val_fraction: Optional[float] = None
    seed: int = 0
    num_shards: int = 1
    write_coco_json: bool = False
    skip_invalid: bool = False
    workers: Optional[int] = None
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    progress: bool = True

    def __post_init__(self):
        if self.val_fraction is None:
            split = 0.0 if self.yolo_data else DEFAULT_VAL_FRACTION
            object.__setattr__(self, "val_fraction", split)
        if self.workers is None:
            object.__setattr__(self, "workers", default_workers())

    def path(self, name: Optional[str]) -> Optional[Path]:
        if name is None:
            return None
        p = Path(name)
        return p if p.is_absolute() or self.data_dir is None else Path(self.data_dir) / p

    def validate(self) -> None:
        if self.instance_mode not in INSTANCE_MODES:
            raise ConfigError(f"instance_mode '{self.instance_mode}' is unknown; valid: "
                              f"{', '.join(INSTANCE_MODES)}", params=("instance_mode",))
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}",
                              params=("val_fraction",))
        if self.num_shards < 1 or self.workers < 1 or self.min_instance_area < 0:
            raise ConfigError("num_shards and workers must be >= 1, min_instance_area >= 0",
                              params=("num_shards", "workers", "min_instance_area"))
        other = select.chosen(self)
        if self.coco_json is None and self.data_dir is None and other is None:
            raise ConfigError("give a dataset folder (data_dir) or annotations in another "
                              "format (coco_json, labelme_dir, yolo_data, cvat_xml or "
                              "instance_masks_dir)",
                              params=("data_dir", "coco_json", "labelme_dir", "yolo_data",
                                      "cvat_xml", "instance_masks_dir"))
        if other == "yolo_data" and self.val_fraction > 0:
            raise ConfigError("val_fraction: a YOLO dataset keeps the train/val split of "
                              "its data.yaml; leave val_fraction out", params=("val_fraction",))
        if self.output_dir is None:
            raise ConfigError("no output folder given (output_dir)", params=("output_dir",))
        if self.val_fraction > 0 and self.train_name == self.val_name:
            raise ConfigError("train and val record names must differ")


def split_is_val(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """[n] bool: which of n items (in input order) go to the validation split.

    ``round(n * val_fraction)`` items chosen by a seeded permutation, at least
    one of each split when ``val_fraction > 0`` and ``n >= 2``. Depends only on
    ``n``, the fraction and the seed, never on which items later fail.
    """
    is_val = np.zeros(n, bool)
    if val_fraction <= 0 or n < 2:
        return is_val
    n_val = min(max(int(round(n * val_fraction)), 1), n - 1)
    is_val[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return is_val


def _convert_chunk(fn: Callable, chunk: Sequence) -> List[ItemResult]:
    return [fn(item) for item in chunk]


def _pool_context():
    """``fork`` while TensorFlow is not loaded here, else ``spawn``.

    Forking a process that has started TensorFlow's thread pools can
    deadlock; the conversion path never imports TensorFlow, so the command
    line forks (workers start in milliseconds) and only callers that already
    loaded TF (notebooks, tests) pay for spawned workers re-importing tfmask.
    """
    if "tensorflow" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("fork")


def _parallel_map(fn: Callable, items: Sequence, workers: int) -> Iterator[ItemResult]:
    """``map(fn, items)`` in order; with workers > 1 in a process pool.

    Work is submitted in chunks with at most ``4 * workers`` chunks in flight,
    so memory stays flat however many items there are and however slowly the
    caller consumes results (``Pool.imap`` would queue every result).
    """
    if workers <= 1 or len(items) < 2:
        yield from map(fn, items)
        return
    chunksize = max(1, min(16, len(items) // (workers * 8)))
    chunks = (items[i:i + chunksize] for i in range(0, len(items), chunksize))
    with _pool_context().Pool(workers, initializer=keep_freed_memory) as pool:
        pending: collections.deque = collections.deque()
        for chunk in itertools.islice(chunks, 4 * workers):
            pending.append(pool.apply_async(_convert_chunk, (fn, chunk)))
        while pending:
            results = pending.popleft().get()
            for chunk in itertools.islice(chunks, 1):
                pending.append(pool.apply_async(_convert_chunk, (fn, chunk)))
            yield from results


def _scan(cfg: ConvertConfig):
    """(items, convert_fn, label_map, scan_problems) for the configured source."""
    if cfg.coco_json is not None:
        label_map = None
        if cfg.label_map_path is not None:
            label_map = read_label_map(cfg.path(cfg.label_map_path), pixel_suffix=False)
        items, label_map, problems = coco_json.scan(cfg.path(cfg.coco_json),
                                                    cfg.path(cfg.images_dir), label_map)
        fn = partial(coco_json.convert_item, opts=coco_json.CocoOptions(
            label_map, cfg.max_image_pixels, cfg.write_coco_json))
        return items, fn, label_map, problems
    label_map = load_label_map(cfg.path(cfg.label_map_path or "label.pbtxt"), cfg.class_pixels)
    for c in label_map.classes:
        if c.pixel_value is not None and not any(c.pixel_value):
            raise DataError(label_map.path, f"class '{c.name}' has pixel value 0, which is the "
                            "mask background", kind="label_map")
    bboxes = cfg.path(cfg.bboxes_dir) if cfg.instance_mode == "box" else None
    items, problems = masks_voc.scan(cfg.path(cfg.images_dir), cfg.path(cfg.masks_dir), bboxes)
    fn = partial(masks_voc.convert_item, opts=masks_voc.MaskOptions(
        label_map, cfg.instance_mode, cfg.min_instance_area, cfg.max_image_pixels,
        cfg.write_coco_json))
    return items, fn, label_map, problems


def _remove_stale_shards(out_dir: Path, name: str, keep: Iterable[Path]) -> List[str]:
    """Deletes ``NAME-?????-of-?????`` shards of an earlier run with another count."""
    keep = {p.name for p in keep}
    pattern = re.compile(re.escape(name) + r"-\d{5}-of-\d{5}$")
    removed = []
    for p in out_dir.iterdir():
        if pattern.match(p.name) and p.name not in keep:
            p.unlink()
            removed.append(str(p))
    return removed


@dataclass
class Plan:
    """A validated conversion before any image is converted (shared by both runners).

    Attributes:
      items: the source's items in input order.
      convert_item: ``item -> ItemResult`` (picklable; runs in workers).
      label_map: the label map written beside the records.
      report: holds the scan's problems so far.
      is_val: [len(items)] bool, the validation split by input index.
      names: the split names that get records (train, and val when used).
    """

    items: Sequence
    convert_item: Callable[..., ItemResult]
    label_map: object
    report: ConversionReport
    is_val: np.ndarray
    names: List[str]

    def split_of(self, index: int, cfg: ConvertConfig) -> str:
        return cfg.val_name if self.is_val[index] else cfg.train_name


def plan_conversion(cfg: ConvertConfig) -> Plan:
    """Validates ``cfg``, scans the source and splits it; creates the output folder.

    Raises:
      DataError: a scan error (unless ``skip_invalid``), e.g. a mask without image.
      ConfigError: contradictory options.
    """
    cfg.validate()
    other = select.scan_other(cfg)
    if other is not None:
        items, fn, label_map, scan_problems = (other.items, other.convert_item,
                                               other.label_map, other.problems)
    else:
        items, fn, label_map, scan_problems = _scan(cfg)
    report = ConversionReport()
    for p in scan_problems:
        if p.is_error and not cfg.skip_invalid:
            raise DataError(p.path, p.message, kind=p.kind)
        report.problems.append(p)
        if p.is_error:
            report.skipped.append(p.line())
    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    is_val = split_is_val(len(items), cfg.val_fraction, cfg.seed) \
        if other is None or other.is_val is None else other.is_val
    names = [cfg.train_name] + ([cfg.val_name] if is_val.any() else [])
    return Plan(items, fn, label_map, report, is_val, names)


def record_result(plan: Plan, cfg: ConvertConfig, result: ItemResult) -> bool:
    """Adds one item's problems/counts to the report; False when it is skipped.

    Raises:
      DataError: the item is invalid and ``skip_invalid`` is off.
    """
    report = plan.report
    report.problems.extend(result.problems)
    if result.error is not None:
        if not cfg.skip_invalid:
            raise DataError(result.error.path, result.error.message, kind=result.error.kind)
        report.problems.append(result.error)
        report.skipped.append(result.error.line())
        return False
    report.instances_per_class.update(result.class_counts)
    return True


def no_valid_images(cfg: ConvertConfig) -> DataError:
    other = select.chosen(cfg)
    where = cfg.path(getattr(cfg, other) if other else cfg.images_dir)
    return DataError(where, "no valid images to write; every image was "
                     "skipped (see the problems above)", kind="invalid")


def write_side_outputs(plan: Plan, cfg: ConvertConfig, counts: Dict[str, int],
                       coco_images: Dict[str, list], coco_anns: Dict[str, list]) -> None:
    """After the shards are in place: stale shards, COCO JSON, label map, report."""
    out_dir = Path(cfg.output_dir)
    report = plan.report
    for name in plan.names:
        paths = shard_paths(out_dir / name, cfg.num_shards)
        report.images_per_split[name] = counts.get(name, 0)
        report.outputs.extend(str(p) for p in paths)
        for stale in _remove_stale_shards(out_dir, name, paths):
            report.problems.append(Problem("stale_shard_removed", stale,
                                           "stale shard of an earlier run removed"))
        if cfg.write_coco_json:
            path = out_dir / f"{name}_coco.json"
            coco.write_coco_json(path, coco_images[name], coco_anns[name], plan.label_map)
            report.outputs.append(str(path))
    plan.label_map.write(out_dir / LABEL_MAP_NAME)
    report.outputs.append(str(out_dir / LABEL_MAP_NAME))
    report.outputs.append(str(out_dir / REPORT_NAME))
    report.write_json(out_dir / REPORT_NAME)


def convert(cfg: ConvertConfig) -> ConversionReport:
    """Runs a conversion; see the module docstring.

    Raises:
      DataError: the first invalid image (unless ``skip_invalid``), or an
        invalid label map / folder / COCO file. Nothing is left under a
        final output name when it raises.
      ConfigError: contradictory options.
    """
    plan = plan_conversion(cfg)
    out_dir = Path(cfg.output_dir)
    writers = {n: ShardedWriter(out_dir / n, cfg.num_shards) for n in plan.names}
    coco_images = {n: [] for n in plan.names}
    coco_anns = {n: [] for n in plan.names}
    with contextlib.ExitStack() as stack:
        for writer in writers.values():
            stack.enter_context(writer)
        results = _parallel_map(plan.convert_item, plan.items, cfg.workers)
        for i, result in enumerate(tqdm(results, total=len(plan.items), unit="img",
                                        desc="converting", disable=not cfg.progress)):
            if not record_result(plan, cfg, result):
                continue
            split = plan.split_of(i, cfg)
            writers[split].write(result.example)
            if cfg.write_coco_json:
                coco_images[split].append(result.coco_image)
                coco_anns[split].extend(result.coco_annotations)
        if sum(w.count for w in writers.values()) == 0:
            raise no_valid_images(cfg)
    write_side_outputs(plan, cfg, {n: w.count for n, w in writers.items()}, coco_images,
                       coco_anns)
    return plan.report
