"""What every source returns for one image, the options most take, and the shared finishing step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from tfmask.config.label_map import LabelMap
from tfmask.data import coco
from tfmask.data.images import DEFAULT_MAX_IMAGE_PIXELS
from tfmask.annotation import Sample
from tfmask.errors import DataError, PathLike
from tfmask.data.records.writer import build_example
from tfmask.data.report import Problem


@dataclass
class ItemResult:
    """The outcome of converting one image.

    Attributes:
      name: the item's display name (image path).
      example: serialized ``tf.train.Example``; None when ``error`` is set.
      class_counts: class name -> instances written.
      problems: warnings (the image is still written).
      error: the problem that prevents writing this image, if any.
      coco_image: COCO image entry (when COCO output is requested).
      coco_annotations: COCO annotation entries, without ids.
    """

    name: str
    example: Optional[bytes] = None
    class_counts: Dict[str, int] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    error: Optional[Problem] = None
    coco_image: Optional[dict] = None
    coco_annotations: List[dict] = field(default_factory=list)


@dataclass(frozen=True)
class SourceOptions:
    """How to convert one item, for the sources that need nothing more.

    Attributes:
      label_map: the classes the instances are written with.
      max_image_pixels: an image declaring more pixels is refused before decoding.
      want_coco: also build the item's COCO image and annotation entries.
    """

    label_map: LabelMap
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    want_coco: bool = False


def invalid_json(path: PathLike, exc: json.JSONDecodeError) -> DataError:
    """The error for a file that does not parse as JSON, at the parser's line and column."""
    return DataError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                     kind="bad_annotation")


def finish(sample: Sample, problems: List[Problem], want_coco: bool) -> ItemResult:
    """Serializes a sample and gathers its counts and COCO entries."""
    counts: Dict[str, int] = {}
    for name in sample.instances.class_names:
        counts[name] = counts.get(name, 0) + 1
    image = sample.image
    if not len(sample.instances):
        problems.append(Problem("no_objects", image.filename,
                                "no objects; written as a negative example"))
    result = ItemResult(name=image.filename, example=build_example(sample),
                        class_counts=counts, problems=problems)
    if want_coco:
        result.coco_image = coco.image_entry(sample.source_id, image.filename, image.size_hw)
        result.coco_annotations = coco.annotation_entries(sample.source_id, sample.instances)
    return result


def run_guarded(name: str, fn: Callable[[], ItemResult]) -> ItemResult:
    """Runs ``fn``; a DataError becomes the item's error instead of escaping."""
    try:
        return fn()
    except DataError as exc:
        return ItemResult(name=name, error=Problem(exc.kind, exc.path or name, exc.reason))
