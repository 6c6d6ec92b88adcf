"""``tf.train.Example`` bytes and TFRecord files without importing TensorFlow.

The converter's worker processes only decode images and serialize examples;
importing TensorFlow there costs seconds and ~600 MiB per process. This
module writes exactly the bytes TensorFlow would (tests compare them with
``tf.train.Example.SerializeToString`` and ``tf.io.TFRecordWriter``):

* **Example**: the schema of TensorFlow's ``example.proto``/``feature.proto``
  (``Example.features = 1``; ``Features.feature = 1``, a ``map<string,
  Feature>``; ``Feature`` is a oneof of ``bytes_list = 1``, ``float_list = 2``,
  ``int64_list = 3``; each list's ``value = 1``, packed for numbers), declared
  here in a private descriptor pool under the protobuf package ``tfmask.wire`` so it
  never clashes with TensorFlow's own classes. Serialized by protobuf's C
  implementation; ``deterministic=True`` sorts the map keys, as TF does.
* **TFRecord framing** (TensorFlow's documented format): for each record,
  ``uint64 length``, ``uint32 masked_crc32c(length)``, ``data``,
  ``uint32 masked_crc32c(data)``, all little-endian, where
  ``masked(c) = ((c >> 15 | c << 17) + 0xa282ead8) mod 2**32``; CRC-32C by
  ``google-crc32c``.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Dict, Iterator, Sequence, Union

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build_classes():
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfmask/wire/example.proto", package="tfmask.wire", syntax="proto3")

    def message(name: str, fields, nested=()):
        msg = proto.message_type.add(name=name)
        for sub in nested:
            msg.nested_type.add().CopyFrom(sub)
        for field in fields:
            msg.field.add().CopyFrom(field)
        return msg

    def field(name, number, ftype, label=_F.LABEL_OPTIONAL, type_name="", oneof=None,
              packed=None):
        f = _F(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof
        if packed is not None:
            f.options.packed = packed
        return f

    rep = _F.LABEL_REPEATED
    message("BytesList", [field("value", 1, _F.TYPE_BYTES, rep)])
    message("FloatList", [field("value", 1, _F.TYPE_FLOAT, rep, packed=True)])
    message("Int64List", [field("value", 1, _F.TYPE_INT64, rep, packed=True)])
    feature = message("Feature", [
        field("bytes_list", 1, _F.TYPE_MESSAGE, type_name=".tfmask.wire.BytesList", oneof=0),
        field("float_list", 2, _F.TYPE_MESSAGE, type_name=".tfmask.wire.FloatList", oneof=0),
        field("int64_list", 3, _F.TYPE_MESSAGE, type_name=".tfmask.wire.Int64List", oneof=0)])
    feature.oneof_decl.add(name="kind")
    entry = descriptor_pb2.DescriptorProto(name="FeatureEntry")
    entry.field.add().CopyFrom(field("key", 1, _F.TYPE_STRING))
    entry.field.add().CopyFrom(field("value", 2, _F.TYPE_MESSAGE,
                                     type_name=".tfmask.wire.Feature"))
    entry.options.map_entry = True
    message("Features", [field("feature", 1, _F.TYPE_MESSAGE, rep,
                               type_name=".tfmask.wire.Features.FeatureEntry")],
            nested=[entry])
    message("Example", [field("features", 1, _F.TYPE_MESSAGE,
                              type_name=".tfmask.wire.Features")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tfmask.wire.{name}"))
            for name in ("Example", "Feature")}


_CLASSES = _build_classes()
Example = _CLASSES["Example"]
Feature = _CLASSES["Feature"]

FeatureValues = Union[Sequence[bytes], Sequence[float], Sequence[int]]


def serialize_example(features: Dict[str, "tuple[str, FeatureValues]"]) -> bytes:
    """``{key: (kind, values)}`` -> serialized ``tf.train.Example`` bytes.

    ``kind`` is ``"bytes"``, ``"float"`` or ``"int64"``; floats are stored as
    float32, as in TensorFlow.
    """
    example = Example()
    example.features.SetInParent()  # present even when empty, as TF writes it
    fmap = example.features.feature
    for key, (kind, values) in features.items():
        target = fmap[key]
        if kind == "bytes":
            target.bytes_list.value.extend(values)
        elif kind == "float":
            target.float_list.value.extend(values)
        elif kind == "int64":
            target.int64_list.value.extend(values)
        else:
            raise ValueError(f"unknown feature kind '{kind}'; valid: bytes, float, int64")
    return example.SerializeToString(deterministic=True)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data`` (uint32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_record(stream: BinaryIO, data: bytes) -> None:
    """Appends one TFRecord (uncompressed) holding ``data`` to a binary stream."""
    header = struct.pack("<Q", len(data))
    stream.write(header)
    stream.write(struct.pack("<I", masked_crc32c(header)))
    stream.write(data)
    stream.write(struct.pack("<I", masked_crc32c(data)))


def read_records(stream: BinaryIO) -> Iterator[bytes]:
    """Yields the data of each TFRecord in a binary stream, CRCs checked (no TensorFlow).

    Raises:
      ValueError: a truncated record or a CRC mismatch (a corrupt file).
    """
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise ValueError("truncated record header")
        (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
        if masked_crc32c(header[:8]) != crc:
            raise ValueError("record length CRC mismatch")
        data = stream.read(length)
        footer = stream.read(4)
        if len(data) < length or len(footer) < 4:
            raise ValueError("truncated record")
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise ValueError("record data CRC mismatch")
        yield data
