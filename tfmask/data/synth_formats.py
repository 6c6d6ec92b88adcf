"""The synthetic set written the way labelling tools write it (``tfmask synth --format``).

Same photos and objects as :func:`tfmask.data.synth.synthesize` with the same
arguments (the tutorial layout is ``--format masks``); each object's visible
pixels become one instance, traced into pixel-edge polygons
(:mod:`tfmask.data.polygons`), so every reader gets back exactly the
synthesizer's masks. Layouts, each ready for ``tfmask tfrecord``::

    coco       OUT/train_images/, OUT/annotations.json      --data-dir OUT --coco-json annotations.json
    labelme    OUT/imageNNNN.jpg + OUT/imageNNNN.json       --labelme-dir OUT
    yolo       OUT/data.yaml, OUT/images/{train,val,test}/, OUT/labels/{train,val}/
                                                            --yolo-data OUT/data.yaml
    cvat       OUT/annotations.xml, OUT/images/             --cvat-xml OUT/annotations.xml
    instances  OUT/images/, OUT/instances/NAME.png + NAME.json
                                                            --instance-masks-dir OUT

Each also writes ``OUT/label_map.pbtxt`` (the classes in the synthesizer's
order) for ``--label-map``, and unlabelled test photos (``OUT/test_images``;
YOLO: ``images/test``). An object whose visible part is one outline becomes
a polygon; several parts become polygons sharing a ``group_id`` (labelme,
CVAT) or one polygon joined by zero-width bridges (YOLO, COCO uses RLE then);
an object with a hole (another object inside it) becomes a mask shape
(labelme ``mask``, CVAT ``<mask>`` RLE, COCO RLE). CVAT gets ``<box>`` for
objects that fill their box. Every fifth image (image0005, image0010, ...)
is YOLO's val split. Run::

    tfmask synth --format labelme --out shots --num-train 8
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
from lxml import etree
from PIL import Image

from tfmask.annotation import tight_box_xyxy_px
from tfmask.atomic import atomic_write
from tfmask.config.label_map import LabelClass, LabelMap
from tfmask.data import polygons
from tfmask.data.synth import DEFAULT_CLASSES, SynthSummary, synthesize
from tfmask.errors import ConfigError, PathLike

FORMATS = ("masks", "coco", "labelme", "yolo", "cvat", "instances")
YOLO_VAL_EVERY = 5
_LABELME_VERSION = "5.5.0"  # the labelme file schema written (shapes with description/mask)


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _describe(mask: np.ndarray):
    """(kind, rings): ``polygon`` (one ring), ``parts`` (outer rings only) or ``holes``."""
    rings = polygons.trace_rings(mask)
    if not all(polygons.is_outer(r) for r in rings):
        return "holes", rings
    return ("polygon" if len(rings) == 1 else "parts"), rings


def _cvat_rle(mask: np.ndarray) -> Tuple[str, int, int, int, int]:
    """CVAT's mask code: (rle, left, top, width, height), runs row-major from a background run."""
    x0, y0, x1, y1 = (int(v) for v in tight_box_xyxy_px(mask))
    flat = mask[y0:y1, x0:x1].ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    return ", ".join(map(str, runs)), x0, y0, x1 - x0, y1 - y0


class _Collector:
    """Gathers (image name, instance map, class names) from the synthesizer."""

    def __init__(self):
        self.images: List[Tuple[str, np.ndarray, List[str]]] = []

    def __call__(self, image_name: str, instance_map: np.ndarray, names: List[str]) -> None:
        self.images.append((image_name, instance_map, names))

    def objects(self, index: int):
        """(mask, class name) of each object of image ``index``."""
        _, inst, names = self.images[index]
        return [(inst == j + 1, name) for j, name in enumerate(names)]


def _labelme(out: Path, tmp: Path, got: _Collector, label_map: LabelMap) -> None:
    for i, (image_name, inst, _) in enumerate(got.images):
        shutil.move(str(tmp / "train_images" / image_name), out / image_name)
        h, w = inst.shape
        shapes = []
        for j, (mask, name) in enumerate(got.objects(i)):
            kind, rings = _describe(mask)
            base = {"label": name, "flags": {}, "description": "", "mask": None,
                    "group_id": j + 1 if kind == "parts" else None}
            if kind == "holes":
                x0, y0, x1, y1 = (int(v) for v in tight_box_xyxy_px(mask))
                crop = mask[y0:y1, x0:x1]
                shapes.append(dict(base, shape_type="mask",
                                   points=[[x0, y0], [x1 - 1, y1 - 1]],
                                   mask=base64.b64encode(_png(crop)).decode("ascii")))
                continue
            for ring in rings:
                shapes.append(dict(base, shape_type="polygon", points=ring.tolist()))
        doc = {"version": _LABELME_VERSION, "flags": {}, "shapes": shapes,
               "imagePath": image_name, "imageData": None, "imageHeight": h, "imageWidth": w}
        atomic_write(out / f"{Path(image_name).stem}.json",
                     json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _yolo(out: Path, tmp: Path, got: _Collector, label_map: LabelMap) -> None:
    index = {name: k for k, name in enumerate(label_map.names)}
    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        (out / sub).mkdir(parents=True, exist_ok=True)  # a split may get no image
    for i, (image_name, inst, _) in enumerate(got.images):
        split = "val" if (i + 1) % YOLO_VAL_EVERY == 0 else "train"
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp / "train_images" / image_name), out / "images" / split / image_name)
        h, w = inst.shape
        lines = []
        for mask, name in got.objects(i):
            ring = polygons.join_rings(polygons.trace_rings(mask)) / [w, h]
            lines.append(f"{index[name]} " + " ".join(f"{v:.6f}" for v in ring.ravel()))
        atomic_write(out / "labels" / split / f"{Path(image_name).stem}.txt",
                     "".join(line + "\n" for line in lines))
    names = "".join(f"  {k}: {json.dumps(n)}\n" for k, n in enumerate(label_map.names))
    atomic_write(out / "data.yaml", "# Ultralytics YOLO segmentation dataset (tfmask synth)\n"
                 "path: .\ntrain: images/train\nval: images/val\ntest: images/test\n"
                 f"names:\n{names}")


def _cvat(out: Path, tmp: Path, got: _Collector, label_map: LabelMap) -> None:
    root = etree.Element("annotations")
    etree.SubElement(root, "version").text = "1.1"
    task = etree.SubElement(etree.SubElement(root, "meta"), "task")
    etree.SubElement(task, "name").text = "tfmask synth"
    etree.SubElement(task, "size").text = str(len(got.images))
    etree.SubElement(task, "mode").text = "annotation"
    labels = etree.SubElement(task, "labels")
    for name in label_map.names:
        label = etree.SubElement(labels, "label")
        etree.SubElement(label, "name").text = name
        etree.SubElement(label, "type").text = "any"
    (out / "images").mkdir(parents=True, exist_ok=True)
    group = 0
    for i, (image_name, inst, _) in enumerate(got.images):
        shutil.move(str(tmp / "train_images" / image_name), out / "images" / image_name)
        h, w = inst.shape
        image = etree.SubElement(root, "image", id=str(i), name=image_name, width=str(w),
                                 height=str(h))
        for z, (mask, name) in enumerate(got.objects(i)):
            common = {"label": name, "source": "manual", "occluded": "0", "z_order": str(z)}
            x0, y0, x1, y1 = tight_box_xyxy_px(mask)
            if mask[int(y0):int(y1), int(x0):int(x1)].all():
                etree.SubElement(image, "box", common, xtl=f"{x0:.2f}", ytl=f"{y0:.2f}",
                                 xbr=f"{x1:.2f}", ybr=f"{y1:.2f}")
                continue
            kind, rings = _describe(mask)
            if kind == "holes":
                rle, left, top, width, height = _cvat_rle(mask)
                etree.SubElement(image, "mask", common, rle=rle, left=str(left), top=str(top),
                                 width=str(width), height=str(height))
                continue
            extra = {}
            if kind == "parts":
                group += 1
                extra["group_id"] = str(group)
            for ring in rings:
                points = ";".join(f"{x:.2f},{y:.2f}" for x, y in ring)
                etree.SubElement(image, "polygon", dict(common, points=points, **extra))
    atomic_write(out / "annotations.xml", etree.tostring(
        root, pretty_print=True, xml_declaration=True, encoding="utf-8"))


def _coco(out: Path, tmp: Path, got: _Collector, label_map: LabelMap) -> None:
    from tfmask.data import coco

    shutil.move(str(tmp / "train_images"), out / "train_images")
    images, anns = [], []
    for i, (image_name, inst, _) in enumerate(got.images):
        images.append(coco.image_entry(i + 1, image_name, inst.shape))
        for mask, name in got.objects(i):
            kind, rings = _describe(mask)
            x0, y0, x1, y1 = (float(v) for v in tight_box_xyxy_px(mask))
            seg = ([r.ravel().tolist() for r in rings] if kind == "polygon"
                   else coco.encode_rle(mask))
            anns.append({"id": len(anns) + 1, "image_id": i + 1,
                         "category_id": label_map.by_name(name).id, "iscrowd": 0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(mask.sum()),
                         "segmentation": seg})
    doc = {"info": {"description": "tfmask synth"}, "images": images, "annotations": anns,
           "categories": coco.categories(label_map)}
    atomic_write(out / "annotations.json", json.dumps(doc) + "\n")


def _instances(out: Path, tmp: Path, got: _Collector, label_map: LabelMap) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    for image_name, inst, names in got.images:
        shutil.move(str(tmp / "train_images" / image_name), out / "images" / image_name)
        stem = Path(image_name).stem
        ids = inst.astype(np.uint8 if len(names) < 256 else np.uint16)
        atomic_write(out / "instances" / f"{stem}.png", _png(ids))
        atomic_write(out / "instances" / f"{stem}.json", json.dumps(
            {str(j + 1): n for j, n in enumerate(names)}, indent=1) + "\n")


_WRITERS: Dict[str, Callable] = {"coco": _coco, "labelme": _labelme, "yolo": _yolo,
                                 "cvat": _cvat, "instances": _instances}
_TOP_FILES = {"coco": ("annotations.json", "train_images"), "labelme": (),
              "yolo": ("data.yaml", "images", "labels"), "cvat": ("annotations.xml", "images"),
              "instances": ("images", "instances")}


def synthesize_format(out_dir: PathLike, fmt: str = "masks", **kwargs) -> SynthSummary:
    """Writes the synthetic set of :func:`~tfmask.data.synth.synthesize` in ``fmt``.

    Args:
      out_dir: the folder to write (see the module docstring for each layout).
      fmt: one of :data:`FORMATS`.
      **kwargs: :func:`~tfmask.data.synth.synthesize`'s arguments (classes,
        seed, num_train, ..., ``overwrite``).

    Raises:
      ConfigError: an unknown format, invalid arguments, or a folder that
        already holds files of this layout (unless ``overwrite``).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format '{fmt}'; valid: {', '.join(FORMATS)}")
    if fmt == "masks":
        return synthesize(out_dir, **kwargs)
    out = Path(out_dir)
    overwrite = kwargs.pop("overwrite", False)
    existing = [out / n for n in _TOP_FILES[fmt] + ("label_map.pbtxt", "test_images")
                if (out / n).exists()] + (sorted(out.glob("image*.json")) if out.is_dir()
                                          else [])
    if existing and not overwrite:
        raise ConfigError(f"{out} already has {fmt} files ({existing[0]} and "
                          f"{len(existing) - 1} more); choose another folder or pass "
                          "--overwrite (overwrite=True)")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    classes = tuple(kwargs.get("classes", DEFAULT_CLASSES))
    label_map = LabelMap(tuple(LabelClass(i + 1, c.name) for i, c in enumerate(classes)))
    got = _Collector()
    with tempfile.TemporaryDirectory(dir=out, prefix=".synth-") as tmp_name:
        tmp = Path(tmp_name)
        summary = synthesize(tmp, on_train_image=got, **kwargs)
        _WRITERS[fmt](out, tmp, got, label_map)
        test_dst = out / "images" / "test" if fmt == "yolo" else out / "test_images"
        test_dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp / "test_images"), test_dst)
    label_map.write(out / "label_map.pbtxt")
    return SynthSummary(str(out), summary.num_train, summary.num_test,
                        summary.objects_per_class, summary.dropped_objects, summary.mask_mode)
