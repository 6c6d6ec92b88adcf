"""Conversion benchmark: ``tfmask tfrecord`` vs :func:`baseline_convert`, and memory.

Data: a synthesized dataset (512x384 JPEG photos, RGB class-colour masks of 3
classes, 1-5 objects each; 500 images, 40 in quick mode), converted in class
mode (one instance per class present, what the baseline computes). Every
measured run is a fresh Python process (``python -m tfmask.bench.conversion
measure ...``), timed around the conversion call only (interpreter and
import time excluded, worker start-up included), so peak RSS belongs to that
run alone: the parent's peak and the largest worker's peak are reported. Each
configuration runs ``repeats`` times (3) and the median is reported. The
drop-in ``create_mask_rcnn_tf_record.py`` runs with its default flags (one
worker per CPU), which is what a tutorial user gets.

Memory: the same images under 10x as many names (hard links: 5,000 files,
400 in quick mode) converted with 2 workers; peak RSS is compared with the
500-image run (target: within 2x, i.e. streaming).

The records are checked, not only timed: tfmask's and the baseline's records
must hold the same images, classes, boxes and masks.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from tfmask.bench.common import Row, Section

SIZE_HW = (384, 512)
SCALE_FACTOR = 10  # the memory run converts this many times more images


def make_dataset(out: Path, num_images: int) -> Path:
    """Synthesizes the benchmark dataset once (reused when already complete)."""
    from tfmask.data.synth import synthesize

    marker = out / ".complete"
    if marker.exists():
        return out
    synthesize(out, num_train=num_images, num_test=0, size_hw=SIZE_HW, min_objects=1,
               max_objects=5, seed=11, mask_mode="RGB", overwrite=True)
    marker.write_text(str(num_images))
    return out


def replicate(src: Path, out: Path, factor: int) -> Path:
    """``src``'s images and masks under ``factor`` times as many names (hard links)."""
    marker = out / ".complete"
    if marker.exists():
        return out
    for sub in ("train_images", "train_masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for p in sorted((src / sub).iterdir()):
            for k in range(factor):
                target = out / sub / f"copy{k:02d}_{p.name}"
                if not target.exists():
                    try:
                        os.link(p, target)
                    except OSError:
                        target.write_bytes(p.read_bytes())
    (out / "label.pbtxt").write_bytes((src / "label.pbtxt").read_bytes())
    marker.write_text(str(factor))
    return out


def _measure(kind: str, data_dir: Path, out_dir: Path, workers: int) -> Dict[str, float]:
    """Runs one conversion in a fresh process; returns its timing and memory."""
    cmd = [sys.executable, "-m", "tfmask.bench.conversion", "measure", kind, str(data_dir),
           str(out_dir), str(workers)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark run {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_run(kind, data_dir, out_dir, workers, repeats) -> Dict[str, float]:
    runs = [_measure(kind, data_dir, out_dir, workers) for _ in range(repeats)]
    best = dict(runs[0])
    best["seconds"] = statistics.median(r["seconds"] for r in runs)
    best["rss_mib"] = max(r["rss_mib"] for r in runs)
    best["worker_rss_mib"] = max(r["worker_rss_mib"] for r in runs)
    best["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    return best


def _same_content(tfmask_records: Path, baseline_record: Path) -> bool:
    """True when both hold the same images with the same classes, boxes and masks."""
    from tfmask.data.records.reader import read_examples

    ours = {e.filename: e for e in read_examples(str(tfmask_records))}
    theirs = {e.filename: e for e in read_examples(str(baseline_record))}
    if ours.keys() != theirs.keys():
        return False
    for name, a in ours.items():
        b = theirs[name]
        if (a.encoded != b.encoded or list(a.class_ids) != list(b.class_ids)
                or a.masks.shape != b.masks.shape or not np.array_equal(a.masks, b.masks)
                or not np.allclose(a.boxes_yxyx_norm, b.boxes_yxyx_norm, atol=1e-6)):
            return False
    return True


def run(work_dir: Path, quick: bool) -> Section:
    n = 40 if quick else 500
    repeats = 1 if quick else 3
    data = make_dataset(work_dir / f"synth_{n}", n)
    big = replicate(data, work_dir / f"synth_{n * SCALE_FACTOR}", SCALE_FACTOR)
    section = Section("conversion", details={
        "images": n, "image_size_wh": [SIZE_HW[1], SIZE_HW[0]], "mask": "RGB, 3 classes",
        "objects_per_image": "1-5", "instance_mode": "class", "repeats": repeats,
        "statistic": "median"})
    base = _median_run("baseline", data, work_dir / "out_baseline", 1, repeats)
    runs = {w: _median_run("tfmask", data, work_dir / f"out_tfmask_w{w}", w, repeats)
            for w in (1, 2)}
    base_ips = n / base["seconds"]
    for w, r in runs.items():
        section.rows.append(Row(
            f"conversion, {w} worker{'s' if w > 1 else ''}", n / r["seconds"], "img/s",
            baseline=base_ips, baseline_name="tfmask.bench.baseline_convert (1 process)",
            target=5.0 if w == 2 else None,
            note=f"{n} images 512x384; seconds per run {r['all_seconds']}"))
    # What a tutorial user gets: the drop-in script with its default flags (one
    # worker per CPU), in class mode like the baseline.
    legacy = _median_run("legacy", data, work_dir / "out_legacy", 0, repeats)
    section.rows.append(Row(
        "conversion, drop-in create_mask_rcnn_tf_record.py, default flags",
        n / legacy["seconds"], "img/s", baseline=base_ips,
        baseline_name="tfmask.bench.baseline_convert (1 process)", target=5.0,
        note=f"--bboxes_provided=False only: {legacy['workers']} workers (the CPU count); "
             f"seconds per run {legacy['all_seconds']}"))
    section.rows.append(Row("conversion peak RSS, 2 workers (parent / largest worker)",
                            runs[2]["rss_mib"], "MiB", higher_is_better=False,
                            note=f"largest worker {runs[2]['worker_rss_mib']:.0f} MiB; "
                                 f"baseline process {base['rss_mib']:.0f} MiB"))
    scaled = _measure("tfmask", big, work_dir / "out_tfmask_big", 2)
    total_small = runs[2]["rss_mib"] + 2 * runs[2]["worker_rss_mib"]
    total_big = scaled["rss_mib"] + 2 * scaled["worker_rss_mib"]
    section.rows.append(Row(
        f"peak RSS {n * SCALE_FACTOR} vs {n} images (parent + 2 workers)", total_big / total_small,
        "x", higher_is_better=False, target=2.0,
        note=f"{total_big:.0f} MiB for {n * SCALE_FACTOR} images vs {total_small:.0f} MiB for "
             f"{n}; {n * SCALE_FACTOR / scaled['seconds']:.0f} img/s"))
    section.details["peak_rss_mib"] = {
        f"{n}_images": {"parent": runs[2]["rss_mib"], "worker": runs[2]["worker_rss_mib"]},
        f"{n * SCALE_FACTOR}_images": {"parent": scaled["rss_mib"],
                                       "worker": scaled["worker_rss_mib"]}}
    section.details["records_match_baseline"] = _same_content(
        work_dir / "out_tfmask_w2" / "train-00000-of-00001",
        work_dir / "out_baseline" / "baseline.record")
    section.details["drop_in_records_match_baseline"] = _same_content(
        work_dir / "out_legacy" / "data" / "train_data-00000-of-00001",
        work_dir / "out_baseline" / "baseline.record")
    return section


def _measure_main(kind: str, data_dir: str, out_dir: str, workers: int) -> None:
    """One timed conversion in this (fresh) process; prints a JSON line."""
    import resource

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "baseline":
        import tensorflow  # noqa: F401  imported before timing, like the converter's imports
        from tfmask.bench.baseline import baseline_convert

        start = time.perf_counter()
        count = baseline_convert(data_dir, out / "baseline.record")
    elif kind == "legacy":  # the drop-in script's main(), default flags
        from tfmask.cli.legacy_tfrecord import main
        from tfmask.data.convert import default_workers

        workers = default_workers()  # what the script's --workers default resolves to
        data_copy = out / "data"  # the script writes into its data dir
        if not data_copy.exists():
            data_copy.mkdir()
            for sub in ("train_images", "train_masks", "label.pbtxt"):
                os.symlink(Path(data_dir).resolve() / sub, data_copy / sub)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            if main([f"--data_dir_path={data_copy}", "--bboxes_provided=False"]) != 0:
                raise RuntimeError("the drop-in script failed")
        count = sum(1 for _ in (Path(data_dir) / "train_images").iterdir())
    else:
        from tfmask.alloc import keep_freed_memory
        from tfmask.data.convert import ConvertConfig, convert

        keep_freed_memory()  # as the tfmask command does

        cfg = ConvertConfig(data_dir=data_dir, output_dir=str(out), workers=workers,
                            val_fraction=0.0, progress=False)
        start = time.perf_counter()
        count = sum(convert(cfg).images_per_split.values())
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds, "images": count, "workers": workers,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def main(argv: List[str]) -> int:
    if argv[:1] != ["measure"] or len(argv) != 5:
        print("usage: python -m tfmask.bench.conversion measure {baseline,tfmask} DATA_DIR "
              "OUT_DIR WORKERS", file=sys.stderr)
        return 2
    _measure_main(argv[1], argv[2], argv[3], int(argv[4]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
