"""Which pixel values do the masks hold? The table behind ``tfmask check-pixels``.

The tutorial's label map names each class by its mask gray level
(``item { id: 1 name: 'speaker076' }`` = class speaker, gray 76), and the
converter compares a mask's PIL ``convert('L')`` with that value (or its
``convert('RGB')`` with a ``--class-pixel cup=255,0,0`` triple). This module
scans one mask or a folder of masks, counts every distinct colour with its
gray level, and suggests a label map to start from.

Example::

    from tfmask.data.pixels import scan_masks
    report = scan_masks("dataset/train_masks")
    print(report.format_table())
    print(report.suggested_label_map())

Masks are decoded by :func:`tfmask.data.images.load_mask`, exactly as the
converter decodes them, one file at a time (only the colour counts are kept).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

from tfmask.errors import DataError, PathLike
from tfmask.data.images import load_mask

RGB = Tuple[int, int, int]

# A colour covering less than this share of all scanned pixels is "rare".
RARE_FRACTION = 0.001
# This many rare colours or more look like anti-aliased or resampled edges
# rather than real classes (a dataset may well hold one or two tiny classes).
MANY_RARE_COLOURS = 4
# Below this many files a progress bar is only noise.
PROGRESS_MIN_FILES = 10
# How many example values a warning lists before "...".
_LIST_MAX = 8


@dataclass(frozen=True)
class ColourCount:
    """One distinct mask colour.

    Attributes:
      gray: its gray level, PIL ``convert('L')`` (what a gray label map matches).
      rgb: its colour, PIL ``convert('RGB')`` (what ``--class-pixel R,G,B`` matches).
      pixels: how many pixels of all scanned masks have it.
      images: how many masks contain it.
    """

    gray: int
    rgb: RGB
    pixels: int
    images: int


@dataclass(frozen=True)
class GrayLevelCount:
    """One gray level, summed over the colours that convert to it.

    Attributes:
      gray: the gray level (0 is the background).
      pixels: pixels of all scanned masks at this level.
      images: masks containing this level.
      rgbs: the distinct colours that convert to it, sorted; more than one
        means a gray label map cannot tell them apart.
    """

    gray: int
    pixels: int
    images: int
    rgbs: Tuple[RGB, ...]


@dataclass(frozen=True)
class PixelReport:
    """What :func:`scan_masks` found.

    Attributes:
      source: the mask file or folder that was scanned.
      files: the masks scanned, in scan order.
      colours: every distinct colour, sorted by gray level, then RGB.
      gray_levels: every distinct gray level, ascending.
      warnings: problems a label map written from these values would run into.
    """

    source: str
    files: Tuple[str, ...]
    colours: Tuple[ColourCount, ...]
    gray_levels: Tuple[GrayLevelCount, ...]
    warnings: Tuple[str, ...]

    @property
    def total_pixels(self) -> int:
        return sum(c.pixels for c in self.colours)

    @property
    def class_gray_levels(self) -> List[int]:
        """The non-zero gray levels: one class each in a gray label map."""
        return [g.gray for g in self.gray_levels if g.gray != 0]

    def suggested_label_map(self, prefix: str = "class") -> str:
        """Label-map text with one item per non-zero gray level.

        Ids are 1.. in order of gray level. Names follow the tutorial's
        convention (class name + three-digit gray level); the class part is
        ``PREFIX<id>_`` so that the file parses as it is (two items named
        ``class076`` and ``class150`` would both be class ``class``), and a
        comment asks the user to rename it.
        """
        levels = self.class_gray_levels
        lines = ["# Suggested by `tfmask check-pixels` from " + self.source,
                 "# Rename the part before the three-digit gray level to your class name",
                 f"# (e.g. '{prefix}1_076' -> 'speaker076'); keep the digits: they are the",
                 "# mask value the converter matches (PIL convert('L'))."]
        if not levels:
            lines.append("# No class pixels found: every mask is all background (gray 0).")
        if any(len(g.rgbs) > 1 for g in self.gray_levels if g.gray != 0):
            lines.append("# Several colours share a gray level: see the warnings, and give "
                         "classes")
            lines.append("# by colour with --class-pixel NAME=R,G,B instead.")
        text = "\n".join(lines) + "\n"
        for class_id, gray in enumerate(levels, start=1):
            text += f"item {{\n  id: {class_id}\n  name: '{prefix}{class_id}_{gray:03d}'\n}}\n"
        return text

    def format_table(self) -> str:
        """An aligned table, one row per colour: gray | RGB | pixels | images."""
        header = ("gray", "RGB", "pixels", "images")
        rows = [(str(c.gray), "({},{},{})".format(*c.rgb), str(c.pixels), str(c.images))
                for c in self.colours]
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(4)]
        # Numbers right-aligned, the RGB column left-aligned.
        aligns = (str.rjust, str.ljust, str.rjust, str.rjust)

        def fmt(row):
            return "  ".join(a(v, w) for a, v, w in zip(aligns, row, widths)).rstrip()

        lines = [fmt(header), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows]
        lines.append(f"{len(self.files)} mask(s), {len(self.colours)} colour(s), "
                     f"{len(self.gray_levels)} gray level(s), {self.total_pixels} pixels")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-serializable view (for ``check-pixels --json``)."""
        return {
            "source": self.source,
            "num_files": len(self.files),
            "total_pixels": self.total_pixels,
            "colours": [{"gray": c.gray, "rgb": list(c.rgb), "pixels": c.pixels,
                         "images": c.images} for c in self.colours],
            "gray_levels": [{"gray": g.gray, "pixels": g.pixels, "images": g.images,
                             "rgbs": [list(v) for v in g.rgbs]} for g in self.gray_levels],
            "warnings": list(self.warnings),
            "suggested_label_map": self.suggested_label_map(),
        }


def find_masks(path: PathLike) -> List[Path]:
    """The masks to scan: ``path`` itself, or every ``.png`` in the folder, sorted.

    Hidden files (such as tfmask's own temporary files) are left out and
    sub-folders are not searched.

    Raises:
      DataError: the path does not exist, or a folder holds no ``.png``.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "no such mask file or folder", kind="missing_file")
    masks = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png"
                   and not p.name.startswith(".") and p.is_file())
    if not masks:
        raise DataError(path, "the folder holds no .png masks", kind="missing_file")
    return masks


def count_colours(mask_path: PathLike) -> Dict[RGB, int]:
    """Pixel count of every distinct ``convert('RGB')`` colour of one mask.

    Raises:
      DataError: the file is unreadable, not an image, a JPEG or 16-bit.
    """
    rgb = load_mask(mask_path, rgb=True)
    codes = ((rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
             | rgb[..., 2].astype(np.uint32))
    uniq, counts = np.unique(codes, return_counts=True)
    return {(int(u) >> 16, (int(u) >> 8) & 255, int(u) & 255): int(n)
            for u, n in zip(uniq, counts)}


def gray_levels_of(rgbs: Sequence[RGB]) -> List[int]:
    """PIL's ``convert('L')`` of each colour.

    For every mask mode the converter accepts (1, L, P, RGB, RGBA, LA, PA),
    ``convert('L')`` of the image equals ``convert('L')`` of its
    ``convert('RGB')``, so the gray level of each distinct colour is the gray
    level the converter sees at those pixels.
    """
    if not rgbs:
        return []
    row = np.asarray(rgbs, np.uint8).reshape(1, -1, 3)
    return np.asarray(Image.fromarray(row, "RGB").convert("L")).reshape(-1).tolist()


def scan_masks(path: PathLike, progress: bool = False) -> PixelReport:
    """Counts the colours and gray levels of one mask or a folder of masks.

    Args:
      path: a mask PNG, or a folder whose ``.png`` files are all scanned.
      progress: show a progress bar on stderr (only for 10 or more files, and
        only when stderr is a terminal).

    Returns:
      The :class:`PixelReport`.

    Raises:
      DataError: a missing path, a folder without ``.png`` files, or a file
        that is not a readable mask (naming that file).
    """
    from tqdm import tqdm

    files = find_masks(path)
    pixels: Dict[RGB, int] = defaultdict(int)
    images: Dict[RGB, int] = defaultdict(int)
    gray_images: Dict[int, int] = defaultdict(int)
    gray_of: Dict[RGB, int] = {}
    show = progress and len(files) >= PROGRESS_MIN_FILES
    for mask_path in tqdm(files, unit="mask", desc="scanning", disable=None if show else True):
        counts = count_colours(mask_path)
        new = [c for c in counts if c not in gray_of]
        gray_of.update(zip(new, gray_levels_of(new)))
        for colour, n in counts.items():
            pixels[colour] += n
            images[colour] += 1
        for gray in {gray_of[c] for c in counts}:
            gray_images[gray] += 1

    colours = tuple(sorted((ColourCount(gray_of[c], c, pixels[c], images[c]) for c in pixels),
                           key=lambda c: (c.gray, c.rgb)))
    by_gray: Dict[int, List[ColourCount]] = defaultdict(list)
    for c in colours:
        by_gray[c.gray].append(c)
    levels = tuple(GrayLevelCount(g, sum(c.pixels for c in cs), gray_images[g],
                                  tuple(c.rgb for c in cs)) for g, cs in sorted(by_gray.items()))
    return PixelReport(str(path), tuple(str(f) for f in files), colours, levels,
                       tuple(_warnings(colours, levels)))


def _fmt_rgb(rgb: RGB) -> str:
    return "({},{},{})".format(*rgb)


def _listed(items: Sequence[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > _LIST_MAX else ""
    return ", ".join(items[:_LIST_MAX]) + more


def _warnings(colours: Sequence[ColourCount], levels: Sequence[GrayLevelCount]) -> List[str]:
    out = []
    for g in levels:
        if g.gray != 0 and len(g.rgbs) > 1:
            out.append(f"colours {_listed([_fmt_rgb(v) for v in g.rgbs])} share gray level "
                       f"{g.gray}: a gray label map (name suffix {g.gray:03d}) cannot tell "
                       "them apart; give classes by colour with --class-pixel NAME=R,G,B")
    dark = [c.rgb for c in colours if c.gray == 0 and c.rgb != (0, 0, 0)]
    if dark:
        out.append(f"colours {_listed([_fmt_rgb(v) for v in dark])} have gray level 0, the "
                   "background: matched by gray level they are not objects; if they are "
                   "classes, give them by colour with --class-pixel NAME=R,G,B")
    total = sum(c.pixels for c in colours)
    rare = [c for c in colours if c.pixels < RARE_FRACTION * total]
    if len(rare) >= MANY_RARE_COLOURS:
        out.append(f"{len(rare)} of {len(colours)} colours each cover less than "
                   f"{RARE_FRACTION:.1%} of the pixels (gray "
                   f"{_listed(sorted({str(c.gray) for c in rare}, key=int))}): this looks "
                   "like anti-aliased, resized or JPEG-saved masks. The converter rejects "
                   "values that match no class; save masks without smoothing "
                   "(nearest-neighbour) rather than adding these values as classes")
    if all(g.gray == 0 for g in levels):
        out.append("every mask is all background (gray 0): no class pixels found")
    return out
