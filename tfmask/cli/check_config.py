"""``tfmask check-config``: will this pipeline.config train? Answered in seconds, no records needed.

Translates the config as ``tfmask train`` would (same errors, same notes),
builds the model and runs one forward and backward pass on one synthetic
image at a small size, then lists every honoured and unhonoured field and
the notes on approximated ones. Example::

    tfmask check-config --pipeline-config-path configs/mask_rcnn_inception_resnet_v2_1024x1024.config
"""

from __future__ import annotations

import argparse

from tfmask.cli.flags import od_api_flag
from tfmask.training.check_config import DEFAULT_SIZE


def register(sub) -> None:
    p = sub.add_parser("check-config", help="translate, build and step a pipeline.config once",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    od_api_flag(p, "pipeline_config_path", required=True, help="OD API pipeline.config")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help="synthetic image size in px, rounded up to a multiple of "
                        "2**max_level (default: %(default)s)")
    p.add_argument("--strict", action="store_true",
                   help="fail on fields that are not honoured, as tfmask train --strict")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.errors import ConfigError
    from tfmask.training.check_config import check_config

    if args.size < 1:
        raise ConfigError("--size must be a positive number of pixels")
    report = check_config(args.pipeline_config_path, size=args.size, strict=args.strict)
    print("\n".join(report.lines()))
    return 0
