"""Helpers of the crash tests: run ``tfmask`` in its own process group, SIGKILL it.

Every command runs as ``python -m tfmask ...`` in a new session, so that
:func:`kill` reaches its worker processes too; its output goes to a log file
(read back on failure) rather than a pipe nobody drains while the test polls.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

TESTS = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class Run:
    """A ``tfmask`` command running in the background (see :func:`start`)."""

    def __init__(self, args, log: Path, python_code: Optional[str] = None):
        self.log = log
        command = [sys.executable] + (["-c", python_code] if python_code else ["-m", "tfmask"])
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([*command, *map(str, args)], stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the whole process group (the command and its workers)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)

    def wait_until(self, predicate: Callable[[], T], timeout: float = 300,
                   poll_s: float = 0.005) -> T:
        """Polls ``predicate`` until it returns something true; fails if the command ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"the command ended (exit {self.proc.returncode}) before "
                                     f"the awaited moment:\n{self.output()[-3000:]}")
            time.sleep(poll_s)
        self.kill()
        raise AssertionError(f"timed out after {timeout} s:\n{self.output()[-3000:]}")

    def finish(self, timeout: float = 600) -> str:
        """Waits for a normal exit (status 0) and returns the output."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        out = self.output()
        assert self.proc.returncode == 0, out[-3000:]
        return out


def export_testlib():
    """``tests/export_testlib.py``, as the module the export tests import.

    Registered under its own name, so its once-per-session trained model and
    exports are shared with tests/export in a full run (pytest puts only the
    running test's folder on ``sys.path``).
    """
    if "export_testlib" not in sys.modules:
        spec = importlib.util.spec_from_file_location("export_testlib",
                                                      TESTS / "export_testlib.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["export_testlib"] = module
        spec.loader.exec_module(module)
    return sys.modules["export_testlib"]
