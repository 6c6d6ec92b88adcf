"""``tfmask.bench.inference`` in quick mode: the rows are there and the figures are finite.

Benchmarks never assert timings: only that each figure was measured.
"""

from __future__ import annotations

import pytest

import math

from tfmask.bench import inference


@pytest.mark.slow
def test_quick_inference_section_has_every_row(tmp_path):
    section = inference.run(tmp_path, quick=True)
    names = [row.name for row in section.rows]
    assert section.name == "inference"
    assert names == [
        "tiny, 512x384 images: latency, batch 1 (median)",
        "tiny, 512x384 images: throughput, batch 1",
        "tiny: mask AP @[.5:.95], validation records",
        "tiny: box AP @[.5:.95], validation records",
    ]  # + three ResNet-50-FPN rows when not quick
    for row in section.rows:
        assert row.baseline is not None and row.baseline_name == "raw Model Garden export"
        assert row.note
        if row.unit == "AP":  # a 20-step model may score 0 on both
            assert 0.0 <= row.value <= 1.0 and 0.0 <= row.baseline <= 1.0
        else:
            assert math.isfinite(row.value) and row.value > 0
            assert math.isfinite(row.baseline) and row.baseline > 0
            assert row.ratio is not None and row.ratio > 0
    latency = section.rows[0]
    assert latency.unit == "ms" and not latency.higher_is_better
    assert latency.target == inference.LATENCY_TARGET
    for export in ("tfmask", "raw"):
        assert section.details["tiny"][export]["runs"] >= 1
    # same checkpoint, same detections: the survivors graph changes no score
    assert section.details["tiny"]["max_score_diff_first_image"] < 1e-5
    assert section.details["skipped"] == "ResNet-50-FPN (quick mode)"
    json = section.to_json()
    assert len(json["rows"]) == len(names)
