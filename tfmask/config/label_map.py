"""OD API label maps (``StringIntLabelMap`` text format) and class pixel values.

The tutorial's convention: the last three characters of each item's ``name``
are the mask pixel value of the class and the rest is the class name::

    item { id: 1 name: 'speaker076' }   # class "speaker", gray level 76

Label maps without that suffix get their pixel values from explicit
``NAME=VALUE`` pairs (a gray level ``76`` or an RGB triple ``255,0,0``), see
:func:`parse_class_pixel` and :meth:`LabelMap.with_pixels`.

tfmask writes a *clean* label map beside the records (plain class names, same
ids), which training, export and inference read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from google.protobuf import text_encoding

from tfmask.atomic import atomic_write
from tfmask.errors import ConfigError, DataError, PathLike
from tfmask.config.textproto import Message, parse_text, read_text

PixelValue = Tuple[int, ...]  # (gray,) or (r, g, b)
MAX_ID = 2 ** 31 - 1  # the OD API's StringIntLabelMapItem.id is an int32


@dataclass(frozen=True)
class LabelClass:
    """One class of a label map.

    Attributes:
      id: label-map id, >= 1 (0 is the background in the OD API and Model Garden).
      name: plain class name (``speaker``), without a pixel suffix.
      pixel_value: the mask colour of this class: ``(gray,)`` compared with the
        mask's PIL ``convert('L')``, or ``(r, g, b)`` compared with ``convert('RGB')``;
        ``None`` when unknown (COCO input needs none).
    """

    id: int
    name: str
    pixel_value: Optional[PixelValue] = None


@dataclass(frozen=True)
class LabelMap:
    """An ordered, validated set of classes (ids unique and >= 1, names unique)."""

    classes: Tuple[LabelClass, ...]
    path: Optional[str] = None

    def __post_init__(self):
        if not self.classes:
            raise DataError(self.path, "the label map has no items; add "
                            "item { id: 1 name: 'NAME' } entries", kind="label_map")
        seen_ids: Dict[int, str] = {}
        seen_names: Dict[str, int] = {}
        for c in self.classes:
            if not isinstance(c.id, int) or isinstance(c.id, bool) or c.id < 1:
                raise DataError(self.path, f"item '{c.name}' has id {c.id!r}; ids must be "
                                "integers >= 1 (0 is reserved for the background)",
                                kind="label_map")
            if c.id > MAX_ID:
                raise DataError(self.path, f"item '{c.name}' has id {c.id}, above {MAX_ID}, "
                                "the largest id a label map can hold", kind="label_map")
            if c.pixel_value is not None and not _valid_pixel(c.pixel_value):
                raise DataError(self.path, f"class '{c.name}' has pixel value "
                                f"{c.pixel_value!r}; expected a gray level 1-255 or an RGB "
                                "triple of 0-255 other than (0,0,0), the background",
                                kind="label_map")
            if c.id in seen_ids:
                raise DataError(self.path, f"id {c.id} is used twice ('{seen_ids[c.id]}' "
                                f"and '{c.name}')", kind="label_map")
            if c.name in seen_names:
                raise DataError(self.path, f"class name '{c.name}' is used twice (ids "
                                f"{seen_names[c.name]} and {c.id})", kind="label_map")
            seen_ids[c.id] = c.name
            seen_names[c.name] = c.id
        values = [c.pixel_value for c in self.classes if c.pixel_value is not None]
        if len(set(values)) != len(values):
            dup = sorted({v for v in values if values.count(v) > 1})
            raise DataError(self.path, f"pixel value(s) {', '.join(_fmt(v) for v in dup)} "
                            "belong to more than one class", kind="label_map")
        if len({len(v) for v in values}) > 1:
            raise ConfigError("class pixel values mix gray levels and RGB triples; "
                              "use one kind for every class")

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.classes]

    @property
    def max_id(self) -> int:
        """The largest id; Model Garden's ``num_classes`` is ``max_id + 1``."""
        return max(c.id for c in self.classes)

    @property
    def matches_rgb(self) -> bool:
        """True when the pixel values are RGB triples (masks matched by colour)."""
        return any(c.pixel_value is not None and len(c.pixel_value) == 3
                   for c in self.classes)

    def by_name(self, name: str) -> Optional[LabelClass]:
        for c in self.classes:
            if c.name == name:
                return c
        return None

    def by_id(self, class_id: int) -> Optional[LabelClass]:
        for c in self.classes:
            if c.id == class_id:
                return c
        return None

    def with_pixels(self, pixels: Mapping[str, PixelValue]) -> "LabelMap":
        """Returns a copy whose pixel values come from an explicit mapping.

        Every class must be given a value and every given name must be a class.
        """
        unknown = sorted(set(pixels) - set(self.names))
        if unknown:
            raise ConfigError(f"class_pixels: {', '.join(unknown)} are not in the "
                              f"label map {self.path} (classes: {', '.join(self.names)})",
                              params=("class_pixels",))
        missing = [n for n in self.names if n not in pixels]
        if missing:
            raise ConfigError(f"class_pixels gives no value for {', '.join(missing)}; "
                              "give one for every class of the label map", params=("class_pixels",))
        return LabelMap(tuple(replace(c, pixel_value=tuple(pixels[c.name]))
                              for c in self.classes), self.path)

    def to_text(self) -> str:
        """Plain-name label map text (OD API ``StringIntLabelMap`` format)."""
        lines = []
        for c in self.classes:
            # C escapes as protobuf writes them, so any name (quotes, newlines,
            # control characters) reads back unchanged.
            name = text_encoding.CEscape(c.name, as_utf8=True)
            lines.append(f"item {{\n  id: {c.id}\n  name: '{name}'\n}}\n")
        return "".join(lines)

    def write(self, path: PathLike) -> None:
        """Writes the plain-name label map atomically."""
        atomic_write(path, self.to_text())


def _valid_pixel(value) -> bool:
    """A gray level 1-255 or an RGB triple 0-255; 0 and (0,0,0) are the background."""
    return (isinstance(value, tuple) and len(value) in (1, 3)
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                    for v in value)
            and any(value))


def _fmt(value: PixelValue) -> str:
    return str(value[0]) if len(value) == 1 else "(" + ",".join(map(str, value)) + ")"


def format_pixel_value(value: PixelValue) -> str:
    """``(76,)`` -> ``"76"``; ``(255, 0, 0)`` -> ``"(255,0,0)"``."""
    return _fmt(value)


def _items(msg: Message, path: Optional[str]) -> List[Tuple[int, str, int]]:
    """(id, name, line) of each item, checking each has both fields."""
    extra = [name for name in msg.fields if name != "item"]
    if extra:
        raise DataError(path, f"line {msg.line_of(extra[0])}: unexpected field '{extra[0]}'"
                        "; a label map holds only item { ... } entries", kind="label_map")
    out = []
    for item in msg.get_all("item"):
        if not isinstance(item, Message):
            raise DataError(path, f"line {item}: 'item' must be a message", kind="label_map")
        class_id = item.get("id")
        name = item.get("name")
        if name is None:
            name = item.get("display_name")
        if class_id is None or name is None:
            raise DataError(path, f"line {item.line}: item needs both 'id' and 'name'",
                            kind="label_map")
        if not isinstance(class_id, int) or isinstance(class_id, bool):
            raise DataError(path, f"line {item.line_of('id')}: id {class_id!r} is not an "
                            "integer", kind="label_map")
        if not isinstance(name, str) or not name:
            raise DataError(path, f"line {item.line_of('name')}: name must be a non-empty "
                            "quoted string", kind="label_map")
        out.append((class_id, str(name), item.line))
    return out


def parse_label_map(text: str, path: Optional[PathLike] = None,
                    pixel_suffix: bool = True) -> LabelMap:
    """Parses label-map text.

    Args:
      text: ``StringIntLabelMap`` text format.
      path: file name for error messages.
      pixel_suffix: split the tutorial's three-digit pixel suffix off each name
        (``speaker076`` -> class ``speaker``, gray level 76). When False, names
        are kept as they are and pixel values stay unknown.

    Raises:
      DataError: syntax errors (line, column), missing fields, id < 1,
        duplicate ids or names, a name without a valid pixel suffix.
    """
    spath = None if path is None else str(path)
    classes = []
    for class_id, name, line in _items(parse_text(text, spath), spath):
        if pixel_suffix:
            suffix, plain = name[-3:], name[:-3]
            # isascii(): str.isdigit() also accepts digits such as '²' that int() refuses.
            if len(name) < 4 or not (suffix.isascii() and suffix.isdigit()) or not plain:
                raise DataError(spath, f"line {line}: name '{name}' does not end in a "
                                "three-digit mask pixel value (e.g. 'speaker076' = class "
                                "speaker, pixel 76); rename it or give the values with "
                                "--class-pixel NAME=VALUE", kind="label_map")
            if int(suffix) > 255:
                raise DataError(spath, f"line {line}: pixel suffix {suffix} of '{name}' is "
                                "above 255, the largest gray level", kind="label_map")
            if int(suffix) == 0:
                raise DataError(spath, f"line {line}: pixel suffix 000 of '{name}' is the "
                                "background gray level; classes use 1-255", kind="label_map")
            classes.append(LabelClass(class_id, plain, (int(suffix),)))
        else:
            classes.append(LabelClass(class_id, name))
    return LabelMap(tuple(classes), spath)


def read_label_map(path: PathLike, pixel_suffix: bool = True) -> LabelMap:
    """Reads a label-map file; see :func:`parse_label_map`."""
    return parse_label_map(read_text(path), path, pixel_suffix)


def parse_class_pixel(spec: str) -> Tuple[str, PixelValue]:
    """Parses one ``--class-pixel`` value: ``speaker=76`` or ``cup=255,0,0``."""
    name, sep, value = spec.partition("=")
    name = name.strip()
    parts = [p.strip() for p in value.split(",")]
    if not sep or not name or len(parts) not in (1, 3) \
            or not all(p.isascii() and p.isdigit() for p in parts):
        raise ConfigError(f"class_pixels '{spec}': expected NAME=GRAY (0-255) or "
                          "NAME=R,G,B, e.g. speaker=76 or cup=255,0,0", params=("class_pixels",))
    pixel = tuple(int(p) for p in parts)
    if max(pixel) > 255:
        raise ConfigError(f"class_pixels '{spec}': values must be 0-255", params=("class_pixels",))
    if max(pixel) == 0:
        raise ConfigError(f"class_pixels '{spec}': {_fmt(pixel)} is the background; "
                          "give the class another value", params=("class_pixels",))
    return name, pixel


def class_pixels_from_specs(specs: Iterable[str]) -> Dict[str, PixelValue]:
    """Parses several ``--class-pixel`` values; a class given twice is an error."""
    out: Dict[str, PixelValue] = {}
    for spec in specs:
        name, pixel = parse_class_pixel(spec)
        if name in out:
            raise ConfigError(f"class_pixels gives class '{name}' twice", params=("class_pixels",))
        out[name] = pixel
    return out


def load_label_map(path: PathLike, class_pixel_specs: Sequence[str] = ()) -> LabelMap:
    """The label map as the converter uses it.

    Without ``--class-pixel`` values the tutorial's name suffix gives the pixel
    values; with them, names are taken as they are and the values come from
    the specs.
    """
    if class_pixel_specs:
        return read_label_map(path, pixel_suffix=False).with_pixels(
            class_pixels_from_specs(class_pixel_specs))
    return read_label_map(path, pixel_suffix=True)
