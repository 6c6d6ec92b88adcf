"""The bad-input corpus: each case builds its files at test time and says what must happen.

A case writes a dataset (tutorial layout: ``train_images``, ``train_masks``,
``train_bboxes``, ``label.pbtxt``) or a pipeline.config under a folder, and
gives the ``tfmask`` command line to run on it. An *error* case expects exit
status 1, exactly one ``error: PATH: reason`` line naming ``file`` and
matching ``reason``, no traceback and no output file. An *accepted* case
(hand-made data that is odd but valid) expects exit status 0 and the problem
kind it must report (e.g. ``reencoded``), or none.

Files are generated rather than stored: most are a few bytes, and the
decompression bomb is a 100-byte PNG whose header claims 20000x20000 pixels.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
from PIL import Image

from conftest import SIZE_HW, Rect, make_dataset, voc_xml, write_mask

Builder = Callable[[Path], List[str]]


@dataclass(frozen=True)
class Case:
    """One corpus entry; ``build(root)`` writes files under root and returns argv."""

    name: str
    build: Builder
    file: str = ""  # the file name the error must name
    reason: str = ""  # regex the error line must match; "" = the command must succeed
    reports: Optional[str] = None  # accepted cases: a problem kind the report must list

    @property
    def is_error(self) -> bool:
        return bool(self.reason)


# ------------------------------------------------------------------ helpers

def tfrecord(root: Path, *extra: str) -> List[str]:
    return ["tfrecord", "--data-dir", str(root / "data"), "--output-dir", str(root / "out"),
            "--val-fraction", "0", *extra]


def data(root: Path, **kwargs):
    return make_dataset(root / "data", **kwargs)


def boxes(root: Path) -> List[str]:
    return tfrecord(root, "--instance-mode", "box")


def _png_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with IHDR claiming another size (CRC fixed): a decompression bomb header."""
    start = 8 + 8  # signature, IHDR length + tag
    ihdr = bytearray(png[start:start + 13])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr), zlib.crc32(b"IHDR")))
    return png[:start] + bytes(ihdr) + crc + png[start + 17:]


def _replace(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _image(root: Path, stem: str = "a") -> Path:
    return next((root / "data" / "train_images").glob(stem + ".*"))


def _mask(root: Path, stem: str = "a") -> Path:
    return root / "data" / "train_masks" / f"{stem}.png"


def _xml(root: Path, stem: str = "a") -> Path:
    return root / "data" / "train_bboxes" / f"{stem}.xml"


def _label_map(root: Path, text: str) -> None:
    (root / "data" / "label.pbtxt").write_text(text)


def _photo(size_hw=SIZE_HW, seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random((*size_hw, 3)) * 255).astype(np.uint8)


# ----------------------------------------------------------- image files

def empty_jpeg(root):
    data(root)
    _replace(_image(root), b"")
    return tfrecord(root)


def truncated_jpeg(root):
    data(root)
    p = _image(root)
    _replace(p, p.read_bytes()[: p.stat().st_size // 2])
    return tfrecord(root)


def empty_png(root):
    data(root, image_ext=".png")
    _replace(_image(root), b"")
    return tfrecord(root)


def truncated_png(root):
    data(root, image_ext=".png")
    p = _image(root)
    _replace(p, p.read_bytes()[: p.stat().st_size // 2])
    return tfrecord(root)


def not_an_image(root):
    data(root)
    _replace(_image(root), b"Just some notes about this photo, not a photo.\n" * 20)
    return tfrecord(root)


def gif_named_jpg(root):
    data(root)
    out = io.BytesIO()
    Image.fromarray(_photo()).convert("P").save(out, format="GIF")
    _replace(_image(root), out.getvalue())
    return tfrecord(root)


def image_bomb(root):
    data(root, image_ext=".png")
    _replace(_image(root), _with_ihdr_size(_png_bytes(Image.new("RGB", (8, 8))), 20000, 20000))
    return tfrecord(root)


def mask_bomb(root):
    data(root)
    _replace(_mask(root), _with_ihdr_size(_png_bytes(Image.new("L", (8, 8))), 30000, 30000))
    return tfrecord(root)


def _save_image(root, img: Image.Image, fmt: str, **kwargs):
    path = _image(root)
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    _replace(path, out.getvalue())


def cmyk_jpeg(root):
    data(root)
    _save_image(root, Image.fromarray(_photo()).convert("CMYK"), "JPEG")
    return tfrecord(root)


def gray16_png(root):
    data(root, image_ext=".png")
    arr = (np.arange(SIZE_HW[0] * SIZE_HW[1]).reshape(SIZE_HW) * 37 % 65536).astype(np.uint16)
    _save_image(root, Image.fromarray(arr), "PNG")
    return tfrecord(root)


def grayscale_jpeg(root):
    data(root)
    _save_image(root, Image.fromarray(_photo()).convert("L"), "JPEG")
    return tfrecord(root)


def rgba_png(root):
    data(root, image_ext=".png")
    _save_image(root, Image.fromarray(_photo()).convert("RGBA"), "PNG")
    return tfrecord(root)


def palette_png(root):
    data(root, image_ext=".png")
    _save_image(root, Image.fromarray(_photo()).convert("P"), "PNG")
    return tfrecord(root)


def exif_rotated_jpeg(root):
    ds = data(root)
    # Stored sideways (W x H swapped) with EXIF orientation 6 (rotate 90° CW to view):
    # as viewed it has the dataset's size, so the mask matches.
    viewed = Image.fromarray(_photo(ds.size_hw))
    stored = viewed.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    _save_image(root, stored, "JPEG", exif=exif.tobytes())
    return tfrecord(root)


def spaces_and_unicode_names(root):
    ds = data(root)
    for sub, ext in (("train_images", ".jpg"), ("train_masks", ".png"), ("train_bboxes", ".xml")):
        (ds.root / sub / f"a{ext}").rename(ds.root / sub / f"my phötö ünïcode 写真{ext}")
    return boxes(root)


# ------------------------------------------------------------------ masks

def mask_other_size(root):
    data(root)
    write_mask(_mask(root), (20, 20), [Rect("cup", (1, 1, 5, 5))])
    return tfrecord(root)


def mask_16bit(root):
    data(root)
    Image.fromarray(np.full(SIZE_HW, 76 * 256, np.uint16)).save(_mask(root))
    return tfrecord(root)


def mask_unknown_values(root):
    data(root)
    arr = np.zeros(SIZE_HW, np.uint8)
    arr[2:6, 2:6] = 77  # off by one from speaker076
    Image.fromarray(arr).save(_mask(root))
    return tfrecord(root)


def mask_is_jpeg(root):
    data(root)
    out = io.BytesIO()
    Image.fromarray(np.zeros(SIZE_HW, np.uint8)).save(out, format="JPEG")
    _replace(_mask(root), out.getvalue())
    return tfrecord(root)


def image_without_mask(root):
    data(root)
    _mask(root, "b").unlink()
    return tfrecord(root)


def mask_without_image(root):
    data(root)
    write_mask(root / "data" / "train_masks" / "orphan.png", SIZE_HW, [])
    return tfrecord(root)


def empty_dataset(root):
    for sub in ("train_images", "train_masks"):
        (root / "data" / sub).mkdir(parents=True)
    _label_map(root, "item { id: 1 name: 'cup150' }\n")
    return tfrecord(root)


def missing_images_folder(root):
    (root / "data" / "train_masks").mkdir(parents=True)
    _label_map(root, "item { id: 1 name: 'cup150' }\n")
    return tfrecord(root)


# -------------------------------------------------------------------- XML

def xml_other_size(root):
    ds = data(root)
    _xml(root).write_text(voc_xml("a.jpg", (80, 96), ds.layout["a"]))
    return boxes(root)


def xml_unknown_class(root):
    data(root)
    _xml(root).write_text(voc_xml("a.jpg", SIZE_HW, [Rect("cup", (1, 1, 9, 9))])
                          .replace("<name>cup</name>", "<name>mug</name>"))
    return boxes(root)


def xml_malformed(root):
    data(root)
    _xml(root).write_text("<annotation><size><width>48</width></size><object>")
    return boxes(root)


def xml_missing(root):
    data(root)
    _xml(root).unlink()
    return boxes(root)


def xml_external_entity(root):
    data(root)
    secret = root / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    _xml(root).write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        "<annotation><size><width>48</width><height>40</height></size><object><name>&xxe;</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        "</annotation>\n")
    return boxes(root)


def xml_billion_laughs(root):
    data(root)
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10)]
    _xml(root).write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE annotation [' + "".join(ents) + "]>\n"
        "<annotation><size><width>48</width><height>40</height></size><object><name>&lol9;"
        "</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        "</object></annotation>\n")
    return boxes(root)


def _one_box(root, box):
    data(root)
    _xml(root).write_text(voc_xml("a.jpg", SIZE_HW, [Rect("speaker", box)]))
    return boxes(root)


def box_inverted(root):
    return _one_box(root, (12, 3, 2, 10))


def box_zero_area(root):
    return _one_box(root, (2, 3, 2, 10))


def box_outside_image(root):
    return _one_box(root, (100, 100, 120, 130))


def box_partly_outside_is_clipped(root):
    return _one_box(root, (-5, 3, 12, 10))


def box_not_a_number(root):
    data(root)
    _xml(root).write_text(voc_xml("a.jpg", SIZE_HW, [Rect("speaker", (2, 3, 12, 10))])
                          .replace("<xmax>12</xmax>", "<xmax>twelve</xmax>"))
    return boxes(root)


# -------------------------------------------------------------- label map

def label_map_syntax_error(root):
    data(root)
    _label_map(root, "item { id: 1 name: 'speaker076' \nitem { id: 2 name: 'cup150' }\n")
    return tfrecord(root)


def label_map_duplicate_ids(root):
    data(root)
    _label_map(root, "item { id: 1 name: 'speaker076' }\nitem { id: 1 name: 'cup150' }\n")
    return tfrecord(root)


def label_map_id_zero(root):
    data(root)
    _label_map(root, "item { id: 0 name: 'speaker076' }\nitem { id: 2 name: 'cup150' }\n")
    return tfrecord(root)


def label_map_duplicate_names(root):
    data(root)
    _label_map(root, "item { id: 1 name: 'cup076' }\nitem { id: 2 name: 'cup150' }\n")
    return tfrecord(root)


def label_map_no_pixel_suffix(root):
    data(root)
    _label_map(root, "item { id: 1 name: 'speaker' }\nitem { id: 2 name: 'cup150' }\n")
    return tfrecord(root)


def label_map_missing(root):
    data(root)
    (root / "data" / "label.pbtxt").unlink()
    return tfrecord(root)


# -------------------------------------------------------- pipeline.config

def _pipeline(root: Path, edit: Callable[[str], str]) -> List[str]:
    """The shipped tiny config with absolute paths, edited; returns a train command."""
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "configs" / "mask_rcnn_tiny_cpu.config").read_text()
    ds = data(root)
    label_map = ds.root / "label_map.pbtxt"
    label_map.write_text("item { id: 1 name: 'speaker' }\nitem { id: 2 name: 'cup' }\n")
    records = ds.root / "records"
    records.mkdir()
    (records / "train-00000-of-00001").write_bytes(b"")
    text = re.sub(r'label_map_path: "[^"]*"', f'label_map_path: "{label_map}"', text)
    text = re.sub(r'input_path: "[^"]*train[^"]*"', f'input_path: "{records}/train-*"', text)
    text = re.sub(r'input_path: "[^"]*val[^"]*"', f'input_path: "{records}/train-*"', text)
    text = re.sub(r"num_classes: \d+", "num_classes: 2", text)
    config = root / "pipeline.config"
    config.write_text(edit(text))
    return ["train", "--pipeline_config_path", str(config), "--model_dir", str(root / "out"),
            "--num_train_steps", "1"]


def config_path_to_be_configured(root):
    return _pipeline(root, lambda t: re.sub(r'label_map_path: "[^"]*"',
                                            'label_map_path: "PATH_TO_BE_CONFIGURED/label.pbtxt"',
                                            t, count=1))


def config_num_classes_mismatch(root):
    return _pipeline(root, lambda t: t.replace("num_classes: 2", "num_classes: 5"))


def config_unknown_augmentation(root):
    return _pipeline(root, lambda t: t.replace(
        "train_config {", "train_config {\n  data_augmentation_options { random_rotate { } }", 1))


def config_syntax_error(root):
    return _pipeline(root, lambda t: t.replace("model {", "model {{", 1))


def config_unknown_feature_extractor(root):
    return _pipeline(root, lambda t: re.sub(r"type: '[^']*'", "type: 'faster_rcnn_vgg99'", t,
                                            count=1))


# ------------------------------------- labelme / YOLO / CVAT / instance masks

def _fmt(root: Path, fmt: str) -> Path:
    """A two-image synthetic set in ``fmt`` under root/data (images image0001, image0002)."""
    from tfmask.data.synth_formats import synthesize_format

    synthesize_format(root / "data", fmt, num_train=2, num_test=0, size_hw=(40, 48), seed=1,
                      min_objects=1, max_objects=2)
    return root / "data"


def _out(root: Path, *argv: str) -> List[str]:
    return ["tfrecord", *argv, "--output-dir", str(root / "out"), "--no-progress"]


def _edit_json(path: Path, edit) -> None:
    import json
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _labelme(root, edit=None, text=None):
    d = _fmt(root, "labelme")
    if text is not None:
        (d / "image0001.json").write_text(text)
    if edit is not None:
        _edit_json(d / "image0001.json", edit)
    return _out(root, "--labelme-dir", str(d))


def labelme_invalid_json(root):
    return _labelme(root, text='{"shapes": [ {"label": "cup",\n')


def labelme_not_labelme(root):
    return _labelme(root, text='{"imagePath": "image0001.jpg"}')


def labelme_missing_image(root):
    return _labelme(root, lambda d: d.update(imagePath="gone.jpg"))


def labelme_two_point_polygon(root):
    return _labelme(root, lambda d: d["shapes"][0].update(points=[[1, 1], [5, 5]]))


def labelme_bad_mask(root):
    return _labelme(root, lambda d: d["shapes"][0].update(
        shape_type="mask", points=[[1, 1], [4, 4]], mask="not base64!"))


def labelme_unknown_shape_type(root):
    return _labelme(root, lambda d: d["shapes"][0].update(shape_type="cuboid"))


def labelme_wrong_size(root):
    return _labelme(root, lambda d: d.update(imageWidth=99))


def _yolo(root, line=None, yaml_text=None):
    d = _fmt(root, "yolo")
    if line is not None:
        (d / "labels" / "train" / "image0001.txt").write_text(line + "\n")
    if yaml_text is not None:
        (d / "data.yaml").write_text(yaml_text)
    return _out(root, "--yolo-data", str(d / "data.yaml"))


def yolo_detection_box_line(root):
    return _yolo(root, "0 0.5 0.5 0.2 0.2")


def yolo_class_out_of_range(root):
    return _yolo(root, "7 0.1 0.1 0.5 0.1 0.5 0.5")


def yolo_not_normalized(root):
    return _yolo(root, "0 10 10 30 10 30 30")


def yolo_yaml_without_names(root):
    return _yolo(root, yaml_text="path: .\ntrain: images/train\nval: images/val\n")


def _cvat(root, edit):
    d = _fmt(root, "cvat")
    xml = d / "annotations.xml"
    xml.write_text(edit(xml.read_text()))
    return _out(root, "--cvat-xml", str(xml))


def cvat_malformed(root):
    return _cvat(root, lambda t: t.replace("</annotations>", ""))


def cvat_rle_wrong_total(root):
    mask = '<mask label="cup" rle="3, 4, 5" left="1" top="1" width="4" height="4"/>'
    return _cvat(root, lambda t: t.replace("</image>", mask + "</image>", 1))


def cvat_image_missing(root):
    return _cvat(root, lambda t: t.replace('name="image0002.jpg"', 'name="gone.jpg"'))


def cvat_for_video(root):
    return _cvat(root, lambda t: t.replace("</annotations>", '<track id="0" label="cup">'
                                           "</track></annotations>"))


def _instances(root, edit):
    d = _fmt(root, "instances")
    edit(d)
    return _out(root, "--instance-masks-dir", str(d))


def instances_value_without_class(root):
    return _instances(root, lambda d: (d / "instances" / "image0001.json").write_text("{}"))


def instances_jpeg(root):
    def edit(d):
        Image.new("L", (48, 40)).save(d / "instances" / "image0001.png", format="JPEG")
    return _instances(root, edit)


def instances_over_two_classes(root):
    def edit(d):
        (d / "class_masks").mkdir()
        (d / "label.pbtxt").write_text("item { id: 1 name: 'speaker076' }\n"
                                       "item { id: 2 name: 'cup150' }\n"
                                       "item { id: 3 name: 'bottle226' }\n")
        for stem in ("image0001", "image0002"):
            ids = np.asarray(Image.open(d / "instances" / f"{stem}.png"))
            cls = np.where(ids > 0, 76, 0).astype(np.uint8)
            if stem == "image0001":  # one pixel of instance 1 painted as another class
                ys, xs = np.nonzero(ids == 1)
                cls[ys[0], xs[0]] = 150
            Image.fromarray(cls).save(d / "class_masks" / f"{stem}.png")
    return _instances(root, edit)


CASES = [
    # images
    Case("empty_jpeg", empty_jpeg, "a.jpg", r"image file is empty \(0 bytes\)"),
    Case("truncated_jpeg", truncated_jpeg, "a.jpg", r"truncated or corrupt"),
    Case("empty_png", empty_png, "a.png", r"image file is empty \(0 bytes\)"),
    Case("truncated_png", truncated_png, "a.png", r"truncated or corrupt"),
    Case("not_an_image", not_an_image, "a.jpg", r"not a readable image file"),
    Case("gif_named_jpg", gif_named_jpg, "a.jpg", r"image format GIF is not supported"),
    Case("image_bomb", image_bomb, "a.png", r"declares 400000000 pixels, above the limit of 100000000; refused before decoding"),
    Case("mask_bomb", mask_bomb, "a.png", r"declares 900000000 pixels, above the limit of 100000000; refused before decoding"),
    Case("cmyk_jpeg", cmyk_jpeg, reports="reencoded"),
    Case("gray16_png", gray16_png, reports="reencoded"),
    Case("grayscale_jpeg", grayscale_jpeg),
    Case("rgba_png", rgba_png, reports="reencoded"),
    Case("palette_png", palette_png, reports="reencoded"),
    Case("exif_rotated_jpeg", exif_rotated_jpeg, reports="reencoded"),
    Case("spaces_and_unicode_names", spaces_and_unicode_names),
    # masks
    Case("mask_other_size", mask_other_size, "a.png", r"mask is 20x20 but image a.jpg is 48x40"),
    Case("mask_16bit", mask_16bit, "a.png", r"16-bit gray.*save masks as 8-bit PNG"),
    Case("mask_unknown_values", mask_unknown_values, "a.png",
         r"mask values 77 \(16 px\) match no class"),
    Case("mask_is_jpeg", mask_is_jpeg, "a.png", r"mask is a JPEG"),
    Case("image_without_mask", image_without_mask, "b.jpg", r"no mask: expected b.png"),
    Case("mask_without_image", mask_without_image, "orphan.png", r"mask has no image"),
    Case("empty_dataset", empty_dataset, "train_images", r"no JPEG or PNG images"),
    Case("missing_images_folder", missing_images_folder, "train_images",
         r"images folder not found"),
    # XML boxes
    Case("xml_other_size", xml_other_size, "a.xml", r"XML <size> is 96x80 but the image is 48x40"),
    Case("xml_unknown_class", xml_unknown_class, "a.xml",
         r"class 'mug' is not in the label map .*known classes: speaker, cup"),
    Case("xml_malformed", xml_malformed, "a.xml", r"malformed XML"),
    Case("xml_missing", xml_missing, "a.jpg", r"no XML boxes: expected a.xml"),
    Case("xml_external_entity", xml_external_entity, "a.xml", r"declares <!ENTITY>.*refused"),
    Case("xml_billion_laughs", xml_billion_laughs, "a.xml", r"declares <!ENTITY>.*refused"),
    Case("box_inverted", box_inverted, "a.xml", r"is inverted or has zero area"),
    Case("box_zero_area", box_zero_area, "a.xml", r"is inverted or has zero area"),
    Case("box_outside_image", box_outside_image, "a.xml", r"lies entirely outside the 48x40 image"),
    Case("box_partly_outside_is_clipped", box_partly_outside_is_clipped, reports="box_clipped"),
    Case("box_not_a_number", box_not_a_number, "a.xml", r"<xmax> is 'twelve', not a number"),
    # label map
    Case("label_map_syntax_error", label_map_syntax_error, "label.pbtxt", r"line \d+"),
    Case("label_map_duplicate_ids", label_map_duplicate_ids, "label.pbtxt", r"id 1"),
    Case("label_map_id_zero", label_map_id_zero, "label.pbtxt", r"id 0"),
    Case("label_map_duplicate_names", label_map_duplicate_names, "label.pbtxt", r"'cup'"),
    Case("label_map_no_pixel_suffix", label_map_no_pixel_suffix, "label.pbtxt",
         r"'speaker'.*pixel value"),
    Case("label_map_missing", label_map_missing, "label.pbtxt", r"not found"),
    # labelme / YOLO / CVAT / instance masks
    Case("labelme_invalid_json", labelme_invalid_json, "image0001.json", r"invalid JSON at line 2"),
    Case("labelme_not_labelme", labelme_not_labelme, "image0001.json", r"needs a 'shapes' list"),
    Case("labelme_missing_image", labelme_missing_image, "image0001.json",
         r"imagePath 'gone.jpg' names a missing file"),
    Case("labelme_two_point_polygon", labelme_two_point_polygon, "image0001.json",
         r"a polygon needs at least 3 points"),
    Case("labelme_bad_mask", labelme_bad_mask, "image0001.json", r"'mask' is not a base64 PNG"),
    Case("labelme_unknown_shape_type", labelme_unknown_shape_type, "image0001.json",
         r"unknown shape_type 'cuboid'; valid: polygon, rectangle"),
    Case("labelme_wrong_size", labelme_wrong_size, "image0001.json",
         r"says the image is 99x40 but image0001.jpg is 48x40"),
    Case("yolo_detection_box_line", yolo_detection_box_line, "image0001.txt",
         r"line 1: 4 numbers after the class is a detection box"),
    Case("yolo_class_out_of_range", yolo_class_out_of_range, "image0001.txt",
         r"class 7 is not in data.yaml's names"),
    Case("yolo_not_normalized", yolo_not_normalized, "image0001.txt", r"normalized to 0..1"),
    Case("yolo_yaml_without_names", yolo_yaml_without_names, "data.yaml",
         r"needs 'train' and 'names'"),
    Case("cvat_malformed", cvat_malformed, "annotations.xml", r"malformed XML.*line \d+"),
    Case("cvat_rle_wrong_total", cvat_rle_wrong_total, "annotations.xml",
         r"the runs add up to 12 pixels, but the 4x4 box has 16"),
    Case("cvat_image_missing", cvat_image_missing, "annotations.xml",
         r"image 'gone.jpg' not found"),
    Case("cvat_for_video", cvat_for_video, "annotations.xml", r"'CVAT for video'"),
    Case("instances_value_without_class", instances_value_without_class, "image0001.json",
         r"gives no class for instance value\(s\) 1 \(\d+ px\)"),
    Case("instances_jpeg", instances_jpeg, "image0001.png", r"instance mask is JPEG"),
    Case("instances_over_two_classes", instances_over_two_classes, "image0001.png",
         r"instance value 1 of image0001.png lies over speaker \(\d+ px\), cup \(1 px\)"),
    # pipeline.config
    Case("config_path_to_be_configured", config_path_to_be_configured, "pipeline.config",
         r"PATH_TO_BE_CONFIGURED"),
    Case("config_num_classes_mismatch", config_num_classes_mismatch, "pipeline.config",
         r"num_classes.*5.*2"),
    Case("config_unknown_augmentation", config_unknown_augmentation, "pipeline.config",
         r"unknown augmentation 'random_rotate'; valid: "),
    Case("config_syntax_error", config_syntax_error, "pipeline.config", r"line \d+"),
    Case("config_unknown_feature_extractor", config_unknown_feature_extractor, "pipeline.config",
         r"faster_rcnn_vgg99.*valid"),
]
