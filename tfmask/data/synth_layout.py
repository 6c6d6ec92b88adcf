"""The tutorial layout that the synthetic sets are written in, and its files' formats.

:mod:`tfmask.data.synth` and :mod:`tfmask.data.synth_photo` draw photos and
class maps; :class:`TutorialLayout` writes them the way ``tfmask tfrecord``
reads them::

    OUT/train_images/image0001.jpg   RGB photo (JPEG quality 90, or PNG)
    OUT/train_masks/image0001.png    class mask: background 0, each class its own value
    OUT/train_bboxes/image0001.xml   labelImg Pascal-VOC XML, one <object> per instance
    OUT/test_images/test0001.jpg     photos without labels
    OUT/label.pbtxt                  item { id: 1 name: 'speaker076' } ...

Boxes in the XML are ``(xmin, ymin, xmax, ymax)`` pixel edges: xmin is the
first column of the object, xmax its last column + 1. Every file is written
atomically.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Tuple

import numpy as np
from lxml import etree
from PIL import Image

from tfmask.atomic import atomic_write
from tfmask.config.label_map import LabelClass, LabelMap
from tfmask.errors import ConfigError

if TYPE_CHECKING:
    from tfmask.data.synth import SynthClass

MASK_MODES = ("L", "RGB", "P")
_SAVE_OPTIONS = {"jpg": {"format": "JPEG", "quality": 90}, "png": {"format": "PNG"}}
IMAGE_FORMATS = tuple(_SAVE_OPTIONS)
_SUBDIRS = ("train_images", "train_masks", "train_bboxes", "test_images")
_OWN_FILE_RE = re.compile(r"(image|test)\d{4,}\.(jpg|png|xml)")
# Mask colours (RGB and P modes) are picked near these, by class position.
_MASK_ANCHORS = ((255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255), (255, 0, 255),
                 (0, 255, 255), (255, 128, 0), (128, 0, 255))


def example_stem(split: int, index: int) -> str:
    """``image0001`` for train image 1 (split 0), ``test0001`` for test image 1 (split 1)."""
    return f"{'image' if split == 0 else 'test'}{index:04d}"


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuses a folder holding a dataset; with ``overwrite``, removes our old files."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    existing = [p for sub in _SUBDIRS if (out / sub).is_dir()
                for p in sorted((out / sub).iterdir()) if not p.name.startswith(".")]
    if existing and not overwrite:
        raise ConfigError(f"{out} already has dataset files ({existing[0]} and "
                          f"{len(existing) - 1} more); choose another folder or pass "
                          "--overwrite (overwrite=True)")
    for p in existing:  # stale images of a larger earlier run would not match the new set
        if p.is_file() and _OWN_FILE_RE.fullmatch(p.name):
            p.unlink()


@dataclass(frozen=True)
class TutorialLayout:
    """Writes one synthetic set's files under ``out``.

    Attributes:
      out: the dataset folder (see :func:`prepare_out_dir`).
      classes: the classes; class index i is ``classes[i]``, class map value i + 1.
      mask_mode: ``L``, ``RGB`` or ``P`` class masks.
      size_hw: (height, width) of every image, for the XML.
    """

    out: Path
    classes: Tuple["SynthClass", ...]
    mask_mode: str
    size_hw: Tuple[int, int]

    def write_test_image(self, image_name: str, image_bytes: bytes) -> None:
        atomic_write(self.out / "test_images" / image_name, image_bytes)

    def write_train_example(self, image_name: str, image_bytes: bytes, class_map: np.ndarray,
                            objects) -> None:
        """The photo, its class mask (``class_map``: 0 background, i + 1 class i) and its
        labelImg XML (``objects``: [(class index, (xmin, ymin, xmax, ymax) pixel edges)])."""
        stem = Path(image_name).stem
        atomic_write(self.out / "train_images" / image_name, image_bytes)
        atomic_write(self.out / "train_masks" / f"{stem}.png",
                     encode_image(mask_image(class_map, self.mask_mode, self.classes), "png"))
        atomic_write(self.out / "train_bboxes" / f"{stem}.xml",
                     voc_xml(image_name, self.size_hw, objects, self.classes))

    def finish(self) -> None:
        """``test_images/`` (even when empty) and ``label.pbtxt`` (names with gray suffixes)."""
        (self.out / "test_images").mkdir(parents=True, exist_ok=True)
        LabelMap(tuple(LabelClass(i + 1, f"{c.name}{c.gray:03d}")
                       for i, c in enumerate(self.classes))).write(self.out / "label.pbtxt")


@functools.lru_cache(maxsize=1)
def _rgb_candidates() -> Tuple[np.ndarray, np.ndarray]:
    """Colours (R and B on a step-17 grid, every G) and their PIL gray levels.

    The gray levels come from PIL itself, so they match ``convert('L')`` exactly.
    Every level 0..255 occurs: G alone moves the level by less than 1 per step.
    """
    r, b, g = np.meshgrid(np.arange(0, 256, 17), np.arange(0, 256, 17), np.arange(256),
                          indexing="ij")
    rgb = np.stack([r, g, b], -1).astype(np.uint8).reshape(256, 256, 3)
    levels = np.asarray(Image.fromarray(rgb).convert("L"))
    return rgb.reshape(-1, 3), levels.reshape(-1)


def mask_rgb_for_gray(gray: int, position: int = 0) -> Tuple[int, int, int]:
    """A mask colour whose PIL ``convert('L')`` is exactly ``gray``.

    Picked nearest to the ``position``-th anchor colour (red, green, yellow,
    blue, ...): 76 gives pure red, 150 pure green, 226 yellow.
    """
    rgb, levels = _rgb_candidates()
    candidates = rgb[levels == gray].astype(np.int64)
    anchor = np.array(_MASK_ANCHORS[position % len(_MASK_ANCHORS)])
    best = candidates[np.argmin(((candidates - anchor) ** 2).sum(1))]
    return tuple(int(v) for v in best)


def encode_image(image: Image.Image, fmt: str) -> bytes:
    """``image`` as ``jpg`` (quality 90) or ``png`` bytes."""
    buf = io.BytesIO()
    image.save(buf, **_SAVE_OPTIONS[fmt])
    return buf.getvalue()


def mask_image(class_map: np.ndarray, mode: str, classes: Sequence["SynthClass"]) -> Image.Image:
    """Class map (0 background, i + 1 = classes[i]) -> mask in the given PIL mode."""
    if mode == "L":
        return Image.fromarray(np.array([0] + [c.gray for c in classes], np.uint8)[class_map])
    colours = np.array([(0, 0, 0)] + [mask_rgb_for_gray(c.gray, i)
                                      for i, c in enumerate(classes)], np.uint8)
    if mode == "RGB":
        return Image.fromarray(colours[class_map])
    image = Image.frombytes("P", class_map.shape[::-1], class_map.tobytes())
    image.putpalette(colours.ravel().tolist())
    return image


def _xml(tag: str, content) -> etree._Element:
    """An element from ``content``: its text, or a list of (tag, content) children."""
    elem = etree.Element(tag)
    if isinstance(content, list):
        elem.extend(_xml(*child) for child in content)
    else:
        elem.text = str(content)
    return elem


def voc_xml(image_name: str, size_hw, objects, classes: Sequence["SynthClass"]) -> bytes:
    """labelImg XML; ``<path>`` is relative to the dataset folder, so files are portable."""
    fields = [("folder", "train_images"), ("filename", image_name),
              ("path", f"train_images/{image_name}"), ("source", [("database", "Unknown")]),
              ("size", [("width", size_hw[1]), ("height", size_hw[0]), ("depth", 3)]),
              ("segmented", 0)]
    fields += [("object", [("name", classes[k].name), ("pose", "Unspecified"),
                           ("truncated", 0), ("difficult", 0),
                           ("bndbox", list(zip(("xmin", "ymin", "xmax", "ymax"), box)))])
               for k, box in objects]
    return etree.tostring(_xml("annotation", fields), pretty_print=True, encoding="utf-8")
