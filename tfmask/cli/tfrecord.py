"""``tfmask tfrecord``: images + masks (or COCO, labelme, YOLO, CVAT, instance masks) -> TFRecords.

Example::

    tfmask tfrecord --data-dir dataset --instance-mode components \\
        --val-fraction 0.2 --seed 0 --num-shards 2 --coco-json-out --workers 2
    tfmask tfrecord --labelme-dir shots --output-dir shots/records
    tfmask tfrecord --yolo-data datasets/cups/data.yaml      # keeps its train/val split

The same conversion as an Apache Beam pipeline (``pip install 'tfmask[beam]'``;
give Beam options with ``--beam-arg=`` so they are not read as tfmask flags)::

    tfmask tfrecord --data-dir dataset --runner beam \\
        --beam-arg=--direct_num_workers=2 --beam-arg=--direct_running_mode=multi_processing
"""

from __future__ import annotations

import argparse

from tfmask.data.convert import DEFAULT_VAL_FRACTION, ConvertConfig, default_workers
from tfmask.data.instances import INSTANCE_MODES

# The library's defaults are the flags' defaults (None fields are resolved by ConvertConfig).
_DEFAULTS = ConvertConfig


def parse_bool(text: str) -> bool:
    """``True``/``False`` the way absl flags accept them (true, 1, yes, ...)."""
    value = text.strip().lower()
    if value in ("true", "t", "1", "yes", "y"):
        return True
    if value in ("false", "f", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got '{text}'")


def register(sub) -> None:
    p = sub.add_parser("tfrecord", help="convert images + masks (or COCO JSON) to TFRecords",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _input_flags(p.add_argument_group("input"))
    _instance_flags(p.add_argument_group("instances"))
    _output_flags(p.add_argument_group("output"))
    _run_flags(p.add_argument_group("run"))
    p.set_defaults(func=run)


def _input_flags(src) -> None:
    """Where the dataset is and how its masks name classes."""
    src.add_argument("--data-dir", help="dataset folder (tutorial layout); folder and label "
                     "map paths below are relative to it")
    src.add_argument("--images-dir", default=_DEFAULTS.images_dir, help="default: %(default)s")
    src.add_argument("--masks-dir", default=_DEFAULTS.masks_dir, help="default: %(default)s")
    src.add_argument("--bboxes-dir", default=_DEFAULTS.bboxes_dir,
                     help="labelImg XML folder, "
                     "default: %(default)s")
    src.add_argument("--label-map", dest="label_map_path", help="default: DATA_DIR/label.pbtxt "
                     "(COCO input: optional, categories matched by name)")
    src.add_argument("--class-pixel", dest="class_pixels", action="append", default=[],
                     metavar="NAME=VALUE", help="mask value of a class when label-map names "
                     "carry no pixel suffix: a gray level (speaker=76) or RGB (cup=255,0,0); "
                     "repeat for every class")
    src.add_argument("--coco-json", help="read this COCO instances JSON instead of masks")
    src.add_argument("--labelme-dir", metavar="DIR", help="read labelme JSON files (DIR/*.json)")
    src.add_argument("--yolo-data", metavar="DATA_YAML", help="read an Ultralytics YOLO "
                     "segmentation dataset; its train/val split is kept")
    src.add_argument("--cvat-xml", metavar="FILE", help="read a 'CVAT for images 1.1' XML "
                     "(images in images/ beside it)")
    src.add_argument("--instance-masks-dir", metavar="DIR", help="read instance-ID mask PNGs "
                     "(DIR/images, DIR/instances + a value->class mapping or DIR/class_masks)")


def _instance_flags(inst) -> None:
    """How masks are split into instances."""
    inst.add_argument("--instance-mode", choices=INSTANCE_MODES,
                      help="class: one instance per class (tutorial, no XML); components: "
                      "split classes into connected components; box: one per XML box "
                      "(tutorial with XML). Default: class, or box with --bboxes-provided True")
    inst.add_argument("--bboxes-provided", type=parse_bool, metavar="True|False",
                      help="the tutorial's switch: True = --instance-mode box, "
                      "False = --instance-mode class")
    inst.add_argument("--min-instance-area", type=int, default=_DEFAULTS.min_instance_area,
                      metavar="PX",
                      help="components mode: drop (and report) smaller components")


def _output_flags(out) -> None:
    """Where the records go, split and sharded how."""
    out.add_argument("--output-dir", help="default: DATA_DIR/records (other inputs: "
                     "records/ beside them)")
    out.add_argument("--train-name", default=_DEFAULTS.train_name,
                     help="record prefix, default %(default)s")
    out.add_argument("--val-name", default=_DEFAULTS.val_name,
                     help="record prefix, default %(default)s")
    out.add_argument("--val-fraction", type=float, default=None,
                     help="share of images for the val split (0 = none), default "
                     f"{DEFAULT_VAL_FRACTION} (a YOLO dataset keeps its own split)")
    out.add_argument("--seed", type=int, default=_DEFAULTS.seed,
                     help="split seed, default %(default)s")
    out.add_argument("--num-shards", type=int, default=_DEFAULTS.num_shards, help="shards per split")
    out.add_argument("--coco-json-out", action="store_true",
                     help="also write NAME_coco.json ground truth per split")


def _run_flags(run_g) -> None:
    """How the conversion runs."""
    run_g.add_argument("--skip-invalid", action="store_true",
                       help="skip invalid images (all listed) instead of stopping")
    run_g.add_argument("--workers", type=int, default=None,
                       help="parallel processes; output is byte-identical for any count "
                       f"(default: the CPUs this process may run on, {default_workers()} here)")
    run_g.add_argument("--runner", choices=("local", "beam"), default="local",
                       help="local: this machine (default); beam: an Apache Beam pipeline "
                       "(DirectRunner unless --beam-arg=--runner=... says otherwise)")
    run_g.add_argument("--beam-arg", dest="beam_args", action="append", default=[],
                       metavar="ARG", help="a Beam pipeline option, passed through "
                       "(repeat; write --beam-arg=--option=value)")
    run_g.add_argument("--max-image-pixels", type=int, default=_DEFAULTS.max_image_pixels,
                       help="refuse larger images (decompression bombs)")
    run_g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def instance_mode(mode, bboxes_provided) -> str:
    """The instance mode from --instance-mode / --bboxes-provided (they must agree)."""
    from tfmask.errors import ConfigError

    implied = None if bboxes_provided is None else ("box" if bboxes_provided else "class")
    if mode and implied and (mode == "box") != bboxes_provided:
        raise ConfigError(f"--bboxes-provided {bboxes_provided} contradicts "
                          f"--instance-mode {mode}")
    return mode or implied or "class"


def _default_output_dir(args):
    """DATA_DIR/records, or records/ in (or beside) the labelme/YOLO/CVAT/instance input."""
    from pathlib import Path

    if args.data_dir:
        return str(Path(args.data_dir) / "records")
    for folder in (args.labelme_dir, args.instance_masks_dir):
        if folder:
            return str(Path(folder) / "records")
    for file in (args.yolo_data, args.cvat_xml):
        if file:
            return str(Path(file).parent / "records")
    return None


def run(args) -> int:
    from pathlib import Path

    from tfmask.alloc import keep_freed_memory
    from tfmask.data.convert import convert

    output_dir = args.output_dir or _default_output_dir(args)
    cfg = ConvertConfig(
        data_dir=args.data_dir, images_dir=args.images_dir, masks_dir=args.masks_dir,
        bboxes_dir=args.bboxes_dir, label_map_path=args.label_map_path,
        class_pixels=tuple(args.class_pixels), coco_json=args.coco_json,
        labelme_dir=args.labelme_dir, yolo_data=args.yolo_data, cvat_xml=args.cvat_xml,
        instance_masks_dir=args.instance_masks_dir,
        instance_mode=instance_mode(args.instance_mode, args.bboxes_provided),
        min_instance_area=args.min_instance_area, output_dir=output_dir,
        train_name=args.train_name, val_name=args.val_name, val_fraction=args.val_fraction,
        seed=args.seed, num_shards=args.num_shards, write_coco_json=args.coco_json_out,
        skip_invalid=args.skip_invalid, workers=args.workers,
        max_image_pixels=args.max_image_pixels, progress=not args.no_progress)
    if args.runner == "beam":
        from tfmask.data.convert_beam import convert_with_beam

        report = convert_with_beam(cfg, args.beam_args)
    else:
        keep_freed_memory()  # this process only converts, then exits
        report = convert(cfg)
    print(report.format())
    print(f"records written to {output_dir}/")
    return 0
