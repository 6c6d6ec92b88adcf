"""``tfmask check-pixels``: list the pixel values of masks and suggest a label map.

Prints one row per distinct mask colour (gray level as the converter sees it,
RGB colour, pixel count, number of masks holding it), any warnings, and a
label.pbtxt to start from. Example::

    tfmask check-pixels dataset/train_masks --write-label-map dataset/label.pbtxt
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("check-pixels", help="list mask pixel values, suggest a label map",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", metavar="MASK_OR_DIR",
                   help="a mask PNG, or a folder whose .png files are all scanned")
    p.add_argument("--write-label-map", metavar="PATH",
                   help="also write the suggested label map to PATH (atomically)")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from tfmask.atomic import atomic_write
    from tfmask.data.pixels import scan_masks

    report = scan_masks(args.path, progress=not args.no_progress)
    if args.write_label_map:
        atomic_write(args.write_label_map, report.suggested_label_map())
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(report.format_table())
    for warning in report.warnings:
        print(f"warning: {warning}")
    print()
    print("Suggested label.pbtxt:")
    print(report.suggested_label_map(), end="")
    if args.write_label_map:
        print(f"label map written to {args.write_label_map}")
    return 0
