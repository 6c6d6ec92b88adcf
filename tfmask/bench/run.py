"""``tfmask bench``: runs the benchmark sections and writes ``bench/results.json``.

Each section (see :mod:`tfmask.bench.common`) runs in a fresh Python process;
a section that fails is recorded with its error and the others still run.
The results file holds the machine, the date, every row (value, baseline,
ratio, target, met) and each section's details; :func:`format_table` renders
the Markdown table docs/benchmarks.md shows (``--readme`` replaces the block between
``<!-- bench:start -->`` and ``<!-- bench:end -->``).

Example::

    tfmask bench                          # all sections, ~20 min on 2 CPU cores
    tfmask bench --sections conversion    # re-measure one, keep the others' figures
    tfmask bench --sections conversion --quick
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from tfmask import __version__
from tfmask.atomic import atomic_write
from tfmask.bench.common import SECTIONS, machine
from tfmask.errors import ConfigError, PathLike

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def run_bench(out_json: PathLike = "bench/results.json", work_dir: PathLike = "bench/work",
              sections: Sequence[str] = SECTIONS, quick: bool = False,
              log=print) -> Dict[str, Any]:
    """Runs ``sections`` one after another; writes and returns the results.

    Sections not run this time are kept from ``out_json`` when it holds
    results of the same kind (quick or not) from the same machine, each
    with the date it was measured, so one section can be re-measured after
    a change without re-running the rest (~20 min).
    """
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown bench section '{unknown[0]}'; valid: {', '.join(SECTIONS)}")
    # Absolute: sections write configs into subfolders that name paths under work_dir.
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results: Dict[str, Any] = {
        "tfmask_version": __version__, "date": now, "machine": machine(), "quick": quick,
        "sections": []}
    kept = _previous_sections(out_json, results["machine"], quick)
    for name in SECTIONS:
        if name not in sections:
            if name in kept:
                results["sections"].append(kept[name])
            continue
        log(f"bench: {name} ...")
        section = dict(_run_one(name, work_dir, quick), date=now)
        results["sections"].append(section)
        log(f"bench: {name} done in {section.get('seconds', 0):.0f} s"
            + (f" — FAILED: {section['error'].splitlines()[-1]}" if "error" in section else ""))
    atomic_write(out_json, json.dumps(results, indent=1) + "\n")
    return results


def _previous_sections(out_json: PathLike, machine_now: Dict[str, Any], quick: bool
                       ) -> Dict[str, Dict[str, Any]]:
    """Sections of an earlier results file worth keeping (same machine, same mode)."""
    try:
        previous = json.loads(Path(out_json).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(previous, dict) or previous.get("quick") != quick:
        return {}
    same = ("processor", "cpu_count", "gpu")
    if any(previous.get("machine", {}).get(k) != machine_now.get(k) for k in same):
        return {}
    return {s["name"]: dict(s, date=s.get("date", previous.get("date")))
            for s in previous.get("sections", []) if isinstance(s, dict) and "name" in s}


def _run_one(name: str, work_dir: Path, quick: bool) -> Dict[str, Any]:
    out = work_dir / f"{name}.json"
    if out.exists():
        out.unlink()
    cmd = [sys.executable, "-m", "tfmask.bench.common", name, str(work_dir / name), str(out)]
    if quick:
        cmd.append("--quick")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not out.exists():
        return {"name": name, "rows": [], "details": {},
                "error": (done.stderr or done.stdout)[-4000:].strip() or
                f"exit status {done.returncode}"}
    return json.loads(out.read_text())


def _fmt(value: Optional[float], unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def format_table(results: Dict[str, Any]) -> str:
    """The results as a Markdown table plus a line naming the machine."""
    m = results["machine"]
    gpu = f", GPU: {m['gpu']}" if m.get("gpu") else ", no GPU"
    dates = [(s["name"], s.get("date", results["date"])) for s in results["sections"]]
    mixed = len({d for _, d in dates}) > 1
    head = (f"Measured {'' if mixed else results['date'] + ' '}on {m.get('processor', '?')} "
            f"({m.get('cpu_count')} cores, {m.get('memory_gib', '?')} GiB{gpu}), "
            f"tfmask {results['tfmask_version']}" + (" — quick mode" if results["quick"] else ""))
    if mixed:
        head += " (sections measured at different times: " + \
            "; ".join(f"{name} {date}" for name, date in dates) + ")"
    lines = [head, "", "| section | figure | tfmask | baseline | ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for section in results["sections"]:
        if "error" in section:
            lines.append(f"| {section['name']} | failed: "
                         f"{section['error'].splitlines()[-1][:80]} | | | | | |")
            continue
        if not section["rows"]:
            reason = section.get("details", {}).get("skipped", "no rows")
            lines.append(f"| {section['name']} | skipped: {reason} | | | | | |")
        for row in section["rows"]:
            target = ""
            if row["target"] is not None:
                op = "≥" if row["higher_is_better"] or row["baseline"] is not None else "≤"
                target = f"{op} {row['target']:.3g}" + ("x" if row["baseline"] is not None else "")
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else ""
            lines.append(f"| {section['name']} | {row['name']} | {_fmt(row['value'], row['unit'])}"
                         f" | {_fmt(row['baseline'], row['unit'])} | {ratio} | {target} | {met} |")
    return "\n".join(lines)


def update_readme(readme: PathLike, table: str) -> None:
    """Replaces the README block between the bench markers with ``table``."""
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ConfigError(f"{path}: no '{README_START}' ... '{README_END}' block to update")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write(path, f"{head}{README_START}\n{table}\n{README_END}{tail}")
