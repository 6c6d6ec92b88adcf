"""Every shipped config, and every published OD API config tfmask accepts, trains, exports, infers.

At 64 px (the one override besides records, classes and no fine-tune
checkpoint: tests download nothing), 2 steps on a 6-image synthetic set
shared by all. One run per distinct Model Garden model: a config whose
translated model equals one that runs here is checked equal instead of
trained again (the table :data:`SAME_MODEL_AS`). The shipped tiny config is
trained (80 steps), exported and inferred by ``tests/export`` and
``tests/inference`` (:mod:`export_testlib`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config_runs import SIZE, fill_in, records, train_export_infer
from published_configs import config_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {p.stem: p for p in sorted((ROOT / "configs").glob("*.config"))}
RUNS = ["mask_rcnn_resnet50_fpn_640x640", "mask_rcnn_resnet101_fpn_1024x1024",
        "mask_rcnn_inception_resnet_v2_1024x1024", "mask_rcnn_resnet50_fpn_coco_finetune",
        "mask_rcnn_resnet50_fpn_coco_finetune_v2", "tf1_resnet50_atrous", "tf1_resnet101_pets"]
# config -> (the config whose run covers it, model fields allowed to differ)
SAME_MODEL_AS = {
    "tf2_irv2_1024": ("mask_rcnn_inception_resnet_v2_1024x1024", ()),
    "tf1_irv2_atrous": ("mask_rcnn_inception_resnet_v2_1024x1024", ()),
    "tf1_resnet101_atrous": ("tf1_resnet50_atrous", ("backbone",)),
    "mask_rcnn_tiny_cpu": (None, ()),  # export_testlib: trained, exported, inferred
}


def _text(name: str) -> str:
    return SHIPPED[name].read_text() if name in SHIPPED else config_text(name)


def test_every_config_is_run_or_covered():
    from published_configs import CONFIGS

    trainable = set(SHIPPED) | {n for n in CONFIGS if n != "tf1_inception_v2"}
    assert set(RUNS) | set(SAME_MODEL_AS) == trainable


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    return records(tmp_path_factory)


@pytest.fixture
def fresh_graphs():
    """Frees each run's models and traced graphs (7 runs in one process held 7 GiB)."""
    yield
    import gc

    import tf_keras

    tf_keras.backend.clear_session()
    gc.collect()


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_config_trains_exports_and_infers(name, recs, tmp_path, fresh_graphs):
    cfg = fill_in(_text(name), tmp_path / f"{name}.config", recs)
    run = train_export_infer(cfg, tmp_path, recs)
    assert run.step == 2 and run.losses_finite
    assert run.export_max_abs_diff < 1e-3
    assert run.images == 1 and run.detections_json.is_file()


@pytest.mark.parametrize("name", [n for n, (other, _) in SAME_MODEL_AS.items() if other])
def test_config_builds_the_model_of_a_config_that_runs(name, recs, tmp_path):
    from tfmask.config.translate import translate

    other, may_differ = SAME_MODEL_AS[name]
    mine = translate(fill_in(_text(name), tmp_path / "a.config", recs)).params.task.model
    theirs = translate(fill_in(_text(other), tmp_path / "b.config", recs)).params.task.model
    a, b = mine.as_dict(), theirs.as_dict()
    assert [k for k in a if a[k] != b[k]] == list(may_differ)
    assert a["input_size"] == [SIZE, SIZE, 3]
