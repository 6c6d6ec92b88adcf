"""``tfmask demo``: run the pipeline on the bundled sample and say where the results are."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the bundled sample data",
                       description=__doc__)
    p.add_argument("--data-dir", default="dataset", help="dataset folder (default: %(default)s;"
                   " synthesized into OUT/data when it has no images)")
    p.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="conversion processes")
    p.add_argument("--train-steps", type=int, default=None,
                   help="training steps of the tiny model (default 600; 0 stops after the "
                   "previews)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfmask.demo import DEFAULT_TRAIN_STEPS, run_demo

    steps = DEFAULT_TRAIN_STEPS if args.train_steps is None else args.train_steps
    run_demo(Path(args.data_dir), Path(args.out), workers=args.workers,
             progress=not args.no_progress, train_steps=steps)
    return 0
