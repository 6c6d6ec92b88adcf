"""The tutorial's ``create_mask_rcnn_tf_record.py`` flags, on tfmask's converter.

Same flags and defaults as the script of the "custom Mask R-CNN with the TF
Object Detection API" tutorial, absl style (``--flag=value``)::

    python dataset_tools/create_mask_rcnn_tf_record.py \\
        --data_dir_path=dataset --bboxes_provided=False

reads ``DATA_DIR/label.pbtxt`` and writes ``DATA_DIR/train_data-00000-of-00001``
(plus the clean ``label_map.pbtxt`` and ``conversion_report.json``), with one
worker process per CPU (``--workers=N``; the records are byte-identical). Unlike
the original, invalid images stop the run with a message naming the file
instead of being skipped with a log line.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tfmask.cli.tfrecord import parse_bool
from tfmask.data.convert import default_workers

_BBOXES_HELP = """\
ERROR: Please set bboxes_provided flag to True or False.
  --bboxes_provided=False: boxes are computed from the masks, one object per class
      and image (several objects of one class in an image become one).
  --bboxes_provided=True: labelImg XML files in DATA_DIR/train_bboxes give one box per
      object; each object's mask is its class's pixels inside its box.
(`tfmask tfrecord --instance-mode components` also separates same-class objects
without XML files.)"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="create_mask_rcnn_tf_record.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir_path", default="", help="Path to root directory to dataset.")
    p.add_argument("--bboxes_provided", type=parse_bool, nargs="?", const=True, default=None,
                   metavar="True|False", help="True if xmls with bounding boxes are provided")
    p.add_argument("--nobboxes_provided", dest="bboxes_provided", action="store_const",
                   const=False, help=argparse.SUPPRESS)
    p.add_argument("--images_dir", default="train_images",
                   help="Name of directory containing images")
    p.add_argument("--masks_dir", default="train_masks",
                   help="Name of directory containing masks corresponding to images")
    p.add_argument("--bboxes_dir", default="train_bboxes",
                   help="Name of directory containing bboxes annotations corresponding to images")
    p.add_argument("--tfrecord_filename", default="train_data",
                   help="Name of the generated TFRecord file")
    p.add_argument("--num_shards", type=int, default=1, help="Number of TFRecord shards")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel processes (not in the tutorial); output is byte-identical "
                   f"for any count (default: the CPUs this process may run on, "
                   f"{default_workers()} here)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bboxes_provided is None:
        print(_BBOXES_HELP, file=sys.stderr)
        return 2
    from tfmask.cli import _flags_by_dest, run_reporting_errors, setup_environment
    from tfmask.data.convert import ConvertConfig, convert

    setup_environment()
    data_dir = args.data_dir_path or "."
    cfg = ConvertConfig(
        data_dir=data_dir, images_dir=args.images_dir, masks_dir=args.masks_dir,
        bboxes_dir=args.bboxes_dir, instance_mode="box" if args.bboxes_provided else "class",
        output_dir=data_dir, train_name=args.tfrecord_filename, val_fraction=0.0,
        num_shards=args.num_shards, workers=args.workers)

    def _run(_args=None) -> int:
        from tfmask.alloc import keep_freed_memory

        keep_freed_memory()  # as `tfmask tfrecord`: this process only converts
        report = convert(cfg)
        print(report.format())
        print(f"INFO: records written to {data_dir}/{args.tfrecord_filename}-*")
        return 0

    return run_reporting_errors(_run, argparse.Namespace(flag_of=_flags_by_dest(parser)))
