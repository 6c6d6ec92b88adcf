"""Every corpus case: one actionable error line (file + reason), exit 1, nothing written.

Odd-but-valid inputs (CMYK, 16-bit, EXIF rotation, Unicode names...) must convert,
reporting what was done. See ``cases.py`` for the inputs.
"""

import json
import re
import subprocess
import sys

import pytest

from cases import CASES
from tfmask.cli import main


def _files_under(path):
    return sorted(p.relative_to(path) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case, tmp_path, capsys):
    argv = case.build(tmp_path)
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    out_dir = tmp_path / "out"
    if case.is_error:
        assert status == 1, err
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, err
        line = lines[0]
        assert case.file in line, f"error does not name {case.file}: {line}"
        assert re.search(case.reason, line), f"unexpected reason: {line}"
        assert _files_under(out_dir) == [], f"output left behind: {_files_under(out_dir)}"
    else:
        assert status == 0, err
        report = json.loads((out_dir / "conversion_report.json").read_text())
        kinds = set(report["problems"])  # problems grouped by kind
        if case.reports:
            assert case.reports in kinds, report["problems"]
        assert sum(report["images_per_split"].values()) == 2


def test_xxe_never_reads_the_file(tmp_path, capsys):
    case = next(c for c in CASES if c.name == "xml_external_entity")
    main(case.build(tmp_path))
    assert "TOP-SECRET-CONTENT" not in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_error_exit_status_from_a_real_process(tmp_path):
    case = next(c for c in CASES if c.name == "mask_unknown_values")
    argv = case.build(tmp_path)
    done = subprocess.run([sys.executable, "-m", "tfmask", *argv], capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "a.png" in done.stderr and "Traceback" not in done.stderr


def test_corpus_is_large_enough():
    assert len([c for c in CASES if c.is_error]) >= 30
    assert len({c.name for c in CASES}) == len(CASES)
