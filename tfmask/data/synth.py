"""Synthetic datasets in the tutorial layout: photos, class masks, labelImg XML.

Writes a folder that ``tfmask tfrecord`` reads as it is
(:class:`~tfmask.data.synth_layout.TutorialLayout`)::

    OUT/train_images/image0001.jpg   RGB photo (JPEG quality 90, or PNG)
    OUT/train_masks/image0001.png    class mask: background 0, each class its own value
    OUT/train_bboxes/image0001.xml   labelImg Pascal-VOC XML, one <object> per instance
    OUT/test_images/test0001.jpg     photos without labels
    OUT/label.pbtxt                  item { id: 1 name: 'speaker076' } ...

Backgrounds are textured; objects (rectangles, ellipses, polygons) show their
class in colour, texture and preferred shape. Later objects occlude earlier ones;
objects of one class keep ``MIN_GAP_PX`` apart (connected components split
them) except in a few deliberate same-class overlaps. Objects left with fewer
than ``MIN_VISIBLE_PX`` visible pixels are removed from photo, mask and XML.
Masks have hard edges; the same seed gives byte-identical files. Run::

    tfmask synth --out dataset --num-train 48 --num-test 6 --size 256x192 --seed 0
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from tfmask.data.synth_layout import (IMAGE_FORMATS, MASK_MODES, TutorialLayout, encode_image,
                                      example_stem, prepare_out_dir)
from tfmask.errors import ConfigError, PathLike

SHAPES = ("rectangle", "ellipse", "polygon")
MIN_VISIBLE_PX = 20  # fewer visible pixels: the object is removed from the image
MIN_GAP_PX = 2  # background pixels between two objects of one class (unless overlapping)
MAX_OBJECTS = 50
_SIZE_RANGE = (32, 4096)
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SynthClass:
    """One class of a synthetic set.

    Attributes:
      name: plain class name (``speaker``): letters, digits, ``_``, ``-``, ``.``.
      gray: mask gray level 1..255 and the label map's three-digit suffix. RGB and
        P masks use a colour whose PIL ``convert('L')`` is exactly this level.
      photo_rgb: the class's main colour in the photos; None picks a hue from
        the class's position in the class list.
    """

    name: str
    gray: int
    photo_rgb: Optional[Tuple[int, int, int]] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise ConfigError(f"class name {self.name!r}: use letters, digits, '_', '-' "
                              "or '.'")
        if not _is_int(self.gray) or not 1 <= self.gray <= 255:
            raise ConfigError(f"class '{self.name}': gray level {self.gray!r} must be an "
                              "integer 1..255 (0 is the background)")
        rgb = self.photo_rgb
        if rgb is not None and not (len(rgb) == 3 and all(_is_int(v) and 0 <= v <= 255
                                                          for v in rgb)):
            raise ConfigError(f"class '{self.name}': photo_rgb {self.photo_rgb!r} must be "
                              "three integers 0..255")


DEFAULT_CLASSES = (
    SynthClass("speaker", 76, (50, 50, 62)),    # dark, light grille dots, boxy
    SynthClass("cup", 150, (205, 55, 45)),      # red, white stripes, round
    SynthClass("bottle", 226, (40, 150, 70)),   # green, glossy highlight, polygonal
)


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` wrote.

    Attributes:
      out_dir: the dataset folder.
      num_train, num_test: images written per split.
      objects_per_class: labelled train objects (XML boxes) per class name.
      dropped_objects: train objects removed for having < MIN_VISIBLE_PX visible pixels.
      mask_mode: ``L``, ``RGB`` or ``P``.
    """

    out_dir: str
    num_train: int
    num_test: int
    objects_per_class: Dict[str, int]
    dropped_objects: int
    mask_mode: str

    def format(self) -> str:
        per_class = ", ".join(f"{n} {name}" for name, n in self.objects_per_class.items())
        return (f"wrote {self.num_train} train + {self.num_test} test images to "
                f"{self.out_dir} ({per_class}; {self.mask_mode} masks)")


@dataclass(frozen=True)
class _Placed:
    class_index: int
    region: np.ndarray  # bool HxW: the whole shape, before occlusion
    halo: np.ndarray  # region grown by MIN_GAP_PX; other same-class shapes stay outside
    rect_xyxy_px: Tuple[int, int, int, int]  # placement rectangle, pixel edges


def _validate(num_train, num_test, size_hw, classes, min_objects, max_objects, seed,
              mask_mode, image_format) -> None:
    for what, value, low in (("number of train images", num_train, 1),
                             ("number of test images", num_test, 0),
                             ("min_objects", min_objects, 0), ("max_objects", max_objects, 1),
                             ("seed", seed, 0)):
        if not _is_int(value) or value < low:
            raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    if min_objects > max_objects:
        raise ConfigError(f"min_objects ({min_objects}) is above max_objects ({max_objects})")
    if max_objects > MAX_OBJECTS:
        raise ConfigError(f"max_objects ({max_objects}) is above {MAX_OBJECTS}")
    low, high = _SIZE_RANGE
    if len(size_hw) != 2 or not all(_is_int(v) and low <= v <= high for v in size_hw):
        shown = f"{size_hw[1]}x{size_hw[0]}" if len(size_hw) == 2 else repr(size_hw)
        raise ConfigError(f"image size {shown} (width x height): each side must be an "
                          f"integer {low}..{high}")
    if not classes:
        raise ConfigError("at least one class is needed, e.g. speaker:76")
    if not all(isinstance(c, SynthClass) for c in classes):
        raise ConfigError(f"classes must be SynthClass values, got {classes!r}")
    for attr in ("name", "gray"):
        values = [getattr(c, attr) for c in classes]
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise ConfigError(f"class {attr} {', '.join(map(str, dup))} is used by more than "
                              "one class; each class needs its own")
    for what, value, valid in (("mask mode", mask_mode, MASK_MODES),
                               ("image format", image_format, IMAGE_FORMATS)):
        if value not in valid:
            raise ConfigError(f"unknown {what} '{value}'; valid: {', '.join(valid)}")


def _shape(rng, kind: str, h: int, w: int) -> np.ndarray:
    """A shape filling an h x w rectangle, as a bool mask; hard edges, no anti-aliasing."""
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "rectangle":
        radius = int(rng.integers(0, min(h, w) // 4 + 1))
        draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=radius, fill=1)
    elif kind == "ellipse":
        draw.ellipse((0, 0, w - 1, h - 1), fill=1)
    else:  # convex polygon, 3..6 corners spread around the centre
        n = int(rng.integers(3, 7))
        angles = (rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(n) / n
                  + rng.uniform(-0.25, 0.25, n) * 2 * np.pi / n)
        radii = rng.uniform(0.75, 1.0, n)
        draw.polygon([((w - 1) / 2 * (1 + r * np.cos(a)), (h - 1) / 2 * (1 + r * np.sin(a)))
                      for a, r in zip(angles, radii)], fill=1)
    return np.asarray(canvas) > 0


def _propose(rng, placed: List[_Placed], size_hw, n_classes: int) -> Optional[_Placed]:
    """One candidate object, or None when it breaks the same-class gap rule.

    Class ``i`` prefers shape ``SHAPES[i % 3]`` (and texture ``i % 3``, see _texture).
    """
    h_img, w_img = size_hw
    short = min(size_hw)
    h, w = (int(v) for v in rng.integers(max(8, short // 8), short // 3 + 1, 2))
    partner = placed[int(rng.integers(len(placed)))] if placed else None
    u = rng.random()
    same_class_overlap = False
    if partner is not None and u < 0.3:  # same-class neighbour, 2..8 px away
        cls = partner.class_index
        px0, py0, px1, py1 = partner.rect_xyxy_px
        gap = int(rng.integers(MIN_GAP_PX, 9))
        side = int(rng.integers(4))
        if side < 2:  # left or right, vertically near the partner
            x0 = px1 + gap if side == 0 else px0 - gap - w
            y0 = int(rng.integers(py0 - h // 2, py1 - h // 2 + 1))
        else:  # below or above
            y0 = py1 + gap if side == 2 else py0 - gap - h
            x0 = int(rng.integers(px0 - w // 2, px1 - w // 2 + 1))
    elif partner is not None and u < 0.6 and (n_classes > 1 or rng.random() < 0.15):
        # occlude part of an earlier object, rarely one of the same class
        same_class_overlap = n_classes == 1 or rng.random() < 0.15
        cls = (partner.class_index if same_class_overlap else
               (partner.class_index + 1 + int(rng.integers(n_classes - 1))) % n_classes)
        px0, py0, px1, py1 = partner.rect_xyxy_px
        if rng.random() < 0.5:  # centre on a vertical or a horizontal edge
            cx, cy = (px0, px1)[int(rng.integers(2))], rng.uniform(py0, py1)
        else:
            cx, cy = rng.uniform(px0, px1), (py0, py1)[int(rng.integers(2))]
        x0, y0 = int(cx - w / 2), int(cy - h / 2)
    else:
        cls = int(rng.integers(n_classes))
        x0, y0 = int(rng.integers(0, w_img - w + 1)), int(rng.integers(0, h_img - h + 1))
    kind = SHAPES[cls % 3] if rng.random() < 0.6 else SHAPES[int(rng.integers(3))]
    if kind == "ellipse" and rng.random() < 0.3:
        w = h  # a circle
    x0, y0 = int(np.clip(x0, 0, w_img - w)), int(np.clip(y0, 0, h_img - h))
    region = np.zeros(size_hw, bool)
    region[y0:y0 + h, x0:x0 + w] = _shape(rng, kind, h, w)
    for other in placed:
        if other.class_index == cls and (
                not (region & other.region).any() if same_class_overlap and other is partner
                else (region & other.halo).any()):
            return None
    halo = ndimage.binary_dilation(region, np.ones((2 * MIN_GAP_PX + 1,) * 2, bool))
    return _Placed(cls, region, halo, (x0, y0, x0 + w, y0 + h))


def _visible(placed: List[_Placed], size_hw) -> Tuple[np.ndarray, List[int]]:
    """Instance map (0 background, k + 1 = ``placed[k]``, later on top) and the kept k.

    Objects with fewer than MIN_VISIBLE_PX visible pixels are removed one at a
    time, fewest first, since a removal gives the objects below pixels back.
    """
    keep = list(range(len(placed)))
    while True:
        inst = np.zeros(size_hw, np.int32)
        for k in keep:
            inst[placed[k].region] = k + 1
        counts = np.bincount(inst.ravel(), minlength=len(placed) + 1)
        small = [k for k in keep if counts[k + 1] < MIN_VISIBLE_PX]
        if not small:
            return inst, keep
        keep.remove(min(small, key=lambda k: counts[k + 1]))


def _background(rng, h: int, w: int) -> np.ndarray:
    """A float HxWx3 background: smooth noise, gradient, stripes or checks."""
    c1, c2 = (c.mean() + 0.45 * (c - c.mean()) for c in rng.uniform(30, 225, (2, 3)))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = int(rng.integers(4))
    if kind == 0:
        coarse = rng.random((h // 16 + 2, w // 16 + 2)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR))
    elif kind == 1:
        angle = rng.uniform(0, 2 * np.pi)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 2:
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)
    else:
        cell = int(rng.integers(8, 33))
        t = ((xs // cell + ys // cell) % 2).astype(np.float32)
    return c1 + t[..., None] * (c2 - c1)


def _texture(rng, obj: _Placed, photo_rgb: np.ndarray, ys: np.ndarray, xs: np.ndarray
             ) -> np.ndarray:
    """(N, 3) float colours of an object's visible pixels at (ys, xs)."""
    x0, y0, x1, _ = obj.rect_xyxy_px
    colour = np.tile(np.clip(photo_rgb * rng.uniform(0.85, 1.15), 0, 255), (len(ys), 1))
    pattern = obj.class_index % 3
    if pattern == 0:  # grille of light dots
        on = ((ys - y0) % 5 < 2) & ((xs - x0) % 5 < 2)
        colour[on] += 0.45 * (255 - colour[on])
    elif pattern == 1:  # horizontal light stripes
        on = ((ys - y0) // 4) % 2 == 1
        colour[on] += 0.4 * (255 - colour[on])
    else:  # vertical highlight, as on a glossy cylinder
        u = (xs - x0) / max(x1 - x0 - 1, 1)
        colour *= (0.7 + 0.6 * np.exp(-((u - 0.35) / 0.18) ** 2))[:, None]
    return colour


def _make_example(rng, size_hw, photo_rgbs: Sequence[np.ndarray], min_objects: int,
                  max_objects: int):
    """One image: (photo uint8 HxWx3, class map uint8 HxW, [(class index, box)], dropped,
    instance map int32 HxW: 0 background, j + 1 the visible pixels of objects[j]).

    Boxes are ``(xmin, ymin, xmax, ymax)`` pixel edges of the visible pixels:
    xmin is the first visible column, xmax the last visible column + 1.
    """
    placed: List[_Placed] = []
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        for _attempt in range(40):
            obj = _propose(rng, placed, size_hw, len(photo_rgbs))
            if obj is not None:
                placed.append(obj)
                break
    inst, keep = _visible(placed, size_hw)
    photo = _background(rng, *size_hw)
    class_map = np.zeros(size_hw, np.uint8)
    instance_map = np.zeros(size_hw, np.int32)
    objects = []
    for k in keep:
        obj = placed[k]
        ys, xs = np.nonzero(inst == k + 1)
        photo[ys, xs] = _texture(rng, obj, photo_rgbs[obj.class_index], ys, xs)
        class_map[ys, xs] = obj.class_index + 1
        instance_map[ys, xs] = len(objects) + 1
        objects.append((obj.class_index, (int(xs.min()), int(ys.min()),
                                          int(xs.max()) + 1, int(ys.max()) + 1)))
    photo += rng.normal(0, 4, photo.shape)
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8), class_map, objects, \
        len(placed) - len(keep), instance_map


def synthesize(out_dir: PathLike, *, num_train: int = 40, num_test: int = 5,
               size_hw: Tuple[int, int] = (192, 256),
               classes: Sequence[SynthClass] = DEFAULT_CLASSES, min_objects: int = 1,
               max_objects: int = 5, seed: int = 0, mask_mode: str = "L",
               image_format: str = "jpg", overwrite: bool = False,
               on_train_image: Optional[Callable[..., None]] = None) -> SynthSummary:
    """Writes a synthetic dataset in the tutorial layout (see the module docstring).

    Args:
      out_dir: dataset folder; created if missing.
      num_train: labelled images (``image0001`` ...).
      num_test: unlabelled images in ``test_images`` (``test0001`` ...).
      size_hw: (height, width) of every image, each 32..4096.
      classes: the classes; names and gray levels must be distinct.
      min_objects, max_objects: objects placed per image (fewer may remain when
        a placement fails or an object is hidden).
      seed: same seed, same bytes.
      mask_mode: ``L`` (gray levels), ``RGB`` or ``P`` (palette); in the last two
        each class has a colour whose PIL ``convert('L')`` is its gray level.
      image_format: ``jpg`` or ``png`` photos.
      overwrite: allow a folder that already has images; old ``image*``/``test*``
        files there are removed first.
      on_train_image: called after each train image is written as
        ``on_train_image(image_name, instance_map, class_names)``: instance_map
        is [H, W] int32 (0 background, j + 1 the visible pixels of object j) and
        class_names[j] its class; :mod:`tfmask.data.synth_formats` writes the
        other annotation formats from it.

    Raises:
      ConfigError: invalid arguments, or a non-empty folder without ``overwrite``.
    """
    classes = tuple(classes)
    _validate(num_train, num_test, tuple(size_hw), classes, min_objects, max_objects, seed,
              mask_mode, image_format)
    size_hw = (int(size_hw[0]), int(size_hw[1]))
    out = Path(out_dir)
    prepare_out_dir(out, overwrite)
    layout = TutorialLayout(out, classes, mask_mode, size_hw)
    photo_rgbs = _photo_rgbs(classes)
    counts = {c.name: 0 for c in classes}
    dropped = 0
    for split, count in ((0, num_train), (1, num_test)):
        for i in range(1, count + 1):
            rng = np.random.default_rng([seed, split, i])
            photo, class_map, objects, n_dropped, instance_map = _make_example(
                rng, size_hw, photo_rgbs, min_objects, max_objects)
            image_name = f"{example_stem(split, i)}.{image_format}"
            image_bytes = encode_image(Image.fromarray(photo), image_format)
            if split == 1:
                layout.write_test_image(image_name, image_bytes)
                continue
            layout.write_train_example(image_name, image_bytes, class_map, objects)
            names = [classes[class_index].name for class_index, _ in objects]
            for name in names:
                counts[name] += 1
            if on_train_image is not None:
                on_train_image(image_name, instance_map, names)
            dropped += n_dropped
    layout.finish()
    return SynthSummary(str(out), num_train, num_test, counts, dropped, mask_mode)


def _photo_rgbs(classes: Sequence[SynthClass]) -> List[np.ndarray]:
    """Each class's photo colour: its ``photo_rgb``, else a hue by its position."""
    return [np.array(c.photo_rgb or [255 * v for v in colorsys.hsv_to_rgb(
        (0.05 + i / len(classes)) % 1.0, 0.7, 0.8)], np.float64) for i, c in enumerate(classes)]
