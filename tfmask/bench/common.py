"""Shared pieces of ``tfmask bench``: result rows, timers, peak memory, sections.

Every benchmark section is a module ``tfmask.bench.<section>`` with a
``run(work_dir: Path, quick: bool) -> Section`` function. ``tfmask bench``
runs each section in its own fresh Python process (``python -m
tfmask.bench.common SECTION WORK_DIR OUT_JSON [--quick]``) so peak RSS and
TensorFlow state of one section never leak into another, then gathers the
sections into ``bench/results.json``.

A :class:`Row` is one measured figure, optionally beside a baseline taken in
the same run (``ratio = value / baseline`` for throughputs, ``baseline /
value`` for latencies, so a ratio > 1 always means tfmask is better) and a
target. Benchmarks never assert: a missed target is recorded (``met:
false``), not raised.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

SECTIONS = ("conversion", "input_pipeline", "training", "irv2_1024", "inference", "photos",
            "peers", "gpu")


@dataclass
class Row:
    """One figure.

    Attributes:
      name: what was measured, e.g. ``"conversion, 2 workers"``.
      value: the tfmask figure.
      unit: ``img/s``, ``ms``, ``MiB``, ``steps/s``, ``x``...
      higher_is_better: True for throughputs, False for latencies/memory.
      baseline: the same figure for the baseline, measured in the same run.
      baseline_name: what the baseline is.
      target: the issue's target for ``ratio`` (or for ``value`` when there
        is no baseline), e.g. 5.0 for "≥ 5x the baseline".
      note: anything a reader needs to interpret the figure.
    """

    name: str
    value: float
    unit: str
    higher_is_better: bool = True
    baseline: Optional[float] = None
    baseline_name: str = ""
    target: Optional[float] = None
    note: str = ""

    @property
    def ratio(self) -> Optional[float]:
        """> 1 means tfmask is better than the baseline, whatever the unit."""
        if self.baseline is None or not self.value or not self.baseline:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value

    @property
    def met(self) -> Optional[bool]:
        if self.target is None:
            return None
        got = self.ratio if self.baseline is not None else self.value
        if got is None:
            return False
        return got >= self.target if (self.higher_is_better or self.baseline is not None) \
            else got <= self.target

    def to_json(self) -> Dict[str, Any]:
        out = asdict(self)
        out["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        out["met"] = self.met
        return out


@dataclass
class Section:
    """The rows of one section plus free-form details (sizes, configs)."""

    name: str
    rows: List[Row] = field(default_factory=list)
    details: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 1),
                "rows": [r.to_json() for r in self.rows], "details": self.details}


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock, perf_counter)."""

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident set size of this process (or its largest finished child), MiB.

    Linux reports ``ru_maxrss`` in KiB. For ``children`` it is the peak of the
    largest waited-for child, not a sum.
    """
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def machine() -> Dict[str, Any]:
    """What the figures were measured on."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": _cpu_model()}
    gpu = _gpu_name()
    if gpu:
        info["gpu"] = gpu
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                   / 2 ** 30, 1)
    except (ValueError, OSError):
        pass
    return info


def _gpu_name() -> str:
    """The NVIDIA GPU(s) ``nvidia-smi`` lists, or ``""`` (no TensorFlow import)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return ", ".join(names) if out.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_section(name: str, work_dir: Path, quick: bool) -> Section:
    """Imports ``tfmask.bench.NAME`` and runs it, timing the whole section."""
    if name not in SECTIONS:
        raise ValueError(f"unknown bench section '{name}'; valid: {', '.join(SECTIONS)}")
    module = importlib.import_module(f"tfmask.bench.{name}")
    work_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    section = module.run(work_dir, quick)
    section.seconds = time.perf_counter() - start
    return section


def _main(argv: List[str]) -> int:
    """``python -m tfmask.bench.common SECTION WORK_DIR OUT_JSON [--quick]``."""
    name, work_dir, out = argv[0], Path(argv[1]).resolve(), Path(argv[2])
    section = run_section(name, work_dir, "--quick" in argv[3:])
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(section.to_json(), indent=1))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
