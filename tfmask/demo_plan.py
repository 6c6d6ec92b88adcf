"""What ``tfmask demo --data-dir DIR`` will do with a folder: the plan, printed first.

Any tutorial-layout folder works (``train_images/``, ``train_masks/``,
``label.pbtxt``, optional ``train_bboxes/`` and ``test_images/``). The plan
reads the folder without converting it:

* **label map**: the tutorial's pixel-suffix names (``speaker076``) give the
  class values; a plain label map (``speaker``) gets them from the masks: with
  XML boxes, each class takes the mask colour that fills its boxes most; without,
  the masks must hold exactly one colour per class, assigned to the classes in
  ascending order of gray level (printed, so a wrong guess is seen in the
  previews; ``--class-pixel NAME=VALUE`` decides instead);
* **instance mode**: ``box`` when ``train_bboxes/`` holds XML (one instance per
  box, as the tutorial's ``--bboxes_provided=True``), else ``components``
  (several objects of one class become several instances);
* **input size and steps**: from the images' size and count (:func:`fit_input_size`,
  :func:`fit_train_steps`), so large photos get a larger input.

Example::

    from tfmask.demo_plan import plan_demo
    plan = plan_demo(Path("my_photos"))
    print("\\n".join(plan.lines()))
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfmask.config.label_map import (LabelMap, class_pixels_from_specs, format_pixel_value,
                                     read_label_map)
from tfmask.errors import ConfigError, DataError

# The tiny model's input side for the images' long side (upright): at most LONG_SIDE px
# -> SIZE px square input, trained for at most MAX_STEPS steps: what about 6 minutes of
# training on 2 CPU cores allows at that size (docs/demo.md, measured on photo-like
# synthetic sets, tfmask.data.synth_photo).
INPUT_SIZES = ((320, 128, 900), (800, 256, 650), (math.inf, 320, 400))
MIN_STEPS = 300
EPOCHS = 200  # passes over the training images, within [MIN_STEPS, the size's MAX_STEPS]
BATCH_SIZE = 4  # the tiny config's
_EXIF_ORIENTATION, _ROTATED = 0x0112, (5, 6, 7, 8)


def fit_input_size(long_side_px: int) -> int:
    """The tiny model's square input size for images whose long side is ``long_side_px``."""
    return next(size for limit, size, _ in INPUT_SIZES if long_side_px <= limit)


def max_train_steps(input_size: int) -> int:
    """The most steps the demo trains at ``input_size`` (px): the cap of the smallest
    :data:`INPUT_SIZES` entry at least that large (inputs between them cost in between)."""
    caps = [cap for _, size, cap in INPUT_SIZES if size >= input_size]
    if caps:
        return caps[0]
    _, largest, cap = INPUT_SIZES[-1]  # larger than any entry: steps scale with 1/pixels
    return max(MIN_STEPS // 2, int(cap * (largest / input_size) ** 2))


def fit_train_steps(num_train_images: int, input_size: int = 256,
                    batch_size: int = BATCH_SIZE) -> int:
    """Training steps for ``num_train_images`` at ``input_size``: :data:`EPOCHS` passes,
    at least :data:`MIN_STEPS` and at most :func:`max_train_steps`."""
    steps = math.ceil(EPOCHS * max(1, num_train_images) / batch_size)
    cap = max_train_steps(input_size)
    return int(min(cap, max(min(MIN_STEPS, cap), steps)))


@dataclass
class DemoPlan:
    """What the demo found in the folder and will do.

    Attributes:
      data_dir: the folder.
      label_map: its classes with their mask values.
      label_map_kind: ``pixel-suffix`` or ``plain``.
      pixel_source: how a plain label map got its values ("" for pixel-suffix).
      class_pixels: ``--class-pixel`` specs for the converter (empty for pixel-suffix).
      mask_kinds: PIL mode of the masks -> count (``L`` gray, ``P`` palette, ``RGB``...).
      instance_mode: ``box`` or ``components``; mode_reason says why.
      image_formats: ``JPEG``/``PNG`` -> count; image_modes: PIL mode -> count.
      num_images: labelled images; max_size_hw / median_size_hw: upright sizes.
      rotated: images with an EXIF rotation (re-encoded upright by the converter).
      test_images: the folder of images to run the model on, or None.
      num_test_images: how many it holds.
      input_size: the model's square input side; train_steps: steps to train.
    """

    data_dir: Path
    label_map: LabelMap
    label_map_kind: str
    pixel_source: str
    class_pixels: Tuple[str, ...]
    mask_kinds: Dict[str, int]
    instance_mode: str
    mode_reason: str
    image_formats: Dict[str, int]
    image_modes: Dict[str, int]
    num_images: int
    max_size_hw: Tuple[int, int]
    median_size_hw: Tuple[int, int]
    rotated: int
    test_images: Optional[Path]
    num_test_images: int
    input_size: int
    train_steps: int
    notes: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        """The plan as the demo prints it (indented by the caller)."""
        fmts = ", ".join(f"{n} {k}" for k, n in sorted(self.image_formats.items()))
        modes = ", ".join(f"{n} {k}" for k, n in sorted(self.image_modes.items()))
        masks = ", ".join(f"{n} {_MASK_NAMES.get(k, k)}" for k, n in sorted(self.mask_kinds.items()))
        h, w = self.median_size_hw
        mh, mw = self.max_size_hw
        classes = ", ".join(f"{c.name}={format_pixel_value(c.pixel_value)}"
                            for c in self.label_map.classes)
        out = [f"images: {self.num_images} ({fmts}; pixels {modes}), median {w}x{h}, "
               f"largest {mw}x{mh}" + (f", {self.rotated} EXIF-rotated" if self.rotated else ""),
               f"masks: {masks}",
               f"label map: {self.label_map_kind}; classes {classes}"
               + (f" ({self.pixel_source})" if self.pixel_source else ""),
               f"instance mode '{self.instance_mode}': {self.mode_reason}",
               f"model input {self.input_size}x{self.input_size} px (median long side "
               f"{max(h, w)} px), {self.train_steps} training steps",
               (f"test images: {self.num_test_images} in {self.test_images}"
                if self.test_images else "test images: none (no test_images/ folder with "
                "images): inference is skipped")]
        return out + self.notes


_MASK_NAMES = {"L": "gray", "P": "palette", "RGB": "RGB", "RGBA": "RGBA", "1": "1-bit",
               "LA": "gray+alpha", "PA": "palette+alpha"}


def _images(folder: Path) -> List[Path]:
    from tfmask.data.images import find_images

    return find_images(folder)[0] if folder.is_dir() else []


def _image_info(paths: Sequence[Path]):
    """(formats, modes, upright sizes, rotated count) from the file headers (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    formats, modes, sizes, rotated = Counter(), Counter(), [], 0
    for path in paths:
        try:
            with Image.open(path) as img:
                w, h = img.size
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
                formats[img.format or "?"] += 1
                modes[img.mode] += 1
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            continue  # the converter names it
        if orientation in _ROTATED:
            h, w = w, h
        rotated += orientation not in (1, None)
        sizes.append((h, w))
    return formats, modes, sizes, rotated


def _mask_modes(paths: Sequence[Path]) -> Counter:
    from PIL import Image

    modes = Counter()
    for path in paths:
        try:
            with Image.open(path) as img:
                modes[img.mode] += 1
        except (OSError, SyntaxError, ValueError):
            continue
    return modes


def _colours_in_boxes(data_dir: Path, bboxes: Path, masks: Path, names: Sequence[str]
                      ) -> Dict[str, Counter]:
    """class name -> Counter of mask colours (RGB) inside that class's XML boxes."""
    from tfmask.data.images import load_mask
    from tfmask.data.sources.voc_xml import read_voc_xml

    by_class: Dict[str, Counter] = defaultdict(Counter)
    for xml in sorted(bboxes.glob("*.xml")):
        mask_path = masks / f"{xml.stem}.png"
        if not mask_path.is_file():
            continue
        ann = read_voc_xml(xml)
        rgb = load_mask(mask_path, rgb=True)
        codes = ((rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
                 | rgb[..., 2].astype(np.uint32))
        for obj in ann.objects:
            if obj.name not in names:
                continue
            x0, y0, x1, y1 = (int(round(v)) for v in obj.box_xyxy_px)
            window = codes[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
            uniq, counts = np.unique(window[window != 0], return_counts=True)
            for u, n in zip(uniq.tolist(), counts.tolist()):
                by_class[obj.name][(u >> 16, (u >> 8) & 255, u & 255)] += n
    return by_class


def _spec(name: str, rgb: Tuple[int, int, int], gray_masks: bool) -> str:
    from tfmask.data.pixels import gray_levels_of

    if gray_masks or rgb[0] == rgb[1] == rgb[2]:
        return f"{name}={gray_levels_of([rgb])[0]}"
    return f"{name}={rgb[0]},{rgb[1]},{rgb[2]}"


def _plain_pixels(data_dir: Path, label_map: LabelMap, has_xml: bool, gray_masks: bool
                  ) -> Tuple[Tuple[str, ...], str]:
    """``--class-pixel`` specs for a plain label map, and how they were found."""
    from tfmask.data.pixels import RARE_FRACTION, scan_masks

    names = [c.name for c in label_map.classes]
    if has_xml:
        found = _colours_in_boxes(data_dir, data_dir / "train_bboxes", data_dir / "train_masks",
                                  names)
        missing = [n for n in names if not found.get(n)]
        if missing:
            raise DataError(data_dir / "label.pbtxt", f"class(es) {', '.join(missing)} of this "
                            "plain label map have no mask pixels inside their XML boxes, so "
                            "their mask values are unknown; give them with --class-pixel "
                            "NAME=VALUE", kind="label_map")
        picked = {n: found[n].most_common(1)[0][0] for n in names}
        specs = tuple(_spec(n, picked[n], gray_masks) for n in names)
        source = "values read from the masks inside each class's XML boxes"
    else:
        report = scan_masks(data_dir / "train_masks")
        total = max(1, report.total_pixels)
        colours = [c for c in report.colours
                   if c.rgb != (0, 0, 0) and c.pixels >= RARE_FRACTION * total]
        if len(colours) != len(names):
            found = ", ".join(f"{c.rgb}" for c in colours) or "none"
            raise DataError(data_dir / "label.pbtxt", f"this plain label map names "
                            f"{len(names)} class(es) but the masks hold {len(colours)} class "
                            f"colour(s) ({found}); name each class by its mask value "
                            "('speaker076'), add train_bboxes/ XML, or give --class-pixel "
                            "NAME=VALUE", kind="label_map")
        ordered = sorted(colours, key=lambda c: (c.gray, c.rgb))
        specs = tuple(_spec(c.name, col.rgb, gray_masks) for c, col in
                      zip(sorted(label_map.classes, key=lambda c: c.id), ordered))
        source = ("assumed: classes in id order = mask values in ascending gray order; "
                  "check the previews or give --class-pixel")
    values = [s.split("=", 1)[1] for s in specs]
    if len(set(values)) != len(values):
        raise DataError(data_dir / "label.pbtxt", "two classes of this plain label map fill "
                        f"their boxes with the same mask value ({', '.join(specs)}); give "
                        "--class-pixel NAME=VALUE", kind="label_map")
    return specs, source


def _label_map(data_dir: Path, has_xml: bool, gray_masks: bool,
               class_pixels: Sequence[str]) -> Tuple[LabelMap, str, str, Tuple[str, ...]]:
    path = data_dir / "label.pbtxt"
    if class_pixels:
        lm = read_label_map(path, pixel_suffix=False).with_pixels(
            class_pixels_from_specs(class_pixels))
        return lm, "plain", "values from --class-pixel", tuple(class_pixels)
    try:
        return read_label_map(path), "pixel-suffix", "", ()
    except DataError as exc:
        if "three-digit mask pixel value" not in exc.reason:
            raise
    plain = read_label_map(path, pixel_suffix=False)
    specs, source = _plain_pixels(data_dir, plain, has_xml, gray_masks)
    return (plain.with_pixels(class_pixels_from_specs(specs)), "plain", source, specs)


def plan_demo(data_dir: Path, class_pixels: Sequence[str] = (),
              train_steps: Optional[int] = None, input_size: Optional[int] = None) -> DemoPlan:
    """Reads ``data_dir`` and decides the demo's settings (see the module docstring).

    Args:
      data_dir: a tutorial-layout folder.
      class_pixels: ``NAME=VALUE`` specs overriding the label map's values.
      train_steps / input_size: fixed values instead of the fitted ones.

    Raises:
      DataError: no ``train_images/`` images, no ``train_masks/`` or
        ``label.pbtxt``, or a plain label map whose values cannot be found.
    """
    data_dir = Path(data_dir)
    images = _images(data_dir / "train_images")
    if not images:
        raise DataError(data_dir / "train_images", "no JPEG or PNG images here; the demo "
                        "needs the tutorial layout (train_images/, train_masks/, label.pbtxt)",
                        kind="missing_file")
    for need in ("train_masks", "label.pbtxt"):
        if not (data_dir / need).exists():
            raise DataError(data_dir / need, "missing: the tutorial layout has train_images/, "
                            "train_masks/ and label.pbtxt", kind="missing_file")
    xml_files = sorted((data_dir / "train_bboxes").glob("*.xml")) \
        if (data_dir / "train_bboxes").is_dir() else []
    mask_kinds = _mask_modes(sorted((data_dir / "train_masks").glob("*.png")))
    gray_masks = set(mask_kinds) <= {"L", "1", "LA"}
    label_map, kind, source, specs = _label_map(data_dir, bool(xml_files), gray_masks,
                                                class_pixels)
    formats, modes, sizes, rotated = _image_info(images)
    sizes = sizes or [(0, 0)]
    largest = max(sizes, key=lambda s: s[0] * s[1])
    median = sorted(sizes, key=lambda s: s[0] * s[1])[len(sizes) // 2]
    test = data_dir / "test_images"
    tests = _images(test)
    if xml_files:
        mode, reason = "box", (f"train_bboxes/ holds {len(xml_files)} labelImg XML file(s): "
                               "one instance per box")
    else:
        mode, reason = "components", ("no train_bboxes/ XML: each class's connected regions "
                                      "become separate instances")
    n_train = max(1, round(len(images) * 0.8))
    size = int(input_size or fit_input_size(max(median)))
    return DemoPlan(
        data_dir=data_dir, label_map=label_map, label_map_kind=kind, pixel_source=source,
        class_pixels=specs, mask_kinds=dict(mask_kinds), instance_mode=mode,
        mode_reason=reason, image_formats=dict(formats), image_modes=dict(modes),
        num_images=len(images), max_size_hw=largest, median_size_hw=median, rotated=rotated,
        test_images=test if tests else None, num_test_images=len(tests),
        input_size=size,
        train_steps=int(fit_train_steps(n_train, size) if train_steps is None
                        else train_steps))


def check_input_size(size: int) -> int:
    """``input_size``: a multiple of 32 (the tiny model's coarsest stride), 64-1024."""
    if size % 32 or not 64 <= size <= 1024:
        raise ConfigError(f"input_size must be a multiple of 32 between 64 and 1024, got {size}",
                          params=("input_size",))
    return size
