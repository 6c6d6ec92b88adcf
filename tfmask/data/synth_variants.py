"""Synthetic folders in every variant of the tutorial layout, and phone photos.

For the tests and the benchmark of ``tfmask demo --data-dir``: a
:class:`LayoutVariant` is one combination of what a user's folder may look
like (pixel-suffix or plain label map, gray / RGB / palette masks, with or
without ``train_bboxes/`` XML, JPEG or PNG photos, any size, with or without
``test_images/``); :data:`LAYOUT_VARIANTS` covers each choice at least once.
:func:`write_phone_photos` writes what phones and editors produce: 4032x3024
JPEGs stored sideways with an EXIF orientation, PNGs with an alpha channel and
grayscale JPEGs, each with an upright mask (as an annotation tool shows them).

Example::

    from tfmask.data.synth_variants import LAYOUT_VARIANTS, write_layout
    write_layout("/tmp/plain_rgb", LAYOUT_VARIANTS["plain_rgb_components_png"], num_train=12)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

from tfmask.errors import PathLike

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class LayoutVariant:
    """One way a tutorial-layout folder can look.

    Attributes:
      label_map: ``pixel-suffix`` (``speaker076``) or ``plain`` (``speaker``).
      mask_mode: ``L`` gray, ``RGB`` or ``P`` palette masks.
      xml: write ``train_bboxes/`` labelImg XML.
      image_format: ``jpg`` or ``png`` photos.
      size_hw: (height, width) of the photos.
      test_images: write ``test_images/``.
    """

    label_map: str
    mask_mode: str
    xml: bool
    image_format: str
    size_hw: Tuple[int, int]
    test_images: bool


LAYOUT_VARIANTS: Dict[str, LayoutVariant] = {
    "suffix_gray_xml_jpg": LayoutVariant("pixel-suffix", "L", True, "jpg", (192, 256), True),
    "plain_rgb_components_png": LayoutVariant("plain", "RGB", False, "png", (384, 512), False),
    "plain_palette_xml_jpg": LayoutVariant("plain", "P", True, "jpg", (600, 800), True),
    "suffix_rgb_components_png_large": LayoutVariant("pixel-suffix", "RGB", False, "png",
                                                     (960, 1280), True),
}


def plain_label_map(src: PathLike, dst: PathLike) -> None:
    """Rewrites a pixel-suffix ``label.pbtxt`` without the suffixes (``speaker076`` ->
    ``speaker``), same ids."""
    from tfmask.config.label_map import read_label_map

    lm = read_label_map(src)
    Path(dst).write_text("".join(f"item {{\n  id: {c.id}\n  name: '{c.name}'\n}}\n"
                                 for c in lm.classes))


def write_layout(out: PathLike, variant: LayoutVariant, num_train: int = 12,
                 num_test: int = 2, seed: int = 0, generator=None) -> Path:
    """Writes a synthetic dataset in ``variant``'s layout into ``out`` (replaced).

    ``generator(out, num_train=, num_test=, size_hw=, seed=, mask_mode=,
    image_format=, overwrite=)`` writes the tutorial layout with XML and a
    pixel-suffix label map; default :func:`tfmask.data.synth.synthesize`.
    """
    from tfmask.data.synth import synthesize

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (generator or synthesize)(out, num_train=num_train,
                              num_test=num_test if variant.test_images else 0,
                              size_hw=variant.size_hw, seed=seed, mask_mode=variant.mask_mode,
                              image_format=variant.image_format, overwrite=True)
    if not variant.xml:
        shutil.rmtree(out / "train_bboxes", ignore_errors=True)
    if not variant.test_images:
        shutil.rmtree(out / "test_images", ignore_errors=True)
    if variant.label_map == "plain":
        plain_label_map(out / "label.pbtxt", out / "label.pbtxt")
    return out


# --------------------------------------------------------------------------- phone photos

def store_sideways(path: PathLike, orientation: int = 6, quality: int = 92) -> None:
    """Rewrites an upright JPEG as a phone stores it: pixels turned so that EXIF
    ``orientation`` (6: rotate 90 degrees clockwise to view) shows them upright."""
    with Image.open(path) as img:
        upright = img.convert("RGB")
    # exif_transpose applies the inverse of what is stored: 6 -> ROTATE_270, 8 -> ROTATE_90,
    # 3 -> ROTATE_180; store the opposite turn.
    turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270,
            3: Image.Transpose.ROTATE_180}[orientation]
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    upright.transpose(turn).save(path, format="JPEG", quality=quality, exif=exif.tobytes())


def add_alpha(path: PathLike, out_path: PathLike) -> None:
    """Saves an image as an RGBA PNG: opaque, with a transparent 4-px frame."""
    with Image.open(path) as img:
        rgba = img.convert("RGBA")
    alpha = np.full(rgba.size[::-1], 255, np.uint8)
    alpha[:4], alpha[-4:], alpha[:, :4], alpha[:, -4:] = 0, 0, 0, 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(out_path, format="PNG")


def to_grayscale_jpeg(path: PathLike) -> None:
    """Rewrites a JPEG as a one-channel (grayscale) JPEG."""
    with Image.open(path) as img:
        gray = img.convert("L")
    gray.save(path, format="JPEG", quality=92)


def write_phone_photos(out: PathLike, copies: int = 1, large_hw: Tuple[int, int] = (4032, 3024),
                       other_hw: Tuple[int, int] = (1200, 1600), seed: int = 0,
                       num_test: int = 1, generator=None) -> Dict[str, str]:
    """A folder of phone-style photos with upright masks and a pixel-suffix label map.

    Per copy: ``portrait_K.jpg`` (upright ``large_hw``, i.e. 3024 wide and 4032
    tall, stored 4032x3024 with EXIF orientation 6), ``alpha_K.png`` (RGBA) and
    ``gray_K.jpg`` (grayscale), both ``other_hw``; ``test_images/`` gets
    ``num_test`` sideways portraits. No XML (components mode).

    Returns:
      image file name -> its kind (``exif_rotated``, ``alpha_png``, ``grayscale_jpeg``).
    """
    from tfmask.data.synth import synthesize

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    make = generator or synthesize
    kinds: Dict[str, str] = {}
    scratch = out / ".scratch"
    for k in range(copies):
        for kind, size_hw, fmt in (("exif_rotated", large_hw, "jpg"),
                                   ("alpha_png", other_hw, "png"),
                                   ("grayscale_jpeg", other_hw, "jpg")):
            make(scratch, num_train=1, num_test=0, size_hw=size_hw, seed=seed + 7 * k + len(kinds),
                 min_objects=2, max_objects=4, image_format=fmt, overwrite=True)
            stem = {"exif_rotated": "portrait", "alpha_png": "alpha", "grayscale_jpeg": "gray"}[kind]
            name = f"{stem}_{k}.{fmt}"
            for sub in ("train_images", "train_masks"):
                (out / sub).mkdir(parents=True, exist_ok=True)
            src = next((scratch / "train_images").iterdir())
            dst = out / "train_images" / name
            if kind == "alpha_png":
                add_alpha(src, dst)
            else:
                shutil.copyfile(src, dst)
                (store_sideways if kind == "exif_rotated" else to_grayscale_jpeg)(dst)
            shutil.copyfile(next((scratch / "train_masks").iterdir()),
                            out / "train_masks" / f"{stem}_{k}.png")
            if not (out / "label.pbtxt").exists():
                shutil.copyfile(scratch / "label.pbtxt", out / "label.pbtxt")
            kinds[name] = kind
    if num_test:
        make(scratch, num_train=1, num_test=num_test, size_hw=large_hw, seed=seed + 99,
             image_format="jpg", overwrite=True)
        (out / "test_images").mkdir(parents=True, exist_ok=True)
        for i, src in enumerate(sorted((scratch / "test_images").iterdir())):
            dst = out / "test_images" / f"test_portrait_{i}.jpg"
            shutil.copyfile(src, dst)
            store_sideways(dst)
    shutil.rmtree(scratch, ignore_errors=True)
    return kinds


def upright_size_hw(path: PathLike) -> Tuple[int, int]:
    """(height, width) of an image as displayed (EXIF orientation applied)."""
    with Image.open(path) as img:
        w, h = img.size
        orientation: Optional[int] = img.getexif().get(EXIF_ORIENTATION, 1)
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)
