"""``tfmask demo --data-dir DIR`` on every variant of the tutorial layout: pixel-suffix or
plain label map, gray / RGB / palette masks, with or without XML, JPEG or PNG, small and
large photos, with or without test images. The plan is printed and right (class values,
instance mode, input size, steps), and the records hold the instances a pixel-suffix
conversion of the same files gives.

The variants stop after the previews (``train_steps=0``); a full run on one variant (the
plain label map without XML or test images) goes through training to evaluation.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from tfmask.cli import main
from tfmask.data.convert import ConvertConfig, convert
from tfmask.data.records.reader import read_examples
from tfmask.data.synth_variants import LAYOUT_VARIANTS, write_layout
from tfmask.demo import run_demo
from tfmask.demo_plan import fit_input_size, fit_train_steps, plan_demo

GRAY = {"speaker": 76, "cup": 150, "bottle": 226}


def _instances(records_glob):
    return Counter(name for ex in read_examples(records_glob) for name in ex.class_names)


def _reference(data, variant, tmp_path):
    """Instances per class converted with the synthesizer's own pixel-suffix label map."""
    ref = tmp_path / "reference"
    shutil.copytree(data, ref)
    (ref / "label.pbtxt").write_text("".join(
        f"item {{ id: {i} name: '{n}{g:03d}' }}\n" for i, (n, g) in enumerate(GRAY.items(), 1)))
    convert(ConvertConfig(data_dir=str(ref), output_dir=str(ref / "records"),
                          instance_mode="box" if variant.xml else "components",
                          val_fraction=0.2, seed=0, progress=False))
    return _instances(str(ref / "records" / "*-of-*"))


@pytest.mark.parametrize("name", sorted(LAYOUT_VARIANTS))
def test_each_layout_variant_is_planned_and_converted(name, tmp_path):
    variant = LAYOUT_VARIANTS[name]
    data = write_layout(tmp_path / "data", variant, num_train=10, num_test=2, seed=5)
    lines = []
    result = run_demo(data, tmp_path / "out", progress=False, say=lines.append, train_steps=0)
    text = "\n".join(lines)
    plan = result.plan
    assert plan.label_map_kind == variant.label_map
    assert plan.instance_mode == ("box" if variant.xml else "components")
    assert f"instance mode '{plan.instance_mode}'" in text
    long_side = max(variant.size_hw)
    assert plan.input_size == fit_input_size(long_side)
    assert f"model input {plan.input_size}x{plan.input_size} px" in text
    assert plan.train_steps == 0 and fit_train_steps(8) > 0
    assert (plan.test_images is not None) == variant.test_images
    assert ("inference is skipped" in text) == (not variant.test_images)
    # The class values: gray levels for gray masks, the synthesizer's colours otherwise.
    values = {c.name: c.pixel_value for c in plan.label_map.classes}
    if variant.label_map == "pixel-suffix" or variant.mask_mode == "L":
        assert values == {n: (g,) for n, g in GRAY.items()}
    else:
        assert {n: len(v) for n, v in values.items()} in ({n: 3 for n in GRAY},
                                                          {n: 1 for n in GRAY})
    if variant.label_map == "plain":
        assert ("assumed" in plan.pixel_source) == (not variant.xml)
    # The same instances as a conversion with the pixel-suffix label map.
    got = _instances(str(tmp_path / "out" / "records" / "*-of-*"))
    assert got == _reference(data, variant, tmp_path) and sum(got.values()) > 0
    assert "mask values" in text and "match no class" not in text
    assert "[demo] done. Outputs:" in text


def test_a_plain_label_map_with_an_extra_colour_needs_class_pixels(tmp_path, capsys):
    variant = LAYOUT_VARIANTS["plain_rgb_components_png"]
    data = write_layout(tmp_path / "data", variant, num_train=4, num_test=0, seed=1)
    (data / "label.pbtxt").write_text("item { id: 1 name: 'speaker' }\n"
                                      "item { id: 2 name: 'cup' }\n")
    assert main(["demo", "--data-dir", str(data), "--out", str(tmp_path / "out"),
                 "--train-steps", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data / 'label.pbtxt'}: this plain label map names 2 "
                          "class(es) but the masks hold 3 class colour(s)")
    # --class-pixel decides (the third colour then matches no class and is reported).
    plan = plan_demo(data, ["speaker=76", "cup=150"])
    assert plan.pixel_source == "values from --class-pixel"


@pytest.mark.slow
def test_the_demo_runs_through_on_a_plain_folder_without_xml_or_test_images(tmp_path):
    variant = LAYOUT_VARIANTS["plain_rgb_components_png"]
    data = write_layout(tmp_path / "data", variant, num_train=10, num_test=0, seed=7)
    out = tmp_path / "out"
    assert main(["demo", "--data-dir", str(data), "--out", str(out), "--train-steps", "3",
                 "--input-size", "128", "--no-progress"]) == 0
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["counts"]["images"] == 2 and "AP50" in metrics["segm"]
    assert not (out / "infer").exists()
    assert (out / "tfmask-demo.log").is_file()
    config = (out / "pipeline.config").read_text()
    assert "min_dimension: 128" in config and "num_steps: 3" in config
