"""``tfmask synth``: write a synthetic dataset in the tutorial layout.

Photos with class-coloured masks, labelImg XML boxes, unlabelled test photos
and ``label.pbtxt`` (pixel-suffix names), ready for ``tfmask tfrecord``.

Example::

    tfmask synth --out dataset --num-train 48 --num-test 6 --size 256x192 --seed 0
    tfmask synth --out shots --format labelme    # or coco, yolo, cvat, instances
"""

from __future__ import annotations

import argparse
import re
from typing import Tuple

from tfmask.errors import ConfigError
from tfmask.data.synth import DEFAULT_CLASSES, IMAGE_FORMATS, MASK_MODES, SynthClass
from tfmask.data.synth_formats import FORMATS

_CLASSES_FORM = "NAME:GRAY[,NAME:GRAY...], e.g. speaker:76,cup:150,bottle:226"


def parse_size(text: str) -> Tuple[int, int]:
    """``--size 256x192`` (width x height, as image tools write it) -> size_hw (192, 256)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}': expected WIDTHxHEIGHT, e.g. 256x192")
    return int(match[2]), int(match[1])


def parse_classes(text: str) -> Tuple[SynthClass, ...]:
    """``--classes speaker:76,lamp:40`` -> classes in that order.

    A name of ``DEFAULT_CLASSES`` keeps its default photo colour; other classes
    get one from their position.
    """
    defaults = {c.name: c.photo_rgb for c in DEFAULT_CLASSES}
    out = []
    for part in text.split(","):
        name, sep, gray = (s.strip() for s in part.partition(":"))
        if not sep or not name or not gray.isdigit():
            raise argparse.ArgumentTypeError(f"'{text}': expected {_CLASSES_FORM}")
        try:
            out.append(SynthClass(name, int(gray), defaults.get(name)))
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return tuple(out)


def register(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic dataset (photos, masks, XML boxes)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_classes = ",".join(f"{c.name}:{c.gray}" for c in DEFAULT_CLASSES)
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--num-train", type=int, default=40, help="labelled images, "
                   "default %(default)s")
    p.add_argument("--num-test", type=int, default=5, help="unlabelled test images, "
                   "default %(default)s")
    p.add_argument("--size", type=parse_size, default=(192, 256), metavar="WxH",
                   help="image width x height, default 256x192")
    p.add_argument("--classes", type=parse_classes, default=DEFAULT_CLASSES,
                   metavar="NAME:GRAY,...", help="classes and their mask gray levels "
                   f"(1-255), default {default_classes}")
    p.add_argument("--min-objects", type=int, default=1, help="objects per image, at least "
                   "(default %(default)s)")
    p.add_argument("--max-objects", type=int, default=5, help="objects per image, at most "
                   "(default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same files "
                   "(default %(default)s)")
    p.add_argument("--mask-mode", choices=MASK_MODES, default="L",
                   help="L: gray levels; RGB / P: class colours whose gray level "
                   "(PIL convert('L')) is the class value. Default %(default)s")
    p.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpg",
                   help="default %(default)s")
    p.add_argument("--format", choices=FORMATS, default="masks",
                   help="masks: the tutorial layout (default); coco, labelme, yolo, cvat, "
                   "instances: the same set as those tools write it, for tfmask tfrecord "
                   "--coco-json/--labelme-dir/--yolo-data/--cvat-xml/--instance-masks-dir")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a folder that already holds a dataset; its old "
                   "image*/test* files are replaced")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.data.synth_formats import synthesize_format

    summary = synthesize_format(
        args.out, args.format, num_train=args.num_train, num_test=args.num_test, size_hw=args.size,
        classes=args.classes, min_objects=args.min_objects, max_objects=args.max_objects,
        seed=args.seed, mask_mode=args.mask_mode, image_format=args.image_format,
        overwrite=args.overwrite)
    if args.format == "masks":
        print(summary.format())
    else:
        per_class = ", ".join(f"{n} {name}" for name, n in summary.objects_per_class.items())
        print(f"wrote {summary.num_train} train + {summary.num_test} test images to "
              f"{summary.out_dir} in {args.format} format ({per_class})")
    return 0
