"""Editing a pipeline.config as data: the edits the demo, the bench and the tests make.

Each function changes a parsed config (:class:`tfmask.config.textproto.Message`)
in place, by field, whatever the file's layout, whitespace or comments;
:func:`tfmask.config.textproto.write_text_file` writes it back. Usage::

    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file("configs/mask_rcnn_tiny_cpu.config")
    edit.point_at_records(msg, Path("out/records"))
    edit.set_num_steps(msg, 100)
    write_text_file("out/pipeline.config", msg)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

from tfmask.config.textproto import Message
from tfmask.errors import ConfigError

_READERS = ("train_input_reader", "eval_input_reader")


def _readers(msg: Message) -> List[Message]:
    return [r for name in _READERS for r in msg.get_all(name) if isinstance(r, Message)]


def point_at_records(msg: Message, records: Path) -> None:
    """Every reader's label map and record paths moved into ``records`` (absolute).

    Each path keeps its file name or glob (``train-?????-of-?????``): the
    shipped configs name what ``tfmask tfrecord`` writes.
    """
    folder = Path(records).resolve()
    for reader in _readers(msg):
        if reader.has("label_map_path"):
            reader.set("label_map_path", str(folder / os.path.basename(
                reader.get("label_map_path"))))
        tf_reader = reader.get("tf_record_input_reader")
        if isinstance(tf_reader, Message) and tf_reader.has("input_path"):
            tf_reader.set("input_path", [str(folder / os.path.basename(p))
                                         for p in tf_reader.get_all("input_path")])


def absolute_paths(msg: Message, base: Path) -> None:
    """Relative label map, record and checkpoint paths made absolute against ``base``.

    A copy of a config written elsewhere then names the same files.
    """
    def absolute(value):
        path = Path(os.path.expanduser(value)) if isinstance(value, str) and value else None
        return value if path is None or path.is_absolute() else str(Path(base) / path)

    for reader in _readers(msg):
        if reader.has("label_map_path"):
            reader.set("label_map_path", absolute(reader.get("label_map_path")))
        tf_reader = reader.get("tf_record_input_reader")
        if isinstance(tf_reader, Message) and tf_reader.has("input_path"):
            tf_reader.set("input_path", [absolute(p) for p in tf_reader.get_all("input_path")])
    train = msg.get("train_config")
    if isinstance(train, Message) and train.has("fine_tune_checkpoint"):
        train.set("fine_tune_checkpoint", absolute(train.get("fine_tune_checkpoint")))


def set_num_classes(msg: Message, num_classes: int) -> None:
    msg.set("model.faster_rcnn.num_classes", int(num_classes))


def learning_rate(msg: Message) -> Optional[Message]:
    """The schedule message (e.g. ``cosine_decay_learning_rate``), whatever the optimizer."""
    optimizer = msg.get_path("train_config.optimizer")
    _, kind = optimizer.oneof() if isinstance(optimizer, Message) else (None, None)
    lr = kind.get("learning_rate") if kind is not None else None
    return lr.oneof()[1] if isinstance(lr, Message) else None


def set_num_steps(msg: Message, num_steps: int, warmup_steps: Optional[int] = None) -> None:
    """``train_config.num_steps`` and the schedule's ``total_steps`` (when it has one).

    ``warmup_steps`` (if given) replaces the schedule's ``warmup_steps``.
    """
    msg.set("train_config.num_steps", int(num_steps))
    schedule = learning_rate(msg)
    if schedule is not None and schedule.has("total_steps"):
        schedule.set("total_steps", int(num_steps))
    if warmup_steps is not None:
        if schedule is None or not schedule.has("warmup_steps"):
            raise ConfigError("train_config: the learning-rate schedule has no warmup_steps")
        schedule.set("warmup_steps", int(warmup_steps))


def set_batch_size(msg: Message, batch_size: int) -> None:
    msg.set("train_config.batch_size", int(batch_size))


def set_image_size(msg: Message, size: int) -> None:
    """The image resizer's size set to ``size`` px (square), keeping its kind."""
    resizer = msg.get_path("model.faster_rcnn.image_resizer")
    kind, body = resizer.oneof() if isinstance(resizer, Message) else (None, None)
    if kind == "fixed_shape_resizer":
        body.set("height", int(size))
        body.set("width", int(size))
    elif kind == "keep_aspect_ratio_resizer":
        body.set("max_dimension", int(size))
        if body.has("min_dimension"):
            body.set("min_dimension", int(size))
    else:
        raise ConfigError("model.faster_rcnn.image_resizer must be fixed_shape_resizer or "
                          "keep_aspect_ratio_resizer")


def remove_fine_tune_checkpoint(msg: Message) -> None:
    """Training from random weights: no ``fine_tune_checkpoint`` (nor its type)."""
    for name in ("fine_tune_checkpoint", "fine_tune_checkpoint_type",
                 "fine_tune_checkpoint_version", "from_detection_checkpoint"):
        msg.remove(f"train_config.{name}")
