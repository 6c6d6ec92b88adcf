"""Phone-photo benchmark: peak memory of the converter and of inference on phone photos.

Data (:func:`tfmask.data.synth_variants.write_phone_photos`): per copy a 12 MP
portrait JPEG stored sideways with EXIF orientation 6 (4032x3024), an RGBA PNG
and a grayscale JPEG (1600x1200), with upright masks; 3 copies (9 photos) and,
as the baseline, 1 copy (3 photos): memory that does not grow with the folder
is what "bounded" means. Quick mode: 1008x756 portraits, 640x480 others, one
folder.

Measured, each in a fresh process (``python -m tfmask.bench.photos measure
...``) whose peak RSS (``VmHWM``) is its own: ``convert`` (components mode, 2 workers:
parent and largest worker) and ``infer`` (``tfmask infer`` on the photos with
``--min-score 0``) of an export of the tiny model at the demo's input size for
such photos (320 px; random weights, so every image keeps its
``max_total_detections`` = 20 detections, each pasted full-size).

Run it with ``tfmask bench --sections photos``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

from tfmask.bench.common import Row, Section

FULL = {"large_hw": (4032, 3024), "other_hw": (1200, 1600), "copies": (1, 3)}
QUICK = {"large_hw": (1008, 756), "other_hw": (480, 640), "copies": (1,)}


def _measure(*args: str) -> Dict[str, float]:
    cmd = [sys.executable, "-m", "tfmask.bench.photos", "measure", *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark run {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _folder(work_dir: Path, copies: int, sizes) -> Path:
    from tfmask.data.synth_variants import write_phone_photos

    out = work_dir / f"photos_{copies}x_{sizes['large_hw'][0]}"
    if not (out / ".complete").exists():
        write_phone_photos(out, copies=copies, large_hw=sizes["large_hw"],
                           other_hw=sizes["other_hw"], seed=3, num_test=0)
        (out / ".complete").write_text(str(copies))
    return out


def _fresh_export(work_dir: Path, records: Path, input_size: int) -> Path:
    """An export of the never-trained tiny model (every detection slot filled)."""
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file
    from tfmask.demo import TINY_CONFIG
    from tfmask.export.exporter import export_model
    from tfmask.modeling.untrained import save_untrained

    out = work_dir / f"export_{input_size}"
    if (out / "saved_model" / "saved_model.pb").is_file():
        return out
    msg = read_text_file(TINY_CONFIG)
    edit.point_at_records(msg, records)
    edit.set_image_size(msg, input_size)
    config = work_dir / f"pipeline_{input_size}.config"
    write_text_file(config, msg)
    ckpt = work_dir / f"fresh_{input_size}"
    save_untrained(config, ckpt, seed=0)
    export_model(config, ckpt, out)
    return out


def run(work_dir: Path, quick: bool) -> Section:
    from tfmask.demo_plan import fit_input_size

    sizes = QUICK if quick else FULL
    input_size = fit_input_size(max(sizes["large_hw"]))
    section = Section("photos", details={
        "portrait_stored_wh": list(sizes["large_hw"]), "others_hw": list(sizes["other_hw"]),
        "input_size": input_size, "workers": 2, "instance_mode": "components",
        "detections_per_image": 20})
    results = {}
    for copies in sizes["copies"]:
        folder = _folder(work_dir, copies, sizes)
        records = work_dir / f"records_{copies}x"
        conv = _measure("convert", str(folder), str(records))
        export = _fresh_export(work_dir, records, input_size)
        inf = _measure("infer", str(export), str(folder / "train_images"),
                       str(work_dir / f"infer_{copies}x"))
        results[copies] = (conv, inf)
    copies = max(results)
    conv, inf = results[copies]
    base = results[min(results)] if len(results) > 1 else None
    photos = 3 * copies
    section.rows.append(Row(
        f"phone photos: tfrecord peak RSS, {photos} photos (parent + largest worker)",
        conv["rss_mib"] + conv["worker_rss_mib"], "MiB", higher_is_better=False,
        baseline=None if base is None else base[0]["rss_mib"] + base[0]["worker_rss_mib"],
        baseline_name="" if base is None else "the same, 3 photos",
        note=f"parent {conv['rss_mib']:.0f} MiB, largest worker {conv['worker_rss_mib']:.0f} "
             f"MiB; {photos / conv['seconds']:.2f} photos/s"))
    section.rows.append(Row(
        f"phone photos: infer peak RSS, {photos} photos, 20 detections each",
        inf["rss_mib"], "MiB", higher_is_better=False,
        baseline=None if base is None else base[1]["rss_mib"],
        baseline_name="" if base is None else "the same, 3 photos",
        note=f"export input {input_size} px; {photos / inf['seconds']:.2f} photos/s "
             f"(model load excluded: {inf['load_seconds']:.1f} s)"))
    section.details["runs"] = {f"{3 * c}_photos": {"convert": r[0], "infer": r[1]}
                               for c, r in results.items()}
    return section


def own_peak_rss_mib() -> float:
    """This process's peak RSS since it started (``VmHWM`` of /proc/self/status), MiB.

    ``getrusage``'s ``ru_maxrss`` carries the peak of the process that forked
    this one over ``exec`` (the section process, TensorFlow loaded, 2 GiB),
    so it would not be this run's own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    from tfmask.bench.common import peak_rss_mib

    return peak_rss_mib()


def _measure_main(kind: str, *args: str) -> None:
    """One run in this (fresh) process; prints a JSON line with its peak memory."""
    import resource

    start = time.perf_counter()
    if kind == "convert":
        from tfmask.data.convert import ConvertConfig, convert

        data_dir, out_dir = args
        convert(ConvertConfig(data_dir=data_dir, output_dir=out_dir, instance_mode="components",
                              val_fraction=0.0, workers=2, progress=False))
        extra = {"worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    elif kind == "infer":
        from tfmask.inference.infer import infer

        export, images, out_dir = args
        summary = infer(export, images, out_dir, min_score=0.0, progress=False)
        extra = {"load_seconds": summary.load_seconds, "detections": summary.detections}
    else:
        raise ValueError(f"unknown measurement '{kind}'; valid: convert, infer")
    print(json.dumps(dict(extra, seconds=time.perf_counter() - start,
                          rss_mib=own_peak_rss_mib())))


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "measure":
    _measure_main(sys.argv[2], *sys.argv[3:])
