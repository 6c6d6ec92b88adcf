"""``tfmask.bench.photos`` in quick mode: both memory rows are measured, on upright records.

Benchmarks never assert figures: only that each was measured on the intended data.
"""

from __future__ import annotations

import pytest

import json
import math

from tfmask.bench import photos
from tfmask.data.records.reader import read_examples


@pytest.mark.slow
def test_quick_photos_section_measures_the_converter_and_inference(tmp_path):
    section = photos.run(tmp_path, quick=True)
    assert section.name == "photos"
    assert [row.name for row in section.rows] == [
        "phone photos: tfrecord peak RSS, 3 photos (parent + largest worker)",
        "phone photos: infer peak RSS, 3 photos, 20 detections each"]
    for row in section.rows:
        assert row.unit == "MiB" and math.isfinite(row.value) and row.value > 0 and row.note
    run = section.details["runs"]["3_photos"]
    assert run["convert"]["worker_rss_mib"] > 0
    assert run["infer"]["detections"] == 3 * 20  # every slot of the fresh model, pasted
    portrait = next(e for e in read_examples(str(tmp_path / "records_1x" / "train-*"))
                    if e.filename.startswith("portrait"))
    assert portrait.size_hw == (1008, 756)  # stored 1008x756 sideways, upright 756 wide
    dets = json.loads((tmp_path / "infer_1x" / "detections.json").read_text())
    assert {tuple(d["segmentation"]["size"]) for d in dets
            if d["file_name"].startswith("portrait")} == {(1008, 756)}
