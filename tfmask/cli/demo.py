"""``tfmask demo``: run everything on a folder (the bundled sample by default).

Any tutorial-layout folder: train_images/ (JPEG or PNG, any size), train_masks/ (gray,
palette or RGB PNGs), label.pbtxt (tutorial pixel-suffix names or plain names), optional
train_bboxes/ (labelImg XML) and test_images/. It prints what it found and chose (label
map values, instance mode, input size, steps), converts, previews, trains the tiny CPU
model, exports, runs inference and evaluates, then lists every output's path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tfmask.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("demo", help="run everything on a folder (default: the bundled sample)",
                       description=__doc__)
    p.add_argument("--data-dir", default="dataset", help="dataset folder (default: %(default)s;"
                   " synthesized into OUT/data when it has no images)")
    p.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="conversion processes")
    p.add_argument("--train-steps", type=int, default=None,
                   help="training steps of the tiny model (default: fitted to the number of "
                   "images, printed; 0 stops after the previews)")
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help="the model's square input side (default: fitted to the images' "
                   "size, printed)")
    p.add_argument("--class-pixel", dest="class_pixels", action="append", default=[],
                   metavar="NAME=VALUE", help="a plain label map's mask value of a class, "
                   "gray (76) or RGB (255,0,0); repeat per class (default: read from the masks)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfmask.demo import run_demo
    from tfmask.demo_plan import check_input_size
    from tfmask.runlog import log_name

    if args.train_steps is not None and args.train_steps < 0:
        raise ConfigError(f"--train-steps must be >= 0, got {args.train_steps}")
    size = None if args.input_size is None else check_input_size(args.input_size)
    run_demo(Path(args.data_dir), Path(args.out), workers=args.workers,
             progress=not args.no_progress, train_steps=args.train_steps,
             class_pixels=args.class_pixels, input_size=size)
    print(f"  {'run log':<22} {Path(args.out) / log_name('demo')}")
    return 0
