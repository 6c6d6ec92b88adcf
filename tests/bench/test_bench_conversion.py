"""The conversion benchmark: its baseline converts the same content, its rows are filled."""

import math
import os

import pytest

from tfmask.bench import baseline_convert
from tfmask.bench import conversion
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.synth import synthesize


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_conv")
    synthesize(root / "a", num_train=6, num_test=0, size_hw=(48, 64), mask_mode="RGB", seed=3)
    synthesize(root / "b", num_train=6, num_test=0, size_hw=(48, 64), mask_mode="RGB", seed=4)
    return root


def test_baseline_writes_what_the_converter_writes(tiny):
    assert baseline_convert(tiny / "a", tiny / "base.record") == 6
    convert(ConvertConfig(data_dir=str(tiny / "a"), output_dir=str(tiny / "ours"),
                          val_fraction=0.0, progress=False))
    ours = tiny / "ours" / "train-00000-of-00001"
    assert conversion._same_content(ours, tiny / "base.record")
    baseline_convert(tiny / "b", tiny / "other.record")
    assert not conversion._same_content(ours, tiny / "other.record")


def test_replicate_makes_distinct_names(tiny):
    out = conversion.replicate(tiny / "a", tiny / "x3", 3)
    assert len(list((out / "train_images").iterdir())) == 18
    assert len(list((out / "train_masks").iterdir())) == 18
    report = convert(ConvertConfig(data_dir=str(out), output_dir=str(tiny / "x3rec"),
                                   workers=2, val_fraction=0.0, progress=False))
    assert report.images_per_split == {"train": 18}


def test_quick_section_fills_every_row(tmp_path):
    section = conversion.run(tmp_path, quick=True)
    names = [r.name for r in section.rows]
    assert names[:2] == ["conversion, 1 worker", "conversion, 2 workers"]
    for row in section.rows:
        assert math.isfinite(row.value) and row.value > 0, row
    assert section.rows[1].baseline > 0 and section.rows[1].ratio > 0
    assert section.details["records_match_baseline"] is True
    drop_in = section.rows[2]
    assert drop_in.name.startswith("conversion, drop-in") and drop_in.target == 5.0
    assert f"{len(os.sched_getaffinity(0))} workers" in drop_in.note
    assert section.details["drop_in_records_match_baseline"] is True
    assert set(section.details["peak_rss_mib"]) == {"40_images", "400_images"}
