"""``tfmask demo``: the whole pipeline, as far as it exists, on the bundled sample.

Steps: make sure there is a dataset (the bundled ``dataset/`` sample, or a
freshly synthesized one when the folder is empty), check the mask pixel
values against the label map, convert to train/val TFRecords with COCO
ground truth, draw previews of the validation records, and train the tiny
CPU config (``configs/mask_rcnn_tiny_cpu.config``) for a short run with COCO
box/mask evaluation on the validation split. Prints where every output is.

Run it with ``make demo`` (which also creates the environment) or::

    tfmask demo --data-dir dataset --out out/demo
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

from tfmask.convert import ConvertConfig, convert
from tfmask.label_map import read_label_map


@dataclass
class DemoResult:
    """Where the demo put things: a name -> path mapping, in the order made."""

    data_dir: Path
    outputs: Dict[str, Path] = field(default_factory=dict)


def ensure_dataset(data_dir: Path, out_dir: Path, say: Callable[[str], None]) -> Path:
    """The dataset to use: ``data_dir`` if it has images, else a synthesized one."""
    if (data_dir / "train_images").is_dir() and any((data_dir / "train_images").iterdir()):
        return data_dir
    from tfmask.synth import synthesize

    synth_dir = out_dir / "data"
    say(f"[demo] {data_dir}/train_images is empty: synthesizing a sample into {synth_dir}")
    synthesize(synth_dir, overwrite=True)
    return synth_dir


TINY_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "mask_rcnn_tiny_cpu.config"


def write_demo_config(records: Path, out_dir: Path, num_classes: int) -> Path:
    """The tiny config, pointed at the demo's records (absolute paths)."""
    text = TINY_CONFIG.read_text().replace("../dataset/records", str(records.resolve()))
    text = text.replace("num_classes: 3", f"num_classes: {num_classes}")
    path = out_dir / "pipeline.config"
    path.write_text(text)
    return path


def run_demo(data_dir: Path, out_dir: Path, workers: int = 1, progress: bool = True,
             say: Callable[[str], None] = print, train_steps: int = 150) -> DemoResult:
    """Runs every available pipeline stage; returns where the outputs are."""
    from tfmask.pixels import scan_masks
    from tfmask.preview import preview_records

    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = ensure_dataset(Path(data_dir), out_dir, say)
    result = DemoResult(data_dir)

    say(f"[demo] 1/4 mask pixel values in {data_dir}/train_masks")
    report = scan_masks(data_dir / "train_masks")
    label_map = read_label_map(data_dir / "label.pbtxt")
    known = {c.pixel_value[0] for c in label_map.classes}
    levels = report.class_gray_levels
    say(f"       gray levels {levels}; label map classes " + ", ".join(
        f"{c.name}={c.pixel_value[0]}" for c in label_map.classes)
        + ("" if set(levels) <= known else "  (some values match no class!)"))

    has_xml = (data_dir / "train_bboxes").is_dir() and any((data_dir / "train_bboxes").iterdir())
    mode = "box" if has_xml else "components"
    records = out_dir / "records"
    say(f"[demo] 2/4 converting to TFRecords (instance mode '{mode}', 20% validation)")
    conv = convert(ConvertConfig(data_dir=str(data_dir), output_dir=str(records),
                                 instance_mode=mode, val_fraction=0.2, seed=0,
                                 write_coco_json=True, workers=workers, progress=progress))
    say("\n".join("       " + line for line in conv.format().splitlines()))
    result.outputs["records"] = records
    result.outputs["label map"] = records / "label_map.pbtxt"
    result.outputs["COCO ground truth"] = records / "val_coco.json"
    result.outputs["conversion report"] = records / "conversion_report.json"

    previews = out_dir / "preview"
    say(f"[demo] 3/4 drawing the validation ground truth into {previews}")
    written: List[Path] = preview_records(str(records / "val-*"), previews, progress=progress)
    result.outputs["ground-truth previews"] = previews
    say(f"       {len(written)} preview images")

    if train_steps > 0:
        from tfmask.training import experiment, loop

        model_dir = out_dir / "model"
        config = write_demo_config(records, out_dir, len(label_map.classes))
        say(f"[demo] 4/4 training the tiny CPU Mask R-CNN for {train_steps} steps ({config})")
        exp = experiment.from_pipeline_config(config)
        trained = loop.train(exp, model_dir, experiment.RunOptions(
            num_train_steps=train_steps, checkpoint_every_n=train_steps),
            say=lambda line: say("       " + line), log_every=max(1, train_steps // 10))
        m = trained.metrics
        say(f"       validation: box AP50 {m.get('AP50', float('nan')):.3f}, mask AP50 "
            f"{m.get('mask_AP50', float('nan')):.3f} (a short run from scratch)")
        result.outputs["pipeline.config"] = config
        result.outputs["model (checkpoints)"] = model_dir
        result.outputs["metrics"] = model_dir / "metrics.json"

    say("\n[demo] done. Outputs:")
    for name, path in result.outputs.items():
        say(f"  {name:<22} {path}")
    say("Export and inference of the trained model are the next stages (not in this release).")
    return result
