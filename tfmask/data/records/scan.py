"""Read record files checked (CRC, framing, example schema) and summarize them, without TensorFlow.

:func:`iter_records` yields each record's bytes and turns a corrupt or foreign
file into one :class:`~tfmask.errors.DataError` naming the file and the
record. :func:`scan_records` counts what a training run or an evaluation needs
to know before it starts: examples, negatives (no objects), the densest image
(most instances) and the largest image size. Used by ``tfmask train`` (the
``max_number_of_boxes`` check), ``tfmask eval``, ``tfmask preview`` and the
demo (input size and steps)::

    from tfmask.data.records.scan import scan_records
    stats = scan_records("dataset/records/train-*")
    stats.examples, stats.max_instances, stats.densest_filename
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Tuple, Union

from tfmask.data.records import feature_keys as fk
from tfmask.errors import DataError, PathLike

Patterns = Union[PathLike, Iterable[PathLike]]


def iter_records(path: PathLike) -> Iterator[Tuple[int, bytes]]:
    """``(index, data)`` of each TFRecord in one file, CRCs checked.

    Raises:
      DataError: the file cannot be read, or record ``index`` is truncated or
        fails its CRC (the file is corrupt or not a TFRecord file).
    """
    from tfmask.data.records.wire import read_records

    index = 0
    try:
        with open(path, "rb") as stream:
            for index, data in enumerate(read_records(stream)):
                yield index, data
    except FileNotFoundError:
        raise DataError(path, "no such record file", kind="missing_file") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the record file: {exc.strerror}",
                        kind="unreadable") from None
    except ValueError as exc:
        raise DataError(path, f"not a valid TFRecord file: {exc} at record {index} (the "
                        "file is corrupt or truncated; convert the dataset again)",
                        kind="corrupt") from None


def parse_example(path: PathLike, index: int, data: bytes):
    """The ``tf.train.Example`` message of one record (tfmask's wire classes).

    Raises:
      DataError: the record is not an image example (no ``image/encoded``).
    """
    from google.protobuf.message import DecodeError

    from tfmask.data.records.wire import Example

    try:
        example = Example.FromString(data)
    except DecodeError as exc:
        raise DataError(path, f"record {index} is not a tf.train.Example ({exc})",
                        kind="corrupt") from None
    if fk.IMAGE_ENCODED not in example.features.feature:
        raise DataError(path, f"record {index} is not an image example (no "
                        f"{fk.IMAGE_ENCODED})", kind="corrupt")
    return example


@dataclass
class RecordStats:
    """What a set of record files holds.

    Attributes:
      files: the record files read, sorted.
      examples: number of examples.
      negatives: examples without any object.
      instances: objects in all.
      max_instances: objects in the densest example (0 when all are negatives).
      densest_filename: that example's ``image/filename`` (None without objects).
      densest_file: the record file it is in.
      max_size_hw: (height, width) of the largest image, by pixel count.
      instance_counts: objects per example, in file order.
    """

    files: List[str]
    examples: int = 0
    negatives: int = 0
    instances: int = 0
    max_instances: int = 0
    densest_filename: Union[str, None] = None
    densest_file: Union[str, None] = None
    max_size_hw: Tuple[int, int] = (0, 0)
    instance_counts: List[int] = field(default_factory=list, repr=False)


def scan_records(patterns: Patterns) -> RecordStats:
    """Reads every record of the matching files (globs or comma-separated) and counts.

    Raises:
      DataError: a pattern matches nothing, or a file is corrupt or holds
        records that are not image examples (the file and record are named).
    """
    from tfmask.data.records.reader import expand_record_paths

    files = expand_record_paths(patterns)
    stats = RecordStats(files=files)
    for path in files:
        for index, data in iter_records(path):
            feature = parse_example(path, index, data).features.feature
            count = len(feature[fk.BBOX_XMIN].float_list.value) if fk.BBOX_XMIN in feature else 0
            stats.examples += 1
            stats.instances += count
            stats.instance_counts.append(count)
            stats.negatives += count == 0
            if count > stats.max_instances:
                stats.max_instances = count
                names = feature[fk.IMAGE_FILENAME].bytes_list.value
                stats.densest_filename = names[0].decode("utf-8", "replace") if names else "?"
                stats.densest_file = str(path)
            h = feature[fk.IMAGE_HEIGHT].int64_list.value if fk.IMAGE_HEIGHT in feature else []
            w = feature[fk.IMAGE_WIDTH].int64_list.value if fk.IMAGE_WIDTH in feature else []
            if h and w and h[0] * w[0] > stats.max_size_hw[0] * stats.max_size_hw[1]:
                stats.max_size_hw = (int(h[0]), int(w[0]))
    return stats
