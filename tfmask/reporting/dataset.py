"""The dataset page: what is in a set of records (or a data folder, converted first).

Reads the records without TensorFlow (:func:`iter_examples`) and the
``conversion_report.json`` beside them, and writes one HTML page: images per
split, instances per class, instances per image, object size (sqrt of mask
area, COCO small/medium/large) and box aspect histograms, every problem the
conversion reported, and a gallery of ground-truth previews. Run::

    tfmask report --records 'dataset/records/*-of-*' --out dataset_report.html
    tfmask report --labelme-dir shots --out shots.html     # converts to a temporary folder
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np

from tfmask.data.records.reader import DecodedExample, decode_example, expand_record_paths
from tfmask.data.records.wire import read_records
from tfmask.errors import DataError, PathLike
from tfmask.reporting.page import Page, bar_chart, esc as _e, histogram, image_uri

SIZE_EDGES = (0, 8, 16, 32, 64, 96, 128, 256, 512, 100000)
ASPECT_EDGES = (0, 0.25, 0.5, 0.8, 1.25, 2.0, 4.0, 1000)
_REPORT_NAME = "conversion_report.json"


def iter_examples(patterns) -> Iterator[tuple]:
    """Yields (split name, DecodedExample) of every record file, in file order.

    The split is the file name's prefix (``val`` of ``val-00000-of-00001``).

    Raises:
      DataError: nothing matches, or a file is not a TFRecord of examples.
    """
    for path in expand_record_paths(patterns):
        split = Path(path).name.split("-")[0]
        try:
            with open(path, "rb") as f:
                for raw in read_records(f):
                    yield split, decode_example(raw)
        except (ValueError, IndexError, OSError) as exc:
            raise DataError(path, f"not a readable TFRecord of tfmask examples ({exc})",
                            kind="unreadable") from None


def _problems_section(page: Page, report: Optional[dict]) -> None:
    if report is None:
        page.section("Problems", "<p>No conversion_report.json beside the records.</p>")
        return
    groups = report.get("problems") or {}
    if not groups:
        page.section("Problems", "<p>The conversion reported no problem.</p>")
        return
    from tfmask.data.report import ERROR_KINDS, WARNING_KINDS

    body = []
    for kind, lines in groups.items():
        title = ERROR_KINDS.get(kind) or WARNING_KINDS.get(kind, kind)
        cls = ' class="bad"' if kind in ERROR_KINDS else ""
        items = "".join(f"<li>{_e(line)}</li>" for line in lines)
        body.append(f"<h3{cls}>{_e(title)} ({len(lines)})</h3><ul class=\"problems\">"
                    f"{items}</ul>")
    skipped = report.get("skipped") or []
    if skipped:
        body.append(f"<p class=\"bad\">{len(skipped)} file(s) skipped as invalid.</p>")
    page.section("Problems", "".join(body), note="every problem of the conversion report")


def dataset_page(patterns, out_html: PathLike, gallery: int = 24,
                 conversion_report: Optional[PathLike] = None,
                 title: Optional[str] = None) -> Path:
    """Writes the dataset page for the records ``patterns``; returns its path.

    Args:
      patterns: record files (glob, comma-separated list, or list).
      out_html: the page to write (atomically).
      gallery: ground-truth previews to show (the first ones, in record order).
      conversion_report: defaults to ``conversion_report.json`` beside the
        first record file, when there.
    """
    from tfmask.data.preview import draw_example

    paths = expand_record_paths(patterns)
    if conversion_report is None:
        candidate = Path(paths[0]).parent / _REPORT_NAME
        conversion_report = candidate if candidate.is_file() else None
    report = json.loads(Path(conversion_report).read_text()) if conversion_report else None
    per_split: Counter = Counter()
    per_class: Counter = Counter()
    per_image: List[int] = []
    sizes, aspects = [], []
    thumbs = []
    for split, ex in iter_examples(paths):
        per_split[split] += 1
        per_class.update(ex.class_names)
        per_image.append(len(ex.class_ids))
        boxes = ex.boxes_xyxy_px
        if len(ex.class_ids):  # a negative image (no instances) adds no sizes
            sizes.extend(np.sqrt(ex.masks.reshape(len(ex.masks), -1).sum(1)).tolist())
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        aspects.extend((w / np.maximum(h, 1e-6)).tolist())
        if len(thumbs) < gallery:
            thumbs.append(Page.figure(image_uri(draw_example(ex)),
                                      f"{ex.filename} ({split}): {len(ex.class_ids)} "
                                      "instance(s)", alt=f"ground truth of {ex.filename}"))
    page = Page(title or f"Dataset report: {os.path.commonpath([str(p) for p in paths])}")
    _classes_section(page, per_split, per_class)
    _distributions_section(page, per_image, sizes, aspects)
    _problems_section(page, report)
    page.section("Ground truth", f'<div class="gallery">{"".join(thumbs)}</div>',
                 note=f"the first {len(thumbs)} of {sum(per_split.values())} images")
    out_html = Path(out_html)
    page.write(out_html)
    return out_html


def _classes_section(page: Page, per_split: Counter, per_class: Counter) -> None:
    """Images per split and instances per class."""
    total = sum(per_class.values())
    page.section("Images and classes", Page.table(
        ["split", "images"], sorted(per_split.items()) + [["all", sum(per_split.values())]])
        + Page.table(["class", "instances", "share"],
                     [[c, n, f"{n / max(total, 1):.1%}"] for c, n in sorted(per_class.items())]
                     + [["all", total, ""]]))


def _distributions_section(page: Page, per_image: List[int], sizes: List[float],
                           aspects: List[float]) -> None:
    """Histograms of instances per image, object size (sqrt of mask area, px) and box
    aspect, and the COCO small/medium/large counts."""
    area = np.square(np.asarray(sizes))
    coco_sizes = [int((area < 32 ** 2).sum()), int(((area >= 32 ** 2) & (area < 96 ** 2)).sum()),
                  int((area >= 96 ** 2).sum())]
    most = max(per_image, default=0)
    page.section("Instances per image, object sizes and aspects", '<div class="charts">'
                 + histogram("instances per image", per_image,
                             list(range(0, most + 2)) if most < 16 else
                             np.linspace(0, most + 1, 12).round().tolist(), "{:.0f}")
                 + bar_chart("objects by COCO size (mask area)", ["small <32²", "medium",
                                                                  "large ≥96²"], coco_sizes)
                 + histogram("object size: sqrt(mask area), px", sizes, SIZE_EDGES, "{:g}")
                 + histogram("box aspect: width / height", aspects, ASPECT_EDGES, "{:g}")
                 + "</div>")


def source_page(cfg, out_html: PathLike, gallery: int = 24) -> Path:
    """Converts a data folder (any input :mod:`tfmask.data.convert` reads) into a
    temporary folder, invalid images skipped and listed, and writes its page.

    Args:
      cfg: a :class:`tfmask.data.convert.ConvertConfig`; its output_dir,
        skip_invalid and progress are replaced.
    """
    from tfmask.data.convert import convert

    with tempfile.TemporaryDirectory(prefix="tfmask-report-") as tmp:
        convert(dataclasses.replace(cfg, output_dir=tmp, skip_invalid=True, progress=False))
        return dataset_page(os.path.join(tmp, "*-of-*"), out_html, gallery,
                            title="Dataset report: " + _source_name(cfg))


def _source_name(cfg) -> str:
    for field in ("labelme_dir", "yolo_data", "cvat_xml", "instance_masks_dir", "coco_json",
                  "data_dir"):
        value = getattr(cfg, field, None)
        if value:
            return str(value)
    return "dataset"
