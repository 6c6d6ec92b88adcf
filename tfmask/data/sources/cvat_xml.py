"""CVAT for images 1.1 XML -> the same records (``tfmask tfrecord --cvat-xml FILE``).

What CVAT's "CVAT for images 1.1" export holds::

    annotations.xml
      <annotations><version>1.1</version><meta>... <labels><label><name>cup</name>...
        <image id="0" name="a.jpg" width="640" height="480">
          <polygon label="cup" points="10.5,20.0;30.0,20.0;..." z_order="0" group_id="1"/>
          <box label="cup" xtl="10.00" ytl="20.00" xbr="30.00" ybr="40.00"/>
          <mask label="cup" rle="5, 3, 10, ..." left="12" top="7" width="20" height="9"/>
          <ellipse label="cup" cx="50" cy="40" rx="10" ry="6" rotation="0"/>
    images/a.jpg       (or images/SUBSET/a.jpg, or beside the XML)

Coordinates are pixel edges (:mod:`tfmask.data.polygons`). A mask's ``rle``
is CVAT's own run-length code, not COCO's: comma-separated run lengths over
the ``width`` x ``height`` box at (``left``, ``top``), read row by row
(row-major), starting with a run of background pixels (0 when the first
pixel is set) and alternating; the runs add up to ``width * height``. Shapes
with one non-zero ``group_id`` (and label) are one instance. Polylines,
points, tags, skeletons and cuboids have no area: skipped and reported.
Classes come from ``<meta>``'s labels, in their order (else the labels used,
sorted), unless a label map is given. Items are in file order;
item ``i`` gets ``source_id = i + 1``.

The XML is parsed like labelImg files (:mod:`tfmask.data.sources.voc_xml`):
no entities, no DTD, no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from lxml import etree

from tfmask.config.label_map import LabelMap
from tfmask.data import polygons
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, SourceOptions, run_guarded
from tfmask.data.sources.shapes import (Part, finish_parts, finite_number, first_few,
                                        label_map_for, load_checked_image)
from tfmask.data.sources.voc_xml import check_xml_size, parse_xml_bytes
from tfmask.errors import DataError, PathLike

AREA_SHAPES = ("polygon", "box", "mask", "ellipse")
NO_AREA_SHAPES = ("polyline", "points", "tag", "skeleton", "cuboid")
_MAX_XML_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class CvatShape:
    """One ``<image>`` child: its tag, line and attributes."""

    tag: str
    line: int
    attrib: Tuple[Tuple[str, str], ...]

    def get(self, key: str, default=None):
        return dict(self.attrib).get(key, default)


@dataclass(frozen=True)
class CvatItem:
    source_id: int
    xml_path: str
    image_path: str
    size_hw: Optional[Tuple[int, int]]
    shapes: Tuple[CvatShape, ...]


class CvatOptions(SourceOptions):
    """How to convert a CVAT XML item: nothing beyond :class:`SourceOptions`."""


def _parse(path: Path) -> etree._Element:
    check_xml_size(path, _MAX_XML_BYTES, "CVAT XML file not found", "missing_file")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=True, remove_comments=True)
    root = parse_xml_bytes(path, path.read_bytes(), parser, "XML declares <!ENTITY> "
                           "definitions; refused (CVAT never writes them)")
    if root.tag != "annotations":
        raise DataError(path, f"root element is <{root.tag}>, expected CVAT's <annotations>",
                        kind="bad_xml")
    if root.find("track") is not None:
        raise DataError(path, "holds <track> elements: this is 'CVAT for video'; export the "
                        "task as 'CVAT for images 1.1'", kind="bad_xml")
    return root


def _find_image(xml_path: Path, name: str, subset: Optional[str]) -> Path:
    base = xml_path.parent
    candidates = [base / "images" / name] + ([base / "images" / subset / name] if subset
                                             else []) + [base / name]
    return next((c for c in candidates if c.is_file()), candidates[0])


def scan(xml_path: PathLike, label_map_path: Optional[PathLike] = None
         ) -> Tuple[List[CvatItem], LabelMap, List[Problem]]:
    """Reads every ``<image>`` of the file.

    Raises:
      DataError: malformed XML (with line), an image without name or with a
        bad size, a label not in the given label map, no images.
    """
    xml_path = Path(xml_path)
    root = _parse(xml_path)
    meta_labels = [e.text.strip() for e in root.iterfind("meta//labels/label/name")
                   if e.text and e.text.strip()]
    items: List[CvatItem] = []
    used = set()
    for image in root.iterfind("image"):
        name = image.get("name")
        if not name:
            raise DataError(xml_path, f"line {image.sourceline}: <image> has no name",
                            kind="bad_xml")
        size_hw = None
        if image.get("width") is not None or image.get("height") is not None:
            where = f"line {image.sourceline}: <image name='{name}'>"
            w = finite_number(image.get("width"), xml_path, where + " width")
            h = finite_number(image.get("height"), xml_path, where + " height")
            if w < 1 or h < 1 or w != int(w) or h != int(h):
                raise DataError(xml_path, f"{where} has size {w:g}x{h:g}; expected whole "
                                "pixels", kind="bad_xml")
            size_hw = (int(h), int(w))
        shapes = []
        for child in image:
            if not isinstance(child.tag, str):
                continue
            if child.tag not in AREA_SHAPES + NO_AREA_SHAPES:
                raise DataError(xml_path, f"line {child.sourceline}: unknown element "
                                f"<{child.tag}> in <image>", kind="bad_xml")
            label = child.get("label")
            if not label:
                raise DataError(xml_path, f"line {child.sourceline}: <{child.tag}> has no "
                                "label", kind="bad_xml")
            if child.tag in AREA_SHAPES:
                used.add(label)
            shapes.append(CvatShape(child.tag, child.sourceline or 0,
                                    tuple(sorted(child.attrib.items()))))
        image_path = _find_image(xml_path, name, image.get("subset"))
        items.append(CvatItem(len(items) + 1, str(xml_path), str(image_path), size_hw,
                              tuple(shapes)))
    if not items:
        raise DataError(xml_path, "no <image> elements: export the task as 'CVAT for images "
                        "1.1'", kind="bad_xml")
    order = meta_labels + sorted(used - set(meta_labels)) if meta_labels else None
    label_map = label_map_for(used, label_map_path, xml_path, order=order)
    return items, label_map, []


def decode_rle(path, where: str, shape: CvatShape, size_hw: Tuple[int, int]) -> np.ndarray:
    """[H, W] bool of a ``<mask>`` (CVAT's run lengths, see the module docstring)."""
    h, w = size_hw
    try:
        left, top, width, height = (int(shape.get(k, "")) for k in
                                    ("left", "top", "width", "height"))
        runs = np.array([int(v) for v in shape.get("rle", "").split(",")], np.int64)
    except ValueError:
        raise DataError(path, f"{where}: needs integer 'left', 'top', 'width', 'height' and "
                        "a comma-separated 'rle'", kind="bad_annotation") from None
    if width < 1 or height < 1 or (runs < 0).any():
        raise DataError(path, f"{where}: negative run or empty box", kind="bad_annotation")
    if int(runs.sum()) != width * height:
        raise DataError(path, f"{where}: the runs add up to {int(runs.sum())} pixels, but the "
                        f"{width}x{height} box has {width * height}", kind="bad_annotation")
    if left < 0 or top < 0 or left + width > w or top + height > h:
        raise DataError(path, f"{where}: the {width}x{height} box at ({left},{top}) is "
                        f"outside the {w}x{h} image", kind="bad_annotation")
    values = np.arange(len(runs)) % 2 == 1  # even runs are background
    crop = np.repeat(values, runs).reshape(height, width)
    mask = np.zeros(size_hw, bool)
    mask[top:top + height, left:left + width] = crop
    return mask


def shape_mask(path, shape: CvatShape, size_hw: Tuple[int, int]) -> np.ndarray:
    """[H, W] bool pixels of one area shape."""
    where = f"line {shape.line}: <{shape.tag} label='{shape.get('label')}'>"
    num = partial(finite_number, path=path, where=where)
    if shape.tag == "mask":
        return decode_rle(path, where, shape, size_hw)
    if shape.tag == "box":
        x0, y0, x1, y1 = (num(shape.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
        if not (x1 > x0 and y1 > y0):
            raise DataError(path, f"{where} is inverted or has zero area (needs xtl < xbr "
                            "and ytl < ybr)", kind="bad_box")
        ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return _rotated(polygons.rasterize([ring], size_hw), ring, shape, size_hw)
    if shape.tag == "ellipse":
        cx, cy, rx, ry = (num(shape.get(k)) for k in ("cx", "cy", "rx", "ry"))
        angle = np.deg2rad(num(shape.get("rotation", "0")))
        ys, xs = np.mgrid[0:size_hw[0], 0:size_hw[1]]
        dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        return (u / max(rx, 1e-9)) ** 2 + (v / max(ry, 1e-9)) ** 2 <= 1.0
    text = shape.get("points", "")
    try:
        points = np.array([[float(v) for v in pair.split(",")] for pair in text.split(";")],
                          np.float64)
    except ValueError:
        points = np.zeros((0, 3))
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3 \
            or not np.isfinite(points).all():
        raise DataError(path, f"{where}: 'points' must be at least 3 'x,y' pairs separated "
                        "by ';'", kind="bad_annotation")
    return polygons.rasterize([points], size_hw)


def _rotated(mask, ring, shape: CvatShape, size_hw) -> np.ndarray:
    """A box with CVAT's ``rotation`` (degrees, clockwise about its centre)."""
    angle = float(shape.get("rotation", "0") or 0)
    if angle == 0:
        return mask
    centre = ring.mean(axis=0)
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return polygons.rasterize([(ring - centre) @ rot.T + centre], size_hw)


def _convert(item: CvatItem, opts: CvatOptions) -> ItemResult:
    if not Path(item.image_path).is_file():
        name = Path(item.image_path).name
        raise DataError(item.xml_path, f"image '{name}' not found (looked in images/, "
                        f"images/SUBSET/ and beside the XML: {item.image_path})",
                        kind="missing_image")
    image, problems = load_checked_image(item.image_path, item.size_hw, item.xml_path,
                                         opts.max_image_pixels)
    parts, skipped = [], []
    for k, shape in enumerate(item.shapes):
        if shape.tag in NO_AREA_SHAPES:
            skipped.append(f"line {shape.line} <{shape.tag}>")
            continue
        group = shape.get("group_id", "0") or "0"
        label = shape.get("label")
        key = ("group", label, group) if group != "0" else ("shape", k)
        parts.append(Part(label, key, shape_mask(item.xml_path, shape, image.size_hw),
                          f"line {shape.line}: <{shape.tag}>"))
    if skipped:
        problems.append(Problem("ignored_shape", item.xml_path,
                                f"{Path(item.image_path).name}: {len(skipped)} shape(s) "
                                f"without area skipped ({first_few(skipped)})"))
    return finish_parts(image, item.source_id, parts, problems, opts, item.xml_path)


def convert_item(item: CvatItem, opts: CvatOptions) -> ItemResult:
    """Converts one ``<image>``; input errors are returned in ``ItemResult.error``."""
    return run_guarded(item.image_path, partial(_convert, item, opts))
