"""The one TFRecord writer.

Writes the OD API instance-segmentation ``tf.train.Example`` schema (keys in
:mod:`tfmask.data.records.feature_keys`), readable by the OD API and by TF Model
Garden's ``TfExampleDecoder(include_mask=True)``. Shards are named like the OD
API's ``NAME-00000-of-00004`` and assigned round robin (example ``i`` goes to
shard ``i % num_shards``). Every shard is written under a temporary name and
renamed only when the whole split is complete. Never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import zlib
from pathlib import Path
from typing import List

import numpy as np
from isal import isal_zlib

from tfmask.annotation import Sample
from tfmask.atomic import atomic_path, remove_stale_temps
from tfmask.boxes import xyxy_px_to_yxyx_norm
from tfmask.data.records import feature_keys as fk
from tfmask.data.records.wire import serialize_example, write_record
from tfmask.errors import PathLike


def encode_mask_png(mask: np.ndarray) -> bytes:
    """[H, W] bool -> PNG bytes of an 8-bit gray image with values 0/1.

    8-bit with values 0/1, not 1-bit: Model Garden's decoder casts the decoded
    values to float mask targets, and TF decodes 1-bit PNGs to 0/255. Written
    directly (IHDR, one IDAT, IEND; filter "none" on every row) rather than
    through PIL, whose adaptive row filter and zlib made mask encoding the
    converter's largest cost. The rows are compressed by ISA-L (``isal``) at
    level 1: on 512x384 masks ~10x faster than zlib's run-length mode at
    level 1 (0.035 vs 0.37 ms), files ~0.8 KB (zlib's: ~0.6 KB). Tests decode
    the output with PIL and with ``tf.io.decode_png``.
    """
    h, w = mask.shape
    rows = np.zeros((h, w + 1), np.uint8)  # column 0: each row's filter type (0)
    rows[:, 1:] = mask
    idat = isal_zlib.compress(rows, 1)  # the array buffer, no copy
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    return _PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + \
        _png_chunk(b"IEND", b"")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + \
        struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def build_example(sample: Sample) -> bytes:
    """Serializes one :class:`Sample` to ``tf.train.Example`` bytes (no TF import)."""
    image, inst = sample.image, sample.instances
    h, w = image.size_hw
    ymin, xmin, ymax, xmax = xyxy_px_to_yxyx_norm(inst.boxes_xyxy_px, (h, w)).T
    return serialize_example({
        fk.IMAGE_HEIGHT: ("int64", [h]),
        fk.IMAGE_WIDTH: ("int64", [w]),
        fk.IMAGE_FILENAME: ("bytes", [image.filename.encode("utf-8")]),
        fk.IMAGE_SOURCE_ID: ("bytes", [str(sample.source_id).encode("ascii")]),
        fk.IMAGE_KEY_SHA256: ("bytes", [hashlib.sha256(image.data).hexdigest().encode("ascii")]),
        fk.IMAGE_ENCODED: ("bytes", [image.data]),
        fk.IMAGE_FORMAT: ("bytes", [image.format.encode("ascii")]),
        fk.BBOX_XMIN: ("float", xmin.tolist()),
        fk.BBOX_YMIN: ("float", ymin.tolist()),
        fk.BBOX_XMAX: ("float", xmax.tolist()),
        fk.BBOX_YMAX: ("float", ymax.tolist()),
        fk.CLASS_TEXT: ("bytes", [n.encode("utf-8") for n in inst.class_names]),
        fk.CLASS_LABEL: ("int64", inst.class_ids.tolist()),
        fk.AREA: ("float", inst.areas_px.tolist()),
        fk.IS_CROWD: ("int64", inst.is_crowd.astype(np.int64).tolist()),
        fk.MASK: ("bytes", [encode_mask_png(m) for m in inst.masks]),
    })


def shard_paths(prefix: PathLike, num_shards: int) -> List[Path]:
    """OD API shard names: ``PREFIX-00000-of-00002``, ``PREFIX-00001-of-00002``."""
    if num_shards < 1:
        raise ValueError("num_shards must be >= 1")
    return [Path(f"{os.fspath(prefix)}-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]


class ShardedWriter:
    """Writes serialized examples round robin into shards, atomically.

    Use as a context manager. Each shard is an :func:`tfmask.atomic.atomic_path`:
    written under a hidden temporary name in the output folder and renamed to
    its final name only when the ``with`` block ends without an exception; on
    an exception the temporary files are deleted, so a final name never holds
    a partial shard.

    A writer killed outright (SIGKILL, power loss) leaves its temporary files
    behind; entering the next writer for the same prefix removes those (of any
    shard count), logs each one and lists them in ``stale_temps_removed``.
    """

    def __init__(self, prefix: PathLike, num_shards: int = 1):
        self.paths = shard_paths(prefix, num_shards)
        self.count = 0
        self._prefix = Path(prefix)
        self.stale_temps_removed: List[Path] = []
        self._writers = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "ShardedWriter":
        self.stale_temps_removed = remove_stale_temps(
            self._prefix.parent, re.escape(self._prefix.name) + r"-\d{5}-of-\d{5}")
        for path in self.stale_temps_removed:
            _log.warning("removed %s, a temporary file left by an interrupted run", path)
        with self._stack as stack:
            tmp_paths = [stack.enter_context(atomic_path(p)) for p in self.paths]
            for tmp in tmp_paths:
                stream = open(tmp, "wb")
                # Registered after the paths: on exit files close before renames.
                stack.callback(_close_synced, stream)
                self._writers.append(stream)
            self._stack = stack.pop_all()
        return self

    def write(self, serialized: bytes) -> None:
        write_record(self._writers[self.count % len(self._writers)], serialized)
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.__exit__(exc_type, exc, tb)


_log = logging.getLogger(__name__)


def _close_synced(stream) -> None:
    """Flushes to disk before the rename, so a final name never points at lost data."""
    try:
        stream.flush()
        os.fsync(stream.fileno())
    finally:
        stream.close()
