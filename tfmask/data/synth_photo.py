"""Photo-like synthetic datasets, for tuning the demo's defaults (not for testing the converter).

:mod:`tfmask.data.synth` draws flat-coloured shapes whose class shows in their
colour; real photos are harder. Here the class shows only in an object's shape
and markings, never in its colour, and every photo has what real ones have:

* a **scene**: a wall (fractal-noise texture in two random colours) above a
  table (wood grain or fabric weave) at a random horizon, lit by a gradient
  from a random side, with vignetting and blurred clutter in the distance;
* **objects** of 10-40 % of the image's short side (height of the shape), each
  in a random colour, shaded (a cylinder or a lit plane), with a specular
  highlight, its class's markings, and a soft shadow on the table;
* **occluders** (blobs in scene colours, no class) in front of some objects,
  objects cut by the image border, and same-class objects kept apart (so the
  class masks split into instances);
* **a camera**: slight blur, sensor noise, a colour cast, JPEG compression.

Two classes by default: ``mug`` (rounded body, a handle, a band) and ``box``
(a slanted quadrilateral with a label and a lid edge). Output is the
tutorial layout (see :mod:`tfmask.data.synth`; XML boxes are the visible
extents)::

    from tfmask.data.synth_photo import synthesize_photos
    synthesize_photos("/tmp/photos", num_train=32, num_test=4, size_hw=(384, 512), seed=0)
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from tfmask.data.synth import SynthClass
from tfmask.data.synth_layout import TutorialLayout, example_stem, prepare_out_dir
from tfmask.errors import ConfigError, PathLike

PHOTO_CLASSES = (SynthClass("mug", 100), SynthClass("box", 200))
OBJECT_SCALE = (0.10, 0.40)  # object height / image short side
MIN_VISIBLE_FRACTION = 0.35  # an object less visible than this is removed
JPEG_QUALITY = (82, 95)


def fractal_noise(rng, h: int, w: int, octaves: int = 5, base: int = 4) -> np.ndarray:
    """[h, w] float in [0, 1]: sum of upsampled random grids, coarse to fine."""
    out = np.zeros((h, w))
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base * 2 ** o
        grid = rng.random((cells + 1, cells + 1))
        out += amp * ndimage.zoom(grid, ((h + cells) / (cells + 1), (w + cells) / (cells + 1)),
                                  order=1)[:h, :w]
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(1e-6, np.ptp(out))


def _random_colour(rng, saturation=(0.2, 0.9), value=(0.25, 0.95)) -> np.ndarray:
    import colorsys

    hsv = (rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return np.array(colorsys.hsv_to_rgb(*hsv)) * 255.0


def _scene(rng, h: int, w: int) -> np.ndarray:
    """[h, w, 3] float RGB: wall, table, lighting, distant clutter."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    wall = fractal_noise(rng, h, w)[..., None]
    a, b = _random_colour(rng, (0.0, 0.4)), _random_colour(rng, (0.0, 0.5))
    image = a * (1 - wall) + b * wall
    horizon = int(h * rng.uniform(0.25, 0.7))
    if rng.random() < 0.5:  # wood grain: warped stripes
        warp = fractal_noise(rng, h, w, octaves=3) * rng.uniform(5, 20)
        grain = 0.5 + 0.5 * np.sin(xx * rng.uniform(30, 90) + warp)
    else:  # fabric: a fine weave
        f = rng.uniform(150, 400)
        grain = 0.5 + 0.25 * (np.sin(xx * f) + np.sin(yy * f))
    c, d = _random_colour(rng, (0.1, 0.7)), _random_colour(rng, (0.1, 0.7))
    table = c * (1 - grain[..., None] * 0.35) + d * grain[..., None] * 0.35
    image[horizon:] = table[horizon:]
    for _ in range(rng.integers(3, 9)):  # blurred clutter near the horizon
        cy, cx = rng.uniform(0.1, 0.75) * h, rng.uniform(0, 1) * w
        r = rng.uniform(0.03, 0.12) * max(h, w)
        blob = np.exp(-(((np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2)
                        / (2 * r * r)))[..., None]
        image = image * (1 - 0.7 * blob) + _random_colour(rng) * 0.7 * blob
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.75 + 0.45 * ((np.cos(angle) * xx + np.sin(angle) * yy) - 0.5)
    vignette = 1.0 - 0.35 * (((yy - 0.5 * h / max(h, w)) ** 2 + (xx - 0.5 * w / max(h, w)) ** 2)
                             / 0.5)
    return image * (light * vignette)[..., None]


def _shape_mask(rng, kind: str, oh: int, ow: int) -> np.ndarray:
    """[oh, ow] bool silhouette of a class shape."""
    img = Image.new("L", (ow, oh), 0)
    draw = ImageDraw.Draw(img)
    if kind == "mug":
        body_w = int(ow * rng.uniform(0.62, 0.75))
        draw.rounded_rectangle((0, int(oh * 0.04), body_w, oh - 1), radius=max(2, body_w // 6),
                               fill=255)
        draw.ellipse((0, 0, body_w, int(oh * 0.12)), fill=255)
        t = max(2, int(ow * 0.09))  # the handle: a ring on the right
        draw.ellipse((body_w - t, int(oh * 0.25), ow - 1, int(oh * 0.7)), outline=255, width=t)
    else:  # box: a slanted quadrilateral (a box seen at an angle)
        s = rng.uniform(0.0, 0.25)
        pts = [(s * ow, 0), (ow - 1, rng.uniform(0, 0.2) * oh), ((1 - s) * ow, oh - 1),
               (0, (1 - rng.uniform(0, 0.2)) * oh)]
        draw.polygon(pts, fill=255)
    return np.asarray(img) > 127


def _paint_object(rng, kind: str, region: np.ndarray) -> np.ndarray:
    """[oh, ow, 3] float RGB of an object (its silhouette ``region``): colour, shading,
    highlight and the class's markings."""
    oh, ow = region.shape
    yy, xx = np.mgrid[0:oh, 0:ow]
    base = _random_colour(rng, (0.3, 1.0), (0.35, 1.0))
    if kind == "mug":  # a cylinder lit from one side
        u = xx / max(1, ow * 0.7)
        shade = 0.45 + 0.55 * np.clip(np.cos((u - rng.uniform(0.3, 0.6)) * np.pi), 0, 1)
        spec = np.exp(-((u - rng.uniform(0.25, 0.45)) ** 2) / 0.003)
    else:  # a lit plane
        g = rng.uniform(-1, 1, 2)
        shade = 0.7 + 0.25 * (g[0] * xx / ow + g[1] * yy / oh)
        spec = np.exp(-(((xx / ow - 0.3) ** 2 + (yy / oh - 0.25) ** 2)) / 0.02) * 0.5
    paint = base * shade[..., None] + 255 * 0.6 * spec[..., None]
    mark = _random_colour(rng)
    if kind == "mug":  # a band around the body
        y0 = int(oh * rng.uniform(0.35, 0.55))
        band = (yy >= y0) & (yy < y0 + max(2, oh // 8)) & (xx < ow * 0.72)
        paint[band] = paint[band] * 0.3 + mark * 0.7 * shade[band][..., None]
    else:  # a label rectangle and a darker lid edge
        y0, x0 = int(oh * rng.uniform(0.3, 0.5)), int(ow * rng.uniform(0.15, 0.3))
        label = (yy >= y0) & (yy < y0 + oh // 4) & (xx >= x0) & (xx < ow - x0)
        paint[label] = mark * shade[label][..., None]
        lid = yy < max(2, oh // 10)
        paint[lid] *= 0.6
    paint += rng.normal(0, 6, paint.shape)  # surface texture
    return paint


def _occluder(rng, h: int, w: int, near_xyxy) -> np.ndarray:
    """[h, w] bool blob covering part of the box ``near_xyxy``."""
    x0, y0, x1, y1 = near_xyxy
    cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    r = rng.uniform(0.25, 0.6) * max(x1 - x0, y1 - y0)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = r * rng.uniform(0.5, 1.0, 9)
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).polygon(list(zip(cx + radii * np.cos(angles),
                                         cy + radii * np.sin(angles))), fill=255)
    return np.asarray(img) > 127


def _make_photo(rng, size_hw, classes: Sequence[SynthClass], min_objects: int,
                max_objects: int):
    """(uint8 photo, class map, [(class index, visible box)], instance map)."""
    h, w = size_hw
    image = _scene(rng, h, w)
    class_map = np.zeros((h, w), np.int32)
    placed = _place_objects(rng, image, class_map, classes, min_objects, max_objects)
    _add_occluders(rng, image, class_map, placed)
    objects, instance_map = _label_visible(class_map, placed)
    # The camera: blur, colour cast, noise.
    sigma = rng.uniform(0.3, 1.1)
    image = ndimage.gaussian_filter(image, (sigma, sigma, 0))
    image = image * rng.uniform(0.9, 1.1, 3) + rng.normal(0, rng.uniform(2, 7), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), class_map, objects, instance_map


def _place_objects(rng, image: np.ndarray, class_map: np.ndarray,
                   classes: Sequence[SynthClass], min_objects: int,
                   max_objects: int) -> List[Tuple[int, np.ndarray]]:
    """Paints objects and their shadows into ``image`` and ``class_map`` (in place), each in
    front of the earlier ones; returns [(class index, the pixels still in view)]."""
    h, w = class_map.shape
    keep_out = [np.zeros((h, w), bool) for _ in classes]  # same-class gap zones
    placed: List[Tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        k = int(rng.integers(len(classes)))
        kind = classes[k].name if classes[k].name in ("mug", "box") else ("mug", "box")[k % 2]
        oh = int(min(h, w) * rng.uniform(*OBJECT_SCALE))
        ow = int(oh * (rng.uniform(0.8, 1.2) if kind == "mug" else rng.uniform(0.7, 1.6)))
        if oh < 8 or ow < 8:
            continue
        spot = _find_spot(rng, kind, oh, ow, (h, w), keep_out[k])
        if spot is None:
            continue
        region, shape, y0, x0 = spot
        paint = _paint_object(rng, kind, shape)
        shadow = ndimage.gaussian_filter(np.roll(region, (oh // 12, ow // 10), (0, 1))
                                         .astype(float), max(1.0, oh / 25))
        image *= (1 - 0.45 * shadow)[..., None]
        image[region] = _paste(np.zeros((h, w, 3)), paint, y0, x0)[region]
        class_map[region] = k + 1
        for _, other in placed:  # occluded parts of earlier objects
            other &= ~region
        placed.append((k, region))
        keep_out[k] |= ndimage.binary_dilation(region, iterations=3)
    return placed


def _find_spot(rng, kind: str, oh: int, ow: int, size_hw, keep_out: np.ndarray):
    """(region [h, w] bool, shape [oh, ow] bool, y0, x0) of an object placed with more
    than half of it in the image and clear of ``keep_out``; None after 20 tries."""
    h, w = size_hw
    for _attempt in range(20):  # may stick out of the image by up to a quarter
        y0 = int(rng.integers(-oh // 4, h - 3 * oh // 4))
        x0 = int(rng.integers(-ow // 4, w - 3 * ow // 4))
        shape = _shape_mask(rng, kind, oh, ow)
        region = _paste(np.zeros((h, w), bool), shape, y0, x0)
        if region.sum() > 0.5 * shape.sum() and not (region & keep_out).any():
            return region, shape, y0, x0
    return None


def _paste(canvas: np.ndarray, patch: np.ndarray, y0: int, x0: int) -> np.ndarray:
    """``canvas`` with ``patch`` written at top-left (y0, x0), clipped to the canvas."""
    h, w = canvas.shape[:2]
    oh, ow = patch.shape[:2]
    ys, xs = slice(max(0, y0), min(h, y0 + oh)), slice(max(0, x0), min(w, x0 + ow))
    canvas[ys, xs] = patch[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return canvas


def _add_occluders(rng, image: np.ndarray, class_map: np.ndarray,
                   placed: List[Tuple[int, np.ndarray]]) -> None:
    """Blobs in scene colours in front of some objects (in place; no class)."""
    h, w = class_map.shape
    for k, region in placed:
        if rng.random() < 0.35 and region.any():
            ys, xs = np.nonzero(region)
            blob = _occluder(rng, h, w, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
            image[blob] = (image[blob] * 0.25 + _random_colour(rng, (0, 0.5)) * 0.75
                           + rng.normal(0, 5, (int(blob.sum()), 3)))
            class_map[blob] = 0
            for _, other in placed:
                other &= ~blob


def _label_visible(class_map: np.ndarray, placed: List[Tuple[int, np.ndarray]]):
    """([(class index, visible box xyxy pixel edges)], instance map int32: 0 background,
    j + 1 the visible pixels of object j). Objects too hidden are unlabelled (class map 0)."""
    instance_map = np.zeros(class_map.shape, np.int32)
    objects = []
    for k, region in placed:
        total = region.sum()
        if total == 0:
            continue
        visible = region & (class_map == k + 1)
        if visible.sum() < max(20, MIN_VISIBLE_FRACTION * total):
            class_map[visible] = 0  # too hidden: not labelled, painted over as it is
            continue
        ys, xs = np.nonzero(visible)
        instance_map[visible] = len(objects) + 1
        objects.append((k, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    return objects, instance_map


def synthesize_photos(out_dir: PathLike, *, num_train: int = 32, num_test: int = 4,
                      size_hw: Tuple[int, int] = (384, 512),
                      classes: Sequence[SynthClass] = PHOTO_CLASSES, min_objects: int = 1,
                      max_objects: int = 4, seed: int = 0, mask_mode: str = "L",
                      image_format: str = "jpg", overwrite: bool = False) -> Path:
    """Writes a photo-like dataset in the tutorial layout (see the module docstring).

    Same arguments as :func:`tfmask.data.synth.synthesize` (so
    :func:`tfmask.data.synth_variants.write_layout` takes it as its generator).
    The same seed gives the same files.
    """
    if not (1 <= min_objects <= max_objects) or num_train < 0 or num_test < 0:
        raise ConfigError("synthesize_photos: need 1 <= min_objects <= max_objects and "
                          "non-negative image counts")
    if not all(32 <= s <= 4096 for s in size_hw):
        raise ConfigError(f"synthesize_photos: size {size_hw} must be 32..4096 on each side")
    out = Path(out_dir)
    prepare_out_dir(out, overwrite)
    layout = TutorialLayout(out, tuple(classes), mask_mode, size_hw)
    for split, count in ((0, num_train), (1, num_test)):
        for i in range(1, count + 1):
            rng = np.random.default_rng([seed, 7919, split, i])
            photo, class_map, objects, _ = _make_photo(rng, size_hw, classes, min_objects,
                                                       max_objects)
            name = f"{example_stem(split, i)}.{image_format}"
            buf = _photo_bytes(photo, image_format, int(rng.integers(*JPEG_QUALITY)))
            if split == 1:
                layout.write_test_image(name, buf)
            else:
                layout.write_train_example(name, buf, class_map, objects)
    layout.finish()
    return out


def _photo_bytes(photo: np.ndarray, fmt: str, quality: int) -> bytes:
    import io

    buf = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(photo).save(buf, format="JPEG", quality=quality)
    else:
        Image.fromarray(photo).save(buf, format="PNG")
    return buf.getvalue()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tfmask.data.synth_photo OUT [NUM_TRAIN] [SEED]``."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    synthesize_photos(args[0], num_train=int(args[1]) if len(args) > 1 else 32,
                      seed=int(args[2]) if len(args) > 2 else 0, overwrite=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
