"""``tfmask preview``: draw the ground truth of TFRecords into PNGs.

Writes one PNG per example, named after its image (``OUT/<stem>.png``), with
each instance's mask, box and class name drawn on the image. Example::

    tfmask preview 'dataset/records/*-of-*' --out dataset/preview --limit 20
"""

from __future__ import annotations

import argparse


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register(sub) -> None:
    p = sub.add_parser("preview", help="draw record ground truth into PNGs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("records", metavar="RECORDS",
                   help="record files: a glob (quote it) or a comma-separated list")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs")
    p.add_argument("--limit", type=_non_negative, metavar="N",
                   help="draw only the first N examples")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.data.preview import preview_records

    paths = preview_records(args.records, args.out, limit=args.limit,
                            progress=not args.no_progress)
    print(f"wrote {len(paths)} preview(s) to {args.out}/")
    return 0
