"""Shared, once-per-session set-up of the export tests: records, a trained tiny model, exports.

Plain functions memoized on pytest's ``tmp_path_factory`` (one per session, by
:func:`session_testlib.per_session`) rather than a conftest.py: a conftest in
this folder would shadow the ``from conftest import ...`` of test modules
collected after it.
"""

from __future__ import annotations

from pathlib import Path

from session_testlib import per_session

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "mask_rcnn_tiny_cpu.config"
SIZE_HW = (96, 128)
TRAIN_STEPS = 80  # masks reliably non-empty (at 30 steps some runs had none: not reproducible)


@per_session
def dataset(factory) -> Path:
    """A synthesized PNG dataset (12 labelled, 3 test images), converted to records.

    Returns the root: ``data/`` (tutorial layout), ``records/`` (train/val
    records, label map, COCO JSON) and ``pipeline.config`` (the tiny config
    pointed at the records).
    """
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import synthesize

    root = factory.mktemp("export_data")
    synthesize(root / "data", num_train=12, num_test=3, size_hw=SIZE_HW, seed=1,
               min_objects=1, max_objects=3, image_format="png")
    convert(ConvertConfig(data_dir=str(root / "data"), output_dir=str(root / "records"),
                          instance_mode="box", val_fraction=0.25, write_coco_json=True,
                          progress=False))
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(TINY)
    edit.point_at_records(msg, root / "records")
    # Keep every detection the model makes: a short-trained model (training is not
    # reproducible) may score all of them below the shipped 0.05 on an image.
    msg.set("model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression."
            "score_threshold", 0.0)
    write_text_file(root / "pipeline.config", msg)
    return root


@per_session
def trained(factory) -> Path:
    """A model dir holding the tiny model trained for ``TRAIN_STEPS`` steps."""
    from tfmask.training import loop
    from tfmask.config import experiment

    cfg = dataset(factory) / "pipeline.config"
    model_dir = factory.mktemp("export_model")
    exp = experiment.from_pipeline_config(cfg)
    opts = experiment.RunOptions(num_train_steps=TRAIN_STEPS, checkpoint_every_n=TRAIN_STEPS)
    loop.train(exp, model_dir, opts, say=lambda s: None)
    return model_dir


@per_session
def exported(factory, input_type: str = "image_tensor", full_image_masks: bool = False):
    """``(export folder, ExportResult)`` of the trained model."""
    from tfmask.export.exporter import export_model

    out = factory.mktemp("exports") / f"{input_type}{'_full' if full_image_masks else ''}"
    result = export_model(dataset(factory) / "pipeline.config", trained(factory), out,
                          input_type=input_type, full_image_masks=full_image_masks)
    return out, result


def synth_image(factory, name: str = "image0001.png"):
    """[H, W, 3] uint8 pixels of a labelled synth image."""
    import numpy as np
    from PIL import Image

    with Image.open(dataset(factory) / "data" / "train_images" / name) as img:
        return np.asarray(img.convert("RGB"))


@per_session
def untrained(factory) -> Path:
    """A checkpoint folder of the tiny model with seeded random weights (no training):
    its scores spread over (0, 1), so every image has ``max_total_detections`` of them."""
    from tfmask.modeling.untrained import save_untrained

    ckpt_dir = factory.mktemp("untrained_model")
    save_untrained(dataset(factory) / "pipeline.config", ckpt_dir, seed=3)
    return ckpt_dir


@per_session
def exported_as(factory, fmt: str, min_score: float = 0.0):
    """``(export folder, ExportResult)`` of :func:`untrained` exported as ``fmt``."""
    from tfmask.export.exporter import export_model

    out = factory.mktemp("format_exports") / f"{fmt}_{min_score:g}"
    result = export_model(dataset(factory) / "pipeline.config", untrained(factory), out,
                          min_score=min_score, format=fmt)
    return out, result
