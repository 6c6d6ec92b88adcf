"""labelImg / Pascal-VOC XML box files.

Read with a hardened lxml parser: no entity resolution (XXE files are not
read, billion-laughs entities are not expanded), no DTD loading, no network.

Coordinates are taken as labelImg writes them and as the tutorial used them:
pixel edges ``0 <= xmin < xmax <= width`` (the mask region of a box is
``mask[ymin:ymax, xmin:xmax]``). Boxes are returned as read; clipping and
validation against the image happen in :mod:`tfmask.data.instances`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from lxml import etree

from tfmask.errors import DataError, PathLike

_MAX_XML_BYTES = 16 * 1024 * 1024


_ENTITY_REASON = ("XML declares <!ENTITY> definitions; refused (labelImg never writes them, and "
                  "expanding them can read files or exhaust memory)")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True)


def check_xml_size(path: Path, max_bytes: int, missing: str, missing_kind: str) -> None:
    """Raises DataError when the XML file is missing (``missing``, of kind
    ``missing_kind``) or larger than ``max_bytes``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(path, missing, kind=missing_kind) from None
    if size > max_bytes:
        raise DataError(path, f"XML file is {size} bytes, above the {max_bytes} limit",
                        kind="bad_xml")


def parse_xml_bytes(path: PathLike, data: bytes, parser: etree.XMLParser,
                    entity_reason: str) -> etree._Element:
    """The root element of an XML file's bytes.

    ``<!ENTITY`` definitions are refused (``entity_reason``) before parsing, so
    no parser limit or entity handling is ever relied on.

    Raises:
      DataError: (kind ``bad_xml``) entity definitions, or malformed XML (with line).
    """
    if b"<!ENTITY" in data:
        raise DataError(path, entity_reason, kind="bad_xml")
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise DataError(path, f"malformed XML: {exc.msg} (line {exc.lineno})",
                        kind="bad_xml") from None


@dataclass(frozen=True)
class VocObject:
    """One ``<object>``: class name and box ``(xmin, ymin, xmax, ymax)`` in pixels."""

    name: str
    box_xyxy_px: Tuple[float, float, float, float]
    line: int


@dataclass(frozen=True)
class VocAnnotation:
    """A parsed XML file.

    Attributes:
      path: the file.
      size_hw: ``<size>`` (height, width) in whole pixels (fractions truncated), or
        None when absent or below one pixel.
      objects: every ``<object>``, in file order.
    """

    path: str
    size_hw: Optional[Tuple[int, int]]
    objects: Tuple[VocObject, ...]


def _number(path, elem, tag: str) -> float:
    child = elem.find(tag)
    text = None if child is None else (child.text or "").strip()
    if not text:
        raise DataError(path, f"line {elem.sourceline}: <{elem.tag}> has no <{tag}>",
                        kind="bad_xml")
    try:
        value = float(text)
    except ValueError:
        raise DataError(path, f"line {child.sourceline}: <{tag}> is '{text}', not a number",
                        kind="bad_xml") from None
    # float() also reads 'nan', 'inf' and overflows like '1e999' to inf.
    if not math.isfinite(value):
        raise DataError(path, f"line {child.sourceline}: <{tag}> is '{text}', not a finite "
                        "number", kind="bad_xml")
    return value


def read_voc_xml(path: PathLike) -> VocAnnotation:
    """Parses a labelImg XML file.

    Raises:
      DataError: missing, not well-formed (with line), not an ``<annotation>``,
        an object without ``<name>`` or ``<bndbox>``, or non-numeric coordinates.
    """
    path = Path(path)
    check_xml_size(path, _MAX_XML_BYTES, "XML box file not found", "missing_xml")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read XML: {exc.strerror}", kind="unreadable") from None
    root = parse_xml_bytes(path, data, _parser(), _ENTITY_REASON)
    # The entity check of parse_xml_bytes reads the bytes; this one also covers
    # encodings where they differ (UTF-16).
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise DataError(path, _ENTITY_REASON, kind="bad_xml")
    if root.tag != "annotation":
        raise DataError(path, f"root element is <{root.tag}>, expected labelImg/Pascal-VOC "
                        "<annotation>", kind="bad_xml")
    size_hw = None
    size_elem = root.find("size")
    if size_elem is not None and size_elem.find("width") is not None:
        w, h = _number(path, size_elem, "width"), _number(path, size_elem, "height")
        if w >= 1 and h >= 1:  # a fraction below one pixel counts as zero
            size_hw = (int(h), int(w))
    objects = []
    for obj in root.iter("object"):
        name_elem = obj.find("name")
        name = None if name_elem is None else (name_elem.text or "").strip()
        if not name:
            raise DataError(path, f"line {obj.sourceline}: <object> has no <name>",
                            kind="bad_xml")
        box = obj.find("bndbox")
        if box is None:
            raise DataError(path, f"line {obj.sourceline}: <object> '{name}' has no <bndbox>",
                            kind="bad_xml")
        coords = tuple(_number(path, box, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        objects.append(VocObject(name, coords, obj.sourceline or 0))  # type: ignore[arg-type]
    return VocAnnotation(str(path), size_hw, tuple(objects))
