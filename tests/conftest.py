"""Shared fixtures: tiny datasets in the tutorial layout with known geometry, and the
shipped tiny config pointed at a small record set (training tests).

One conftest for the whole suite: test modules import helpers with
``from conftest import ...``, and a second conftest.py in a subfolder would
shadow this one for modules collected after it.

Objects are axis-aligned rectangles, so the expected instance masks and boxes
follow from the object list alone, independently of the converter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# class name -> (label-map id, gray level, RGB colour)
CLASSES: Dict[str, Tuple[int, int, Tuple[int, int, int]]] = {
    "speaker": (1, 76, (255, 0, 0)),
    "cup": (2, 150, (0, 255, 0)),
}


@dataclass(frozen=True)
class Rect:
    """An object: class name and pixel-edge box (x0, y0, x1, y1), x1/y1 exclusive."""

    cls: str
    box: Tuple[int, int, int, int]

    def mask(self, size_hw) -> np.ndarray:
        m = np.zeros(size_hw, bool)
        x0, y0, x1, y1 = self.box
        m[y0:y1, x0:x1] = True
        return m


def label_map_text(pixel_suffix: bool = True) -> str:
    return "".join(
        f"item {{ id: {cid} name: '{name}{gray:03d}' }}\n" if pixel_suffix
        else f"item {{ id: {cid} name: \"{name}\" }}\n"
        for name, (cid, gray, _) in CLASSES.items())


def voc_xml(filename: str, size_hw, objects: Sequence[Rect]) -> str:
    objs = "".join(
        f"<object><name>{o.cls}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{o.box[0]}</xmin><ymin>{o.box[1]}</ymin>"
        f"<xmax>{o.box[2]}</xmax><ymax>{o.box[3]}</ymax></bndbox></object>\n" for o in objects)
    return (f"<annotation><folder>train_images</folder><filename>{filename}</filename>"
            f"<size><width>{size_hw[1]}</width><height>{size_hw[0]}</height><depth>3</depth>"
            f"</size><segmented>0</segmented>\n{objs}</annotation>\n")


def write_image(path: Path, size_hw, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((*size_hw, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    img.save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")


def write_mask(path: Path, size_hw, objects: Sequence[Rect], mode: str = "L") -> None:
    """Class-colour mask; later objects paint over earlier ones."""
    if mode == "L":
        arr = np.zeros(size_hw, np.uint8)
        for o in objects:
            arr[o.mask(size_hw)] = CLASSES[o.cls][1]
        Image.fromarray(arr).save(path)
    elif mode == "RGB":
        arr = np.zeros((*size_hw, 3), np.uint8)
        for o in objects:
            arr[o.mask(size_hw)] = CLASSES[o.cls][2]
        Image.fromarray(arr).save(path)
    elif mode == "P":
        arr = np.zeros(size_hw, np.uint8)
        palette = [0, 0, 0]
        for i, (name, (_, gray, _)) in enumerate(CLASSES.items(), start=1):
            palette += [gray, gray, gray]  # palette colours whose gray level is `gray`
        for o in objects:
            arr[o.mask(size_hw)] = list(CLASSES).index(o.cls) + 1
        img = Image.fromarray(arr, mode="P")
        img.putpalette(palette + [0] * (768 - len(palette)))
        img.save(path)
    else:
        raise ValueError(mode)


# Two images: "a" has two separate speakers and one cup; "b" one cup only.
DEFAULT_LAYOUT: Dict[str, List[Rect]] = {
    "a": [Rect("speaker", (2, 3, 12, 10)), Rect("speaker", (20, 4, 30, 14)),
          Rect("cup", (5, 20, 25, 36))],
    "b": [Rect("cup", (10, 10, 30, 30))],
}
SIZE_HW = (40, 48)


@dataclass
class Dataset:
    root: Path
    layout: Dict[str, List[Rect]]
    size_hw: Tuple[int, int]

    def image(self, stem: str) -> Path:
        return next((self.root / "train_images").glob(stem + ".*"))


def make_dataset(root: Path, layout=None, size_hw=SIZE_HW, mask_mode: str = "L",
                 image_ext: str = ".jpg", pixel_suffix: bool = True) -> Dataset:
    layout = DEFAULT_LAYOUT if layout is None else layout
    for sub in ("train_images", "train_masks", "train_bboxes"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, (stem, objects) in enumerate(sorted(layout.items())):
        write_image(root / "train_images" / f"{stem}{image_ext}", size_hw, seed=i)
        write_mask(root / "train_masks" / f"{stem}.png", size_hw, objects, mask_mode)
        (root / "train_bboxes" / f"{stem}.xml").write_text(
            voc_xml(f"{stem}{image_ext}", size_hw, objects))
    (root / "label.pbtxt").write_text(label_map_text(pixel_suffix))
    return Dataset(root, layout, size_hw)


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    return make_dataset(tmp_path / "data")


# --- training tests: the shipped tiny config and a small record set

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "mask_rcnn_tiny_cpu.config"


def write_config(path: Path, records: Path, fields: Optional[Dict[str, Any]] = None) -> Path:
    """The shipped tiny config, pointed at ``records``, with fields edited as data.

    ``fields`` maps a dotted field path (``train_config.freeze_variables``) to
    its new value (a list for a repeated field, a parsed Message for a
    message, None to remove the field).
    """
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(TINY)
    edit.point_at_records(msg, records)
    for key, value in (fields or {}).items():
        if value is None:
            assert msg.get_path(key) is not None, f"{key} is not in the tiny config"
            msg.remove(key)
        else:
            msg.set(key, value)
    write_text_file(path, msg)
    return path


@pytest.fixture(scope="session")
def tiny_records(tmp_path_factory) -> Path:
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import synthesize

    root = tmp_path_factory.mktemp("tiny")
    synthesize(root / "data", num_train=12, num_test=0, size_hw=(96, 128), seed=1,
               min_objects=1, max_objects=3)
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "records"),
                          instance_mode="box", val_fraction=0.25, progress=False))
    return root / "records"
