"""The ``tfmask`` command: one subcommand per module in this package.

Each module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a function ``(args) -> int``. The functions parse nothing and do
little: they call one library function and print its result.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import List, Optional

from tfmask import __version__
from tfmask.errors import TfmaskError

# Subcommand modules, in the order `tfmask --help` lists them.
_COMMANDS = ("synth", "check_pixels", "tfrecord", "preview", "train", "export", "infer",
             "pretrained", "demo", "eval", "report", "doctor", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfmask",
        description="Photos + mask PNGs -> TFRecords -> Mask R-CNN on TF Model Garden.")
    parser.add_argument("--version", action="version", version=f"tfmask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"tfmask.cli.{name}").register(sub)
    return parser


def setup_environment() -> None:
    """Quiets TensorFlow's C++ start-up logging (before TF is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:  # Model Garden logs every step and eval at INFO through absl
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError:
        pass


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``tfmask``; returns the exit status (0 ok, 1 bad input, 2 usage)."""
    setup_environment()
    args = build_parser().parse_args(argv)
    return run_reporting_errors(args.func, args)


def run_reporting_errors(func, args) -> int:
    """Calls ``func(args)``; user errors become one ``error:`` line and exit 1."""
    try:
        return int(func(args) or 0)
    except TfmaskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
