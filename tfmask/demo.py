"""``tfmask demo``: the whole pipeline on a folder (the bundled sample by default).

Steps: make sure there is a dataset (``--data-dir``, the bundled ``dataset/``
sample, or a freshly synthesized one when the folder is empty), print what the
folder holds and what the run will do (:mod:`tfmask.demo_plan`: label map
values, instance mode, input size and steps fitted to the images), check the
mask pixel values against the label map, convert to train/val TFRecords with COCO
ground truth, draw previews of the validation records, train the tiny CPU
config (``configs/mask_rcnn_tiny_cpu.config`` with the demo's settings:
:func:`tune_demo_config`), export it as a SavedModel,
run inference on the test images (overlays + COCO results) and evaluate the
export on the validation split (COCO box/mask AP, PR curves). Prints where
every output is.

Run it with ``make demo`` (which also creates the environment) or::

    tfmask demo --data-dir dataset --out out/demo
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from tfmask.data.convert import ConvertConfig, convert
from tfmask.config.label_map import format_pixel_value


@dataclass
class DemoResult:
    """Where the demo put things: a name -> path mapping, in the order made."""

    data_dir: Path
    outputs: Dict[str, Path] = field(default_factory=dict)
    plan: Any = None  # the tfmask.demo_plan.DemoPlan it ran


def ensure_dataset(data_dir: Path, out_dir: Path, say: Callable[[str], None]) -> Path:
    """The dataset to use: ``data_dir`` if it has images, else a synthesized one."""
    if (data_dir / "train_images").is_dir() and any((data_dir / "train_images").iterdir()):
        return data_dir
    from tfmask.data.synth import synthesize

    synth_dir = out_dir / "data"
    say(f"[demo] {data_dir}/train_images is empty: synthesizing a sample into {synth_dir}")
    synthesize(synth_dir, overwrite=True)
    return synth_dir


TINY_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "mask_rcnn_tiny_cpu.config"


def write_demo_config(records: Path, out_dir: Path, num_classes: int, num_steps: int,
                      template: Path = TINY_CONFIG) -> Path:
    """``out_dir/pipeline.config``: ``template`` (the tiny config) pointed at the demo's
    records (absolute paths), with ``num_classes`` and its learning-rate schedule
    stretched or shrunk to ``num_steps`` (warm-up at most 20 steps, a tenth of the run)."""
    from tfmask.config import edit
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(template)
    edit.point_at_records(msg, records)
    edit.set_num_classes(msg, num_classes)
    steps = max(1, num_steps)
    edit.set_num_steps(msg, steps, warmup_steps=min(20, max(1, steps // 10)))
    path = out_dir / "pipeline.config"
    write_text_file(path, msg, header=f"tfmask demo: {template.name} for {records}")
    return path


def run_demo(data_dir: Path, out_dir: Path, workers: int = 1, progress: bool = True,
             say: Callable[[str], None] = print, train_steps: Optional[int] = None,
             class_pixels: Sequence[str] = (), input_size: Optional[int] = None
             ) -> DemoResult:
    """Runs every available pipeline stage; returns where the outputs are.

    ``train_steps`` / ``input_size`` default to values fitted to the folder
    (:func:`tfmask.demo_plan.plan_demo`); ``class_pixels`` (``NAME=VALUE``)
    gives a plain label map's mask values.
    """
    from tfmask.data.pixels import scan_masks
    from tfmask.data.preview import preview_records
    from tfmask.demo_plan import plan_demo

    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = ensure_dataset(Path(data_dir), out_dir, say)
    result = DemoResult(data_dir)

    say(f"[demo] 1/7 what {data_dir} holds")
    plan = plan_demo(data_dir, class_pixels, train_steps, input_size)
    result.plan = plan
    for line in plan.lines():
        say("       " + line)
    label_map = plan.label_map
    say("       " + _pixel_check(scan_masks(data_dir / "train_masks"), label_map))

    mode = plan.instance_mode
    records = out_dir / "records"
    say(f"[demo] 2/7 converting to TFRecords (instance mode '{mode}', 20% validation)")
    conv = convert(ConvertConfig(data_dir=str(data_dir), output_dir=str(records),
                                 instance_mode=mode, val_fraction=0.2, seed=0,
                                 class_pixels=plan.class_pixels,
                                 write_coco_json=True, workers=workers, progress=progress))
    say("\n".join("       " + line for line in conv.format().splitlines()))
    result.outputs["records"] = records
    result.outputs["label map"] = records / "label_map.pbtxt"
    result.outputs["COCO ground truth"] = records / "val_coco.json"
    result.outputs["conversion report"] = records / "conversion_report.json"

    previews = out_dir / "preview"
    say(f"[demo] 3/7 drawing the validation ground truth into {previews}")
    written: List[Path] = preview_records(str(records / "val-*"), previews, progress=progress)
    result.outputs["ground-truth previews"] = previews
    say(f"       {len(written)} preview images")
    from tfmask.reporting.dataset import dataset_page

    result.outputs["dataset report"] = dataset_page(str(records / "*-of-*"),
                                                    out_dir / "dataset_report.html")
    say(f"       dataset report: {result.outputs['dataset report']}")

    if plan.train_steps > 0:
        _train_export_infer_eval(data_dir, records, out_dir, len(label_map.classes),
                                 plan.train_steps, result, say, progress, plan.input_size)

    say("\n[demo] done. Outputs:")
    for name, path in result.outputs.items():
        say(f"  {name:<22} {path}")
    return result


def _pixel_check(report, label_map) -> str:
    """One line: the masks' class values against the label map's."""
    rgb = label_map.matches_rgb
    found = {c.rgb if rgb else (c.gray,) for c in report.colours} - {(0, 0, 0), (0,)}
    known = {c.pixel_value for c in label_map.classes}
    shown = [format_pixel_value(v) for v in sorted(found)]
    line = f"mask values {', '.join(shown) or 'none'}"
    if found - known:
        line += (" - some match no class: " + ", ".join(sorted(
            format_pixel_value(v) for v in found - known)) + " (the converter names them)")
    unused = [c.name for c in label_map.classes if c.pixel_value not in found]
    if unused:
        line += f"; no mask pixels for {', '.join(unused)}"
    return line


# The demo's own settings on top of the tiny config, tuned on photo-like synthetic sets
# (docs/demo.md): a ResNet-10 of half width (about 1.5x the steps per second, and it
# generalises as well from ~30 photos) and augmentation against overfitting a few photos.
DEMO_DEPTH_MULTIPLIER = 0.5
DEMO_AUGMENTATION = (
    "random_horizontal_flip {}",
    "random_image_scale { min_scale_ratio: 0.75 max_scale_ratio: 1.33 }",
    "random_adjust_brightness { max_delta: 0.2 }",
    "random_adjust_contrast { min_delta: 0.7 max_delta: 1.3 }",
    "random_adjust_saturation { min_delta: 0.7 max_delta: 1.3 }",
    "random_adjust_hue { max_delta: 0.05 }",
)


def tune_demo_config(config: Path, size: int) -> None:
    """The demo's pipeline.config with a ``size`` x ``size`` input, the half-width
    backbone and :data:`DEMO_AUGMENTATION` (edited as data)."""
    from tfmask.config import edit
    from tfmask.config.textproto import parse_text, read_text_file, write_text_file

    msg = read_text_file(config)
    edit.set_image_size(msg, size)
    msg.set("model.faster_rcnn.feature_extractor.tfmask_depth_multiplier",
            DEMO_DEPTH_MULTIPLIER)
    msg.set("train_config.data_augmentation_options",
            [parse_text(f"option {{ {text} }}").get("option") for text in DEMO_AUGMENTATION])
    write_text_file(config, msg, header=f"tfmask demo: input {size}x{size} for this folder, "
                    "half-width backbone, augmentation (docs/demo.md)")


def train_demo_model(records: Path, out_dir: Path, num_classes: int, train_steps: int,
                     input_size: int, say: Callable[[str], None] = lambda s: None):
    """Trains the demo's model (the tiny CPU config tuned by :func:`tune_demo_config` to a
    ``input_size`` x ``input_size`` input) on ``records`` for ``train_steps`` steps.

    Writes ``out_dir/pipeline.config`` and the checkpoints in ``out_dir/model``; returns
    (the pipeline.config's path, :func:`tfmask.training.loop.train`'s result).
    """
    from tfmask.config import experiment
    from tfmask.training import loop

    config = write_demo_config(records, out_dir, num_classes, train_steps)
    tune_demo_config(config, input_size)
    exp = experiment.from_pipeline_config(config)
    trained = loop.train(exp, out_dir / "model", experiment.RunOptions(
        num_train_steps=train_steps, checkpoint_every_n=train_steps),
        say=say, log_every=max(1, train_steps // 10))
    return config, trained


def _train_export_infer_eval(data_dir: Path, records: Path, out_dir: Path, num_classes: int,
                             train_steps: int, result: DemoResult, say, progress: bool,
                             input_size: int) -> None:
    from tfmask.evaluation.outputs import write_eval_outputs
    from tfmask.evaluation.coco_eval import evaluate_model_on_records
    from tfmask.export.exporter import export_model
    from tfmask.inference.infer import infer

    model_dir = out_dir / "model"
    config = out_dir / "pipeline.config"
    say(f"[demo] 4/7 training the tiny CPU Mask R-CNN for {train_steps} steps ({config})")
    config, trained = train_demo_model(records, out_dir, num_classes, train_steps, input_size,
                                       say=lambda line: say("       " + line))
    result.outputs["pipeline.config"] = config
    result.outputs["model (checkpoints)"] = model_dir

    export_dir = out_dir / "export"
    say(f"[demo] 5/7 exporting the SavedModel into {export_dir}")
    exported = export_model(config, model_dir, export_dir)
    say(f"       verified: reloaded == in-memory (max |diff| "
        f"{max(exported.max_abs_diff.values()):.1e}); {exported.seconds:.0f} s")
    result.outputs["exported model"] = export_dir

    test_images = data_dir / "test_images"
    if test_images.is_dir() and any(test_images.iterdir()):
        infer_dir = out_dir / "infer"
        say(f"[demo] 6/7 inference on {test_images} -> {infer_dir}")
        summary = infer(export_dir, test_images, infer_dir, min_score=0.5, progress=progress)
        say(f"       {summary.images} images, {summary.detections} detections, "
            f"{summary.images_per_s:.1f} images/s")
        result.outputs["inference overlays"] = Path(summary.overlays_dir)
        result.outputs["detections (COCO)"] = Path(summary.detections_json)
    else:
        say(f"[demo] 6/7 no images in {test_images}: inference skipped")

    eval_dir = out_dir / "eval"
    say(f"[demo] 7/7 evaluating the export on the validation records -> {eval_dir}")
    evaluated = evaluate_model_on_records(export_dir, records / "val-*",
                                          records / "label_map.pbtxt")
    written = write_eval_outputs(evaluated, eval_dir)
    box, mask = evaluated.metrics["bbox"], evaluated.metrics["segm"]
    say(f"       validation: box AP50 {_fmt(box.stats['AP50'])}, mask AP50 "
        f"{_fmt(mask.stats['AP50'])}, mask AP {_fmt(mask.stats['AP'])} ({trained.step} "
        "training steps from scratch)")
    result.outputs["evaluation"] = written.metrics_json
    from tfmask.reporting.evaluation import eval_page

    result.outputs["evaluation report"] = eval_page(eval_dir, out_dir / "eval_report.html")
    say(f"       evaluation report: {result.outputs['evaluation report']}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
