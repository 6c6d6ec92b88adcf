"""The tutorial layout: images + class-colour mask PNGs (+ labelImg XML boxes).

::

    DATA_DIR/train_images/NAME.jpg   (or .jpeg / .png)
    DATA_DIR/train_masks/NAME.png    same size, one colour per class
    DATA_DIR/train_bboxes/NAME.xml   labelImg boxes (instance mode "box")
    DATA_DIR/label.pbtxt             item names end in the pixel value

Items are sorted by image file name; item ``i`` gets ``source_id = i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import List, Optional, Tuple

from tfmask.annotation import Sample
from tfmask.errors import DataError, PathLike
from tfmask.data.images import DEFAULT_MAX_IMAGE_PIXELS, find_images, load_image, load_mask
from tfmask.data.instances import (class_map_from_mask, instances_by_class,
                              instances_by_class_from_gray, instances_by_components,
                              instances_in_boxes)
from tfmask.config.label_map import LabelMap
from tfmask.data.report import Problem
from tfmask.data.sources.base import ItemResult, finish, run_guarded
from tfmask.data.sources.voc_xml import read_voc_xml


@dataclass(frozen=True)
class MaskItem:
    """One image and its label files (paths are None when missing)."""

    source_id: int
    image_path: str
    mask_path: Optional[str]
    xml_path: Optional[str]


@dataclass(frozen=True)
class MaskOptions:
    label_map: LabelMap
    instance_mode: str = "class"
    min_instance_area: int = 1
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    want_coco: bool = False


def _by_stem(folder: Optional[Path], suffix: str) -> dict:
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith(".")}


def scan(images_dir: PathLike, masks_dir: PathLike, bboxes_dir: Optional[PathLike]
         ) -> Tuple[List[MaskItem], List[Problem]]:
    """Pairs images with masks (and XML files) by file stem.

    Returns:
      (items, problems): problems found by looking at names alone: masks
      without an image (errors) and non-image files (warnings). Missing
      masks/XML are reported per item when it is processed.

    Raises:
      DataError: the images or masks folder is missing or holds no images.
    """
    images, ignored = find_images(images_dir)
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise DataError(masks_dir, "masks folder not found", kind="missing_file")
    if not images:
        raise DataError(images_dir, "no JPEG or PNG images in this folder",
                        kind="missing_file")
    masks = _by_stem(masks_dir, ".png")
    xmls = _by_stem(Path(bboxes_dir), ".xml") if bboxes_dir is not None else {}
    problems = [Problem("ignored_file", str(p), "not a .jpg/.jpeg/.png image; ignored")
                for p in ignored]
    stems = {}
    items = []
    for i, image in enumerate(images, start=1):
        if image.stem in stems:
            raise DataError(image, f"shares the name '{image.stem}' with {stems[image.stem]}; "
                            "a mask NAME.png can belong to only one image", kind="invalid")
        stems[image.stem] = image.name
        mask = masks.get(image.stem)
        xml = xmls.get(image.stem)
        items.append(MaskItem(i, str(image), str(mask) if mask else None,
                              str(xml) if xml else None))
    problems += [Problem("orphan_mask", str(p), "mask has no image with the same name in "
                         f"{images_dir}") for stem, p in masks.items() if stem not in stems]
    return items, problems


def _convert(item: MaskItem, opts: MaskOptions) -> ItemResult:
    label_map = opts.label_map
    if item.mask_path is None:
        raise DataError(item.image_path, "no mask: expected "
                        f"{Path(item.image_path).stem}.png in the masks folder",
                        kind="missing_mask")
    if opts.instance_mode == "box" and item.xml_path is None:
        raise DataError(item.image_path, "no XML boxes: expected "
                        f"{Path(item.image_path).stem}.xml in the bboxes folder "
                        "(or use instance mode 'class'/'components')", kind="missing_xml")
    loaded = load_image(item.image_path, opts.max_image_pixels)
    image = loaded.encoded
    problems: List[Problem] = []
    if loaded.reencoded:
        problems.append(Problem("reencoded", item.image_path, loaded.reencoded))
    mask = load_mask(item.mask_path, label_map.matches_rgb, opts.max_image_pixels)
    if mask.shape[:2] != tuple(image.size_hw):
        hint = ""
        if mask.shape[:2] == tuple(loaded.raw_size_hw):
            hint = " (the mask matches the image before its EXIF rotation; draw masks on the " \
                   "image as viewers show it)"
        raise DataError(item.mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]} but image "
                        f"{Path(item.image_path).name} is {image.size_hw[1]}x"
                        f"{image.size_hw[0]}{hint}", kind="size_mismatch")
    if opts.instance_mode == "class" and mask.ndim == 2:
        instances = instances_by_class_from_gray(mask, label_map, item.mask_path)
        return finish(Sample(image, instances, item.source_id), problems, opts.want_coco)
    class_map = class_map_from_mask(mask, label_map, item.mask_path)
    if opts.instance_mode == "class":
        instances = instances_by_class(class_map, label_map)
    elif opts.instance_mode == "components":
        instances, dropped = instances_by_components(class_map, label_map,
                                                     opts.min_instance_area)
        if dropped:
            problems.append(Problem("small_component_dropped", item.mask_path,
                                    f"{dropped} component(s) below "
                                    f"{opts.min_instance_area} px dropped"))
    else:
        voc = read_voc_xml(item.xml_path)
        if voc.size_hw is not None and voc.size_hw != tuple(image.size_hw):
            raise DataError(item.xml_path, f"XML <size> is {voc.size_hw[1]}x{voc.size_hw[0]} "
                            f"but the image is {image.size_hw[1]}x{image.size_hw[0]}; the "
                            "boxes were drawn on another image", kind="size_mismatch")
        instances, box_problems = instances_in_boxes(class_map, label_map, voc.objects,
                                                     item.xml_path)
        problems += box_problems
    return finish(Sample(image, instances, item.source_id), problems, opts.want_coco)


def convert_item(item: MaskItem, opts: MaskOptions) -> ItemResult:
    """Converts one image; input errors are returned in ``ItemResult.error``."""
    return run_guarded(item.image_path, partial(_convert, item, opts))
