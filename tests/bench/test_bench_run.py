"""tfmask bench's driver: results file, table, README block, failures recorded."""

import json

import pytest

from tfmask.bench import run as bench_run
from tfmask.bench.common import Row, Section
from tfmask.cli import main
from tfmask.errors import ConfigError


def _results(sections):
    return {"tfmask_version": "0", "date": "2026-01-01 00:00 UTC", "quick": False,
            "machine": {"processor": "CPU X", "cpu_count": 2, "memory_gib": 24},
            "sections": sections}


def test_row_ratio_and_target_directions():
    fast = Row("conv", 600.0, "img/s", baseline=100.0, target=5.0)
    assert fast.ratio == pytest.approx(6.0) and fast.met is True
    slow_latency = Row("lat", 50.0, "ms", higher_is_better=False, baseline=100.0, target=5.0)
    assert slow_latency.ratio == pytest.approx(2.0) and slow_latency.met is False
    memory = Row("rss", 1.4, "x", higher_is_better=False, target=2.0)
    assert memory.ratio is None and memory.met is True
    assert Row("rss", 2.5, "x", higher_is_better=False, target=2.0).met is False
    assert Row("n", 1.0, "x").met is None


def test_table_lists_rows_failures_and_skips():
    ok = Section("conversion", [Row("conversion, 2 workers", 612.4, "img/s", baseline=101.0,
                                    baseline_name="baseline", target=5.0)]).to_json()
    table = bench_run.format_table(_results([
        ok, {"name": "training", "rows": [], "details": {}, "error": "Traceback\nValueError: x"},
        {"name": "gpu", "rows": [], "details": {"skipped": "no GPU"}}]))
    assert "CPU X (2 cores, 24 GiB, no GPU)" in table
    assert "| conversion | conversion, 2 workers | 612 img/s | 101 img/s | 6.06x | ≥ 5x | yes |" \
        in table
    assert "| training | failed: ValueError: x |" in table
    assert "| gpu | skipped: no GPU |" in table


def test_readme_block_is_replaced_and_missing_markers_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:start -->\nold\n<!-- bench:end -->\nafter\n")
    bench_run.update_readme(readme, "| new |")
    assert readme.read_text() == "intro\n<!-- bench:start -->\n| new |\n<!-- bench:end -->\nafter\n"
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(ConfigError, match="bench:start"):
        bench_run.update_readme(tmp_path / "plain.md", "x")


def test_failed_section_is_recorded_not_raised(tmp_path, monkeypatch):
    def fake_one(name, work_dir, quick):
        if name == "training":
            return {"name": name, "rows": [], "details": {}, "error": "boom"}
        return Section(name, [Row("r", 1.0, "x")]).to_json()
    monkeypatch.setattr(bench_run, "_run_one", fake_one)
    out = tmp_path / "results.json"
    results = bench_run.run_bench(out, tmp_path / "work", ["conversion", "training"],
                                  log=lambda *_: None)
    saved = json.loads(out.read_text())
    assert saved == results
    assert [s["name"] for s in saved["sections"]] == ["conversion", "training"]
    assert saved["sections"][1]["error"] == "boom"
    assert saved["machine"]["cpu_count"] >= 1


def test_unknown_section_is_a_usage_error(tmp_path, capsys):
    assert main(["bench", "--sections", "conversion,warp", "--output",
                 str(tmp_path / "r.json"), "--work-dir", str(tmp_path / "w")]) == 1
    assert "unknown bench section 'warp'; valid: conversion" in capsys.readouterr().err


def test_relative_work_dir_is_made_absolute(tmp_path, monkeypatch):
    seen = []

    def fake_one(name, work_dir, quick):
        seen.append(work_dir)
        return Section(name).to_json()
    monkeypatch.setattr(bench_run, "_run_one", fake_one)
    monkeypatch.chdir(tmp_path)
    bench_run.run_bench("r.json", "bench/work", ["conversion"], log=lambda *_: None)
    assert seen == [tmp_path / "bench" / "work"]


def test_sections_not_run_are_kept_from_the_same_machine(tmp_path, monkeypatch):
    runs = []

    def fake_one(name, work_dir, quick):
        runs.append(name)
        return Section(name, [Row(f"{name} figure", float(len(runs)), "x")]).to_json()
    monkeypatch.setattr(bench_run, "_run_one", fake_one)
    out = tmp_path / "results.json"
    first = bench_run.run_bench(out, tmp_path / "w", ["conversion", "training"],
                                log=lambda *_: None)
    first_training = first["sections"][1]
    second = bench_run.run_bench(out, tmp_path / "w", ["conversion"], log=lambda *_: None)
    assert runs == ["conversion", "training", "conversion"]
    assert [s["name"] for s in second["sections"]] == ["conversion", "training"]
    assert second["sections"][0]["rows"][0]["value"] == 3.0  # re-measured
    assert second["sections"][1] == first_training  # kept, with its own date
    assert json.loads(out.read_text()) == second

    # Another machine or the other mode: nothing is kept.
    saved = json.loads(out.read_text())
    saved["machine"]["cpu_count"] = 64
    out.write_text(json.dumps(saved))
    assert [s["name"] for s in bench_run.run_bench(
        out, tmp_path / "w", ["conversion"], log=lambda *_: None)["sections"]] == ["conversion"]
    bench_run.run_bench(out, tmp_path / "w", ["conversion", "training"], log=lambda *_: None)
    assert [s["name"] for s in bench_run.run_bench(
        out, tmp_path / "w", ["conversion"], quick=True, log=lambda *_: None)["sections"]] == \
        ["conversion"]


def test_table_names_each_sections_date_when_they_differ():
    a = dict(Section("conversion", [Row("c", 1.0, "x")]).to_json(), date="2026-11-21 12:00 UTC")
    b = dict(Section("training", [Row("t", 1.0, "x")]).to_json(), date="2026-11-20 09:00 UTC")
    table = bench_run.format_table(_results([a, b]))
    assert table.startswith("Measured on CPU X")
    assert "conversion 2026-11-21 12:00 UTC; training 2026-11-20 09:00 UTC" in table
    same = bench_run.format_table(_results([dict(a, date="2026-01-01 00:00 UTC")]))
    assert same.startswith("Measured 2026-01-01 00:00 UTC on CPU X")
