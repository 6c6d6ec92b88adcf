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
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

from tfmask import __version__
from tfmask.errors import TfmaskError

# Subcommand modules, in the order `tfmask --help` lists them.
_COMMANDS = ("synth", "check_pixels", "tfrecord", "preview", "check_config", "train", "export",
             "infer", "pretrained", "demo", "eval", "report", "doctor", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfmask",
        description="Photos + mask PNGs -> TFRecords -> Mask R-CNN on TF Model Garden.")
    parser.add_argument("--version", action="version", version=f"tfmask {__version__}")
    _add_output_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"tfmask.cli.{name}").register(sub)
    for command in sub.choices.values():  # also accepted after the command
        _add_output_flags(command, default=argparse.SUPPRESS)
        command.set_defaults(flag_of=_flags_by_dest(command))
    return parser


def _flags_by_dest(parser: argparse.ArgumentParser) -> Dict[str, str]:
    """Library parameter (the option's ``dest``) -> the flag a user types for it."""
    flags = {}
    for action in parser._actions:  # argparse has no public list of a parser's options
        names = [s for s in action.option_strings if s.startswith("--")]
        if names:
            flags[action.dest] = names[0]
    return flags


def user_message(exc: TfmaskError, flag_of: Optional[Dict[str, str]] = None) -> str:
    """The error's text, each library parameter it names shown as its flag."""
    text = str(exc)
    for param in getattr(exc, "params", ()):
        flag = (flag_of or {}).get(param)
        if flag:
            text = re.sub(rf"(?<![\w.-]){re.escape(param)}(?![\w.])", flag, text)
    return text


# Where each command's log goes (the argument naming its output folder); others keep
# theirs only after a crash, in the temporary folder.
_OUTPUT_FOLDER_ARG = {"train": "model_dir", "export": "export_dir", "infer": "output_dir",
                      "eval": "output", "demo": "out", "preview": "out"}
# Commands whose streams are left alone: they run (and read) child processes' output.
_PLAIN_STREAMS = ("bench",)
DEBUG_ENV, VERBOSE_ENV = "TFMASK_DEBUG", "TFMASK_VERBOSE"


def _add_output_flags(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show TensorFlow's, Model Garden's and other libraries' "
                        f"messages instead of writing them to the run's log ({VERBOSE_ENV}=1)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help=f"print the traceback of an unexpected error ({DEBUG_ENV}=1)")


def setup_environment(verbose: bool = False) -> None:
    """TensorFlow's C++ log level (before TF is imported) and Python logging.

    Quiet runs send every log to the run's log file (:mod:`tfmask.runlog`), so
    only TensorFlow's INFO lines are dropped; ``verbose`` runs keep
    TensorFlow's defaults and show Model Garden's per-step logs.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:  # Model Garden logs every step and eval at INFO through absl
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
    except ImportError:
        pass


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``tfmask``; returns the exit status (0 ok, 1 bad input or failure, 2 usage)."""
    from tfmask.runlog import env_flag

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = bool(getattr(args, "verbose", False)) or env_flag(VERBOSE_ENV)
    args.debug = bool(getattr(args, "debug", False)) or env_flag(DEBUG_ENV)
    setup_environment(args.verbose)
    return run_reporting_errors(args.func, args, argv)


def _output_folder(args) -> Optional[str]:
    name = _OUTPUT_FOLDER_ARG.get(getattr(args, "command", None) or "")
    return getattr(args, name, None) if name else None


def run_reporting_errors(func, args, argv: Optional[List[str]] = None) -> int:
    """Calls ``func(args)`` with the run's log (see :mod:`tfmask.runlog`).

    A known failure (:class:`~tfmask.errors.TfmaskError`: bad input, bad
    option) becomes its one ``error:`` line, exit status 1, and the log is
    removed. Any other exception becomes one ``error:`` line naming the
    command, the exception and the log file holding the traceback (in the
    command's output folder when it exists), exit status 1; with ``--debug``
    the traceback is printed as well.
    """
    from tfmask.runlog import RunLog

    command = getattr(args, "command", None) or "command"
    verbose = bool(getattr(args, "verbose", False))
    debug = bool(getattr(args, "debug", False))
    log = RunLog(command, verbose=verbose or command in _PLAIN_STREAMS)
    log.start(sys.argv[1:] if argv is None else argv)
    folder = _output_folder(args) if args is not None else None
    try:
        status = int(func(args) or 0)
    except TfmaskError as exc:
        log.close(discard=True)
        print(f"error: {user_message(exc, getattr(args, 'flag_of', None))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.close(keep_in=folder)
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  anything unexpected: one line, traceback logged
        log.write_traceback()
        where = log.close(keep_in=folder)
        first = (str(exc).strip().splitlines() or [""])[0]
        if len(first) > 200:
            first = first[:197] + "..."
        if debug:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        hint = "" if debug else f"; run with --debug (or {DEBUG_ENV}=1) to print it"
        print(f"error: tfmask {command} failed with an unexpected {type(exc).__name__}"
              f"{': ' + first if first else ''} (full traceback in {where}{hint})",
              file=sys.stderr)
        return 1
    if status == 0 and folder and Path(folder).is_dir():
        log.close(keep_in=folder)
    else:  # no output folder to keep it in, or a failure already reported
        log.close(discard=True)
    return status
