"""A command's log file: other libraries' output and crash tracebacks go there.

``tfmask COMMAND`` prints only tfmask's own lines. Everything else a run
produces is written to the run's log file instead of the terminal:

* TensorFlow's C++ and absl logs, grappler's cost-model dumps and XLA's
  start-up messages (file descriptors 1 and 2 are pointed at the log, while
  Python's ``sys.stdout`` / ``sys.stderr`` keep writing to the terminal);
* Python ``logging`` records of every library (TensorFlow, Model Garden,
  Orbit, absl, matplotlib's "generated new fontManager") and Python warnings;
* pycocotools' prints, in the code that calls it (:func:`third_party_output`).

The log is written to a temporary file while the command runs. When the
command ends it is moved to ``tfmask-COMMAND.log`` in the command's output
folder (``--model-dir``, ``--export-dir``, ``--output``, ``--out``),
where the folder exists; a command that stops on a known bad input
(:class:`~tfmask.errors.TfmaskError`) removes it, so nothing is written. An
unexpected exception appends its traceback to the log and the command prints
one line saying where it is (see :func:`tfmask.cli.run_reporting_errors`).

``--verbose`` (or ``TFMASK_VERBOSE=1``) leaves every stream alone, as a plain
TensorFlow program would; ``--debug`` (or ``TFMASK_DEBUG=1``) prints
tracebacks. Used by :mod:`tfmask.cli`; library code only calls
:func:`third_party_output`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Iterator, Optional, TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_ACTIVE: Optional["RunLog"] = None


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def log_name(command: str) -> str:
    """The log's file name in an output folder: ``tfmask-COMMAND.log``."""
    return f"tfmask-{command}.log"


class RunLog:
    """The log of one command; :meth:`start` routes output into it, :meth:`close` undoes that.

    Args:
      command: the subcommand (names the file).
      verbose: leave the terminal streams alone (the file then only receives
        tracebacks).
      capture_fds: point file descriptors 1 and 2 at the log (C++ output).
        Default: only when ``sys.stdout``/``sys.stderr`` are the process's own
        streams (not when a test harness has replaced them).
    """

    def __init__(self, command: str, verbose: bool = False, capture_fds: Optional[bool] = None):
        self.command = command
        self.verbose = verbose
        self.capture_fds = capture_fds
        fd, name = tempfile.mkstemp(prefix=f"tfmask-{command}-", suffix=".log")
        self.path = Path(name)
        self.stream: TextIO = open(fd, "w", buffering=1, encoding="utf-8", errors="replace")
        self._saved_fds = None
        self._saved_streams = None
        self._saved_logging = None

    # ------------------------------------------------------------------ routing
    def start(self, argv) -> "RunLog":
        """Writes a header and, unless verbose, routes other libraries' output here."""
        global _ACTIVE
        from tfmask import __version__

        self.stream.write(f"# tfmask {__version__}: tfmask {' '.join(map(str, argv))}\n"
                          f"# started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        _ACTIVE = self
        if self.verbose:
            return self
        capture = self.capture_fds
        if capture is None:
            capture = sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__
        if capture:
            self._capture_fds()
        root = logging.getLogger()
        self._saved_logging = (list(root.handlers), root.level)
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        # tfmask's own warnings (e.g. a stale temporary file removed) still reach the user.
        own = logging.StreamHandler(sys.stderr)
        own.addFilter(_own_warnings)
        own.setFormatter(logging.Formatter("%(message)s"))
        root.handlers = [handler, own]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        return self

    def _capture_fds(self) -> None:
        try:
            out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return
        if (out_fd, err_fd) != (1, 2):
            return
        sys.stdout.flush()
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
        self._saved_streams = (sys.stdout, sys.stderr)
        self.stream.flush()
        os.dup2(self.stream.fileno(), 1)
        os.dup2(self.stream.fileno(), 2)
        self._saved_fds = saved
        # Python's own streams keep writing to the terminal (tfmask's lines, progress bars).
        sys.stdout = open(saved[0], "w", buffering=1, encoding=self._saved_streams[0].encoding,
                          errors="replace", closefd=False)
        sys.stderr = open(saved[1], "w", buffering=1, encoding=self._saved_streams[1].encoding,
                          errors="backslashreplace", closefd=False)

    def _restore(self) -> None:
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
        if self._saved_logging is not None:
            root = logging.getLogger()
            root.handlers, level = self._saved_logging
            root.setLevel(level)
            logging.captureWarnings(False)
            self._saved_logging = None
        if self._saved_fds is not None:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            sys.stdout.close()
            sys.stderr.close()
            sys.stdout, sys.stderr = self._saved_streams
            os.dup2(self._saved_fds[0], 1)
            os.dup2(self._saved_fds[1], 2)
            for fd in self._saved_fds:
                os.close(fd)
            self._saved_fds = None

    # ------------------------------------------------------------------ ending
    def write_traceback(self) -> None:
        """Appends the exception being handled, with its traceback."""
        self.stream.write("# unexpected error:\n" + traceback.format_exc())
        self.stream.flush()

    def close(self, keep_in: Optional[Path] = None, discard: bool = False) -> Optional[Path]:
        """Restores the streams and puts the log where it belongs.

        Args:
          keep_in: the command's output folder: the log is moved there as
            ``tfmask-COMMAND.log`` when the folder exists.
          discard: delete the log instead (a known bad input: nothing written).

        Returns:
          Where the log is, or None when discarded.
        """
        self._restore()
        self.stream.write(f"# ended {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.stream.close()
        if discard:
            self.path.unlink(missing_ok=True)
            return None
        if keep_in is not None and Path(keep_in).is_dir():
            from tfmask.atomic import atomic_path

            dest = Path(keep_in) / log_name(self.command)
            try:
                with atomic_path(dest) as tmp:
                    shutil.copyfile(self.path, tmp)
            except OSError:
                return self.path  # a read-only output folder: the log stays where it is
            self.path.unlink(missing_ok=True)
            return dest
        return self.path


def active() -> Optional[RunLog]:
    """The run log of the command being run, if any."""
    return _ACTIVE


@contextlib.contextmanager
def third_party_output() -> Iterator[None]:
    """Sends what other libraries print (pycocotools) to the run's log.

    Without a run log (tfmask used as a library) the prints are dropped; with
    ``--verbose`` they reach the terminal.
    """
    log = _ACTIVE
    if log is not None and log.verbose:
        yield
        return
    sink = log.stream if log is not None else io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _own_warnings(record: logging.LogRecord) -> bool:
    """tfmask's own log records of level WARNING and above (shown on the terminal too)."""
    return record.levelno >= logging.WARNING and (record.name == "tfmask"
                                                  or record.name.startswith("tfmask."))
