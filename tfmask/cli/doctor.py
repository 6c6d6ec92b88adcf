"""``tfmask doctor``: versions, GPUs, oneDNN, disk, and the known-bad combinations.

Exits 1 when it finds a combination known not to work (see
:mod:`tfmask.doctor`), 0 otherwise. Examples::

    tfmask doctor
    tfmask doctor --config configs/mask_rcnn_tiny_cpu.config --mixed-precision bfloat16
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check the install: versions, GPUs, known-bad "
                       "combinations", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="pipeline.config or Model Garden "
                   "params.yaml whose mixed precision to check against the GPUs")
    p.add_argument("--mixed-precision", choices=("float32", "float16", "bfloat16"),
                   help="the --mixed_precision a training run would get")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.doctor import diagnose

    report = diagnose(args.config, args.mixed_precision)
    print(report.format())
    return 0 if report.ok else 1
