"""Validation problems and the conversion summary.

Nothing the converter does to the data goes unreported: every dropped object,
clipped box, skipped file or re-encoded image becomes a :class:`Problem`, and
the summary printed at the end counts them by kind and names the files.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List

from tfmask.atomic import atomic_write

# Problems that stop the conversion (or, with --skip-invalid, skip the image).
ERROR_KINDS = {
    "missing_mask": "image has no mask",
    "missing_xml": "image has no XML box file",
    "missing_image": "annotation names an image that is missing",
    "orphan_mask": "mask has no image",
    "size_mismatch": "image and mask/XML/annotation sizes differ",
    "unknown_class": "class not in the label map",
    "unknown_pixel_values": "mask pixel values that match no class",
    "bad_box": "inverted, zero-area or outside box",
    "bad_xml": "malformed XML",
    "bad_mask": "unsupported mask file",
    "bad_annotation": "malformed annotation (COCO, labelme, YOLO, CVAT, class mapping)",
    "unreadable": "unreadable, empty or corrupt file",
    "unsupported": "unsupported image format",
    "too_large": "image above the pixel limit",
    "missing_file": "file not found",
    "invalid": "invalid input",
}
# Problems that are fixed or dropped and reported; the image is still written.
WARNING_KINDS = {
    "box_clipped": "boxes outside the image (clipped)",
    "empty_box_dropped": "objects whose box holds no class pixels (dropped)",
    "empty_annotation_dropped": "annotations with an empty mask (dropped)",
    "small_component_dropped": "components below --min-instance-area (dropped)",
    "no_objects": "images without objects (written as negatives)",
    "ignored_shape": "line and point shapes without area (skipped)",
    "reencoded": "images re-encoded (EXIF orientation / pixel mode)",
    "ignored_file": "files that are not JPEG/PNG images (ignored)",
    "stale_shard_removed": "shards of an earlier run with another shard count (removed)",
}


@dataclass(frozen=True)
class Problem:
    """One reported problem: its kind (a key above), the file and a message."""

    kind: str
    path: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.kind in ERROR_KINDS

    def line(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ConversionReport:
    """What a conversion wrote and what it found.

    Attributes:
      images_per_split: split name -> number of examples written.
      instances_per_class: class name -> number of instances written.
      problems: every problem, in input order.
      skipped: files skipped because of an error (only with --skip-invalid).
      outputs: every file written (records, label map, COCO JSON, report).
    """

    images_per_split: Dict[str, int] = field(default_factory=dict)
    instances_per_class: Counter = field(default_factory=Counter)
    problems: List[Problem] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)

    def by_kind(self) -> Dict[str, List[Problem]]:
        out: Dict[str, List[Problem]] = defaultdict(list)
        for p in self.problems:
            out[p.kind].append(p)
        return dict(out)

    def to_dict(self) -> dict:
        return {
            "images_per_split": self.images_per_split,
            "instances_per_class": dict(self.instances_per_class),
            "problems": {k: [p.line() for p in v] for k, v in self.by_kind().items()},
            "skipped": self.skipped,
            "outputs": self.outputs,
        }

    def write_json(self, path) -> None:
        atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def format(self, max_listed: int = 10) -> str:
        """The human-readable summary printed at the end of a conversion."""
        lines = ["images written: " + ", ".join(
            f"{split} {n}" for split, n in self.images_per_split.items())]
        total = sum(self.instances_per_class.values())
        lines.append(f"instances: {total}" + "".join(
            f"\n  {name:<20} {n}" for name, n in sorted(self.instances_per_class.items())))
        groups = self.by_kind()
        if groups:
            lines.append("problems:")
        for kind, items in groups.items():
            title = ERROR_KINDS.get(kind) or WARNING_KINDS.get(kind, kind)
            lines.append(f"  {title}: {len(items)}")
            for p in items[:max_listed]:
                lines.append(f"    {p.line()}")
            if len(items) > max_listed:
                lines.append(f"    ... and {len(items) - max_listed} more "
                             "(all listed in conversion_report.json)")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} invalid file(s):")
            lines.extend(f"  {s}" for s in self.skipped)
        return "\n".join(lines)
