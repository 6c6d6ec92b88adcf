"""A numpy reader for the records :mod:`tfmask.data.records.writer` writes.

For previews, tests and evaluation; training reads records with Model Garden's
own decoder. :func:`decode_example` and :func:`read_examples` never import TensorFlow (records
are read with :mod:`tfmask.data.records.scan`, CRCs checked).
"""

from __future__ import annotations

import glob
import io
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Tuple, Union

import numpy as np
from PIL import Image

from tfmask.annotation import Instances
from tfmask.boxes import yxyx_norm_to_xyxy_px
from tfmask.data.records import feature_keys as fk
from tfmask.data.records.wire import Example
from tfmask.errors import DataError, PathLike


@dataclass(frozen=True)
class DecodedExample:
    """A record decoded to numpy, for previews, tests and evaluation.

    Attributes:
      filename: ``image/filename``.
      source_id: ``image/source_id`` (a decimal string for tfmask records).
      size_hw: (height, width).
      image_format: ``image/format``.
      encoded: ``image/encoded`` bytes.
      boxes_yxyx_norm: [N, 4] float32 normalized ``[ymin, xmin, ymax, xmax]``.
      class_ids: [N] int64.
      class_names: N strings.
      areas: [N] float32.
      is_crowd: [N] bool.
      masks: [N, H, W] bool, decoded from the instance PNGs.
    """

    filename: str
    source_id: str
    size_hw: Tuple[int, int]
    image_format: str
    encoded: bytes
    boxes_yxyx_norm: np.ndarray
    class_ids: np.ndarray
    class_names: Tuple[str, ...]
    areas: np.ndarray
    is_crowd: np.ndarray
    masks: np.ndarray

    def image(self) -> np.ndarray:
        """[H, W, 3] uint8 RGB decode of ``encoded``."""
        return np.asarray(Image.open(io.BytesIO(self.encoded)).convert("RGB"))

    @property
    def instances(self) -> Instances:
        """The example's objects in the annotation vocabulary (validated; raises
        ValueError for a record that breaks its rules, e.g. an empty mask)."""
        return Instances(self.masks, self.boxes_xyxy_px, self.class_ids, self.class_names,
                         self.is_crowd)

    @property
    def boxes_xyxy_px(self) -> np.ndarray:
        """[N, 4] float32 pixel-edge ``[xmin, ymin, xmax, ymax]``."""
        return yxyx_norm_to_xyxy_px(self.boxes_yxyx_norm, self.size_hw)


def decode_example(serialized: bytes) -> DecodedExample:
    """Parses ``tf.train.Example`` bytes written by :func:`build_example`."""
    f = Example.FromString(serialized).features.feature

    def b(key):
        return list(f[key].bytes_list.value) if key in f else []

    def fl(key):
        return np.asarray(f[key].float_list.value if key in f else [], np.float32)

    def i(key):
        return np.asarray(f[key].int64_list.value if key in f else [], np.int64)

    h, w = int(i(fk.IMAGE_HEIGHT)[0]), int(i(fk.IMAGE_WIDTH)[0])
    masks = [np.asarray(Image.open(io.BytesIO(png))) > 0 for png in b(fk.MASK)]
    return DecodedExample(
        filename=b(fk.IMAGE_FILENAME)[0].decode("utf-8"),
        source_id=b(fk.IMAGE_SOURCE_ID)[0].decode("utf-8"),
        size_hw=(h, w),
        image_format=b(fk.IMAGE_FORMAT)[0].decode("ascii"),
        encoded=b(fk.IMAGE_ENCODED)[0],
        boxes_yxyx_norm=np.stack([fl(fk.BBOX_YMIN), fl(fk.BBOX_XMIN), fl(fk.BBOX_YMAX),
                                  fl(fk.BBOX_XMAX)], axis=1).reshape(-1, 4),
        class_ids=i(fk.CLASS_LABEL),
        class_names=tuple(x.decode("utf-8") for x in b(fk.CLASS_TEXT)),
        areas=fl(fk.AREA),
        is_crowd=i(fk.IS_CROWD).astype(bool),
        masks=(np.stack(masks) if masks else np.zeros((0, h, w), bool)),
    )


def expand_record_paths(patterns: Union[PathLike, Iterable[PathLike]]) -> List[str]:
    """Expands globs / comma-separated lists to sorted existing record files.

    Raises DataError naming the pattern when it matches nothing.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [p for p in os.fspath(patterns).split(",") if p]
    out: List[str] = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
            [pattern] if os.path.exists(pattern) else [])
        if not matches:
            raise DataError(pattern, "no TFRecord files match this path", kind="missing_file")
        out.extend(matches)
    return out


def read_examples(patterns: Union[PathLike, Iterable[PathLike]]) -> Iterator[DecodedExample]:
    """Yields every example of the matching record files, in file order.

    Raises:
      DataError: no file matches a pattern; a file is corrupt, truncated or
        not a TFRecord file; a record is not a tfmask image example (the file
        and the record are named).
    """
    from google.protobuf.message import DecodeError

    from tfmask.data.records.scan import iter_records

    for path in expand_record_paths(patterns):
        for index, raw in iter_records(path):
            try:
                yield decode_example(raw)
            except (DecodeError, IndexError, KeyError, ValueError, OSError) as exc:
                raise DataError(path, f"record {index} is not an image example in tfmask's "
                                f"format ({type(exc).__name__}: {exc})", kind="corrupt") from None
