"""The converter as an Apache Beam pipeline: ``tfmask tfrecord --runner beam``.

Same inputs, validation, split and outputs as :func:`tfmask.data.convert.convert`
(``NAME-00000-of-0000N`` shards per split, ``label_map.pbtxt``,
``conversion_report.json``, optional ``NAME_coco.json``); the per-image work
(decode, validate, build the example) runs in Beam transforms, so the same
pipeline runs on the DirectRunner (default, several local workers) or on
Dataflow/Flink/Spark given their pipeline options. Needs the optional extra:
``pip install 'tfmask[beam]'``.

Each split holds the same records as the local converter's, but Beam's
``WriteToTFRecord`` spreads them over the shards in no fixed order: compare
outputs per split as multisets of records, not shard by shard.

Nothing appears under a final name unless the whole conversion succeeds:
records and per-image metadata (problems, class counts, COCO entries; small)
are written to a hidden staging folder ``OUTPUT_DIR/.beam-*``; the driver
then reads the metadata, raises the same :class:`DataError` the local
converter would (the first invalid image in input order, unless
``skip_invalid``), or renames the staged shards to their final names. The
staging folder is removed either way. Paths are local paths, so a runner
with remote workers needs the dataset and output folder on a filesystem
every worker mounts at the same path (for example a gcsfuse or NFS mount).

Example::

    from tfmask.data.convert import ConvertConfig
    from tfmask.data.convert_beam import convert_with_beam
    report = convert_with_beam(
        ConvertConfig(data_dir="dataset", output_dir="dataset/records", val_fraction=0.2),
        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])

or ``tfmask tfrecord --data-dir dataset --runner beam --beam-arg=--direct_num_workers=2``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Sequence

from tfmask.data.convert import (ConvertConfig, no_valid_images, plan_conversion, record_result,
                            write_side_outputs)
from tfmask.errors import ConfigError
from tfmask.data.records.writer import shard_paths
from tfmask.data.report import ConversionReport, Problem
from tfmask.data.sources.base import ItemResult

_RECORDS = "records"  # staging subfolders
_META = "meta"


def convert_with_beam(cfg: ConvertConfig, pipeline_args: Sequence[str] = ()) -> ConversionReport:
    """Runs the conversion of ``cfg`` as a Beam pipeline; see the module docstring.

    Args:
      cfg: the conversion, as for :func:`tfmask.data.convert.convert`. ``workers > 1``
        adds ``--direct_num_workers=WORKERS --direct_running_mode=multi_processing``
        unless ``pipeline_args`` set the worker count; ``progress`` is ignored.
      pipeline_args: Beam pipeline options (``--runner=...`` etc.); default
        the DirectRunner.

    Returns:
      The :class:`ConversionReport`, equal to the local converter's.

    Raises:
      DataError: as :func:`tfmask.data.convert.convert`; no record file is left
        under a final name and the staging folder is removed.
      ConfigError: contradictory options, or Apache Beam is not installed.
    """
    beam = _import_beam()
    plan = plan_conversion(cfg)
    out_dir = Path(cfg.output_dir)
    names = plan.names
    elements = [(i, names.index(plan.split_of(i, cfg)), item)
                for i, item in enumerate(plan.items)]
    staging = Path(tempfile.mkdtemp(prefix=".beam-", dir=out_dir))
    try:
        _run_pipeline(beam, _options(beam, cfg, pipeline_args), elements, plan.convert_item,
                      names, staging, cfg.num_shards)
        metas = sorted(_read_meta(staging / _META), key=lambda m: m["index"])
        if [m["index"] for m in metas] != list(range(len(plan.items))):
            raise RuntimeError(f"Beam pipeline returned {len(metas)} results for "
                               f"{len(plan.items)} images")
        counts: Dict[str, int] = Counter()
        coco_images: Dict[str, List[dict]] = {n: [] for n in names}
        coco_anns: Dict[str, List[dict]] = {n: [] for n in names}
        for m in metas:  # input order, as the local converter reports
            result = ItemResult(
                name="", class_counts=m["class_counts"],
                problems=[Problem(*p) for p in m["problems"]],
                error=None if m["error"] is None else Problem(*m["error"]))
            if not record_result(plan, cfg, result):
                continue
            split = names[m["split"]]
            counts[split] += 1
            if cfg.write_coco_json:
                coco_images[split].append(m["coco_image"])
                coco_anns[split].extend(m["coco_annotations"])
        if not counts:
            raise no_valid_images(cfg)
        for name in names:  # every check passed: publish the shards
            for staged, final in zip(shard_paths(staging / _RECORDS / name, cfg.num_shards),
                                     shard_paths(out_dir / name, cfg.num_shards)):
                _fsync(staged)
                os.replace(staged, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_side_outputs(plan, cfg, counts, coco_images, coco_anns)
    return plan.report


def _import_beam():
    """``apache_beam``, imported without its GCS/apitools warnings; ConfigError if missing."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        import apache_beam
    except ImportError as exc:
        raise ConfigError("--runner beam needs Apache Beam: pip install 'tfmask[beam]' "
                          f"({exc})") from exc
    finally:
        logging.disable(previous)
    return apache_beam


def _options(beam, cfg: ConvertConfig, pipeline_args: Sequence[str]):
    args = list(pipeline_args)
    if cfg.workers > 1 and not any(a.startswith("--direct_num_workers") for a in args):
        args.append(f"--direct_num_workers={cfg.workers}")
        if not any(a.startswith("--direct_running_mode") for a in args):
            args.append("--direct_running_mode=multi_processing")
    if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
        args.append("--default_sdk_harness_log_level=ERROR")  # workers log every stage
    return beam.options.pipeline_options.PipelineOptions(args)


def _run_pipeline(beam, options, elements, fn: Callable, names: Sequence[str], staging: Path,
                  num_shards: int) -> None:
    """Converts ``elements`` ((index, split index, item)) into staged shards and metadata.

    Only valid examples reach the record writers; every image's metadata is
    written as one JSON line to ``staging/meta/items-*``.
    """
    from apache_beam.io.filesystem import CompressionTypes

    tags = [f"split{k}" for k in range(len(names))]
    with _quiet_beam_logs():
        pipeline = beam.Pipeline(options=options)
        results = (pipeline
                   | "Images" >> beam.Create(elements)
                   | "Spread" >> beam.Reshuffle()  # else one worker converts everything
                   | "Convert" >> beam.FlatMap(_convert_element, fn).with_outputs(
                       *tags, main=_META))
        for tag, name in zip(tags, names):
            _ = results[tag] | f"Write {name}" >> beam.io.WriteToTFRecord(
                str(staging / _RECORDS / name), num_shards=num_shards,
                shard_name_template="-SSSSS-of-NNNNN",
                compression_type=CompressionTypes.UNCOMPRESSED)
        _ = results[_META] | "Write metadata" >> beam.io.WriteToText(
            str(staging / _META / "items"), file_name_suffix=".jsonl")
        state = pipeline.run().wait_until_finish()
    if state not in (None, "DONE"):
        raise RuntimeError(f"Beam pipeline ended in state {state}")


def _convert_element(element, fn: Callable[..., ItemResult]) -> Iterator:
    """Beam step: converts one image; yields its example (tagged by split) and metadata."""
    from apache_beam import pvalue

    index, split, item = element
    result = fn(item)
    if result.error is None:
        yield pvalue.TaggedOutput(f"split{split}", result.example)
    yield json.dumps({
        "index": index, "split": split,
        "problems": [[p.kind, p.path, p.message] for p in result.problems],
        "error": (None if result.error is None else
                  [result.error.kind, result.error.path, result.error.message]),
        "class_counts": result.class_counts, "coco_image": result.coco_image,
        "coco_annotations": result.coco_annotations})


def _read_meta(meta_dir: Path) -> Iterator[dict]:
    for path in sorted(meta_dir.glob("items*.jsonl")):
        with open(path, encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())


def _fsync(path: Path) -> None:
    """Flushes a staged shard to disk before the rename, as the local writer does."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def _quiet_beam_logs() -> Iterator[None]:
    """Beam logs every stage at INFO; keep its warnings and errors only."""
    logger = logging.getLogger("apache_beam")
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)
