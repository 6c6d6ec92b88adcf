"""``tfmask bench`` section ``peers``: tfmask's R50-FPN against torchvision's, same settings.

torchvision's ``maskrcnn_resnet50_fpn`` (v1; the ``[peers]`` extra) is what
users leaving the OD API pick. Both models are built from random weights
(nothing is downloaded) with one set of numbers, taken from the ResNet-50-FPN
config tfmask translates and written into torchvision's constructor:

* inference on 512x384 photos at 512 px longer side (torchvision ``min_size``
  384 / ``max_size`` 512), 1,000 test proposals (RPN
  pre-NMS top-k per level and post-NMS; tfmask's combined NMS kernel considers
  every anchor of a level, so it does no less work than a top-k first), NMS
  thresholds, 100 detections that
  all go through the mask head (score threshold 0 on both: torchvision's
  ``box_score_thresh=0``), masks pasted onto the image on both
  (``--full_image_masks``); latency at batch 1 and 4, outputs fetched;
* the steady-state training step at 640 px, batch 1, on one synthesized
  record held in memory (input excluded on both): 512 sampled ROIs, RPN
  minibatch 256, train proposals, SGD with momentum;
* the frame: torchvision computes on the resized photo (640x480 when
  training), tfmask on a frame of fixed size, a multiple of ``2**max_level``.
  The rows with targets use the smallest such frame that holds the resized
  photo (:func:`fitted_frame`: 384x512 for inference, 512x640 for training,
  what ``fixed_shape_resizer`` of that size gives a user with 4:3 photos); two
  more rows (full mode) give the config's square ``pad_to_max_dimension``
  frame, a quarter of it padding here;
* the box head of both is 2 fully connected layers of 1024 (torchvision's
  ``TwoMLPHead``; Model Garden ``detection_head`` ``num_convs 0, num_fcs 2,
  fc_dims 1024``, the OD API's ResNet-FPN box classifier), mask head 4 convs of
  256 + deconv to 28x28 on 14x14 ROI features on both; the same class count.

Both use every CPU this process may run on (``torch.set_num_threads``;
TensorFlow's default pools). torchvision runs in its own process
(:mod:`tfmask.bench.peers_torchvision`) so the two libraries' thread pools
never meet. tfmask's side is the SavedModel that
``tfmask export`` writes (:class:`~tfmask.export.serving.DetectionServing`, rewritten
for serving as the export rewrites it: :mod:`tfmask.export.rewrites`), reloaded;
bfloat16 rows (tfmask's bfloat16 export and ``--mixed_precision
bfloat16`` training vs torchvision's CPU autocast) are measured only where the
CPU has native bfloat16. There, two more things are measured for best against best
(:mod:`tfmask.bench.peers_accuracy`): what the bfloat16 export costs in mask AP (the
demo's model trained on the bundled sample, float32 vs bfloat16 exports, the issue's bar
1 point), and the bfloat16 SavedModel at 300 of the 1,000 test proposals (the OD API
Mask R-CNN configs' own count; a row of its own, beside the identical settings, with its
AP cost). Ratios are
torchvision / tfmask (> 1: tfmask faster). ``--quick`` (the test suite's)
measures the same things at 128 px with few proposals, ROIs and detections,
batch 2 in place of 4, one timed run or step after one warm-up. Run::

    python -m tfmask.bench.common peers /tmp/bench out.json [--quick]
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import List

import numpy as np

from tfmask import engine_private
from tfmask.bench.common import Section, Timer
from tfmask.bench.peers_accuracy import PROPOSAL_FRACTION, accuracy_rows, fast_path_accuracy
from tfmask.bench.peers_rows import med as _med, timing_rows
from tfmask.bench.peers_torchvision import batch_runs, run_torchvision, timed

ROOT = Path(__file__).resolve().parents[2]
R50_CONFIG = ROOT / "configs" / "mask_rcnn_resnet50_fpn_640x640.config"
FAITHFUL_HEAD = {"num_convs": 0, "num_fcs": 2, "fc_dims": 1024}


def _settings(quick: bool) -> dict:
    """Quick: small images and counts, batch 2 for 4 (checks the section runs and gives real
    figures; tracing dominates). Full: ~12 min. ``runs_b<N>``: timed runs at batch N;
    ``train_proposals``/``sampled_rois`` (quick only) replace the config's training RPN
    proposals (pre- and post-NMS) and sampled ROIs."""
    if quick:
        return {"image_hw": [96, 128], "infer_size": 128, "train_size": 128,
                "test_proposals": 100, "detections": 10, "train_proposals": 100,
                "sampled_rois": 128, "runs_b1": 1, "runs_b2": 1,
                "warmup": 1, "train_warmup": 1, "train_steps": 1}
    return {"image_hw": [384, 512], "infer_size": 512, "train_size": 640,
            "test_proposals": 1000, "detections": 100, "runs_b1": 8, "runs_b4": 3,
            "warmup": 1, "train_warmup": 2, "train_steps": 6}


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _records(work_dir: Path, image_hw) -> Path:
    from tfmask.data.convert import ConvertConfig, convert
    from tfmask.data.synth import synthesize

    records = work_dir / "records"
    if not (records / "label_map.pbtxt").exists():
        synthesize(work_dir / "data", num_train=6, num_test=4, size_hw=tuple(image_hw),
                   seed=5, min_objects=1, max_objects=4, overwrite=True)
        convert(ConvertConfig(data_dir=str(work_dir / "data"), output_dir=str(records),
                              instance_mode="box", val_fraction=0.34, progress=False))
    return records


def fitted_frame(image_hw, size: int, stride: int) -> List[int]:
    """[h, w]: the smallest frame in multiples of ``stride`` holding an ``image_hw`` photo
    scaled so that its longer side is ``size`` (what torchvision computes on, padded to
    Model Garden's ``2**max_level``): 512x384 at 512 px -> [384, 512]; at 640 -> [512, 640]."""
    scale = size / max(image_hw)
    return [int(math.ceil(round(side * scale) / stride) * stride) for side in image_hw]


def _experiment(work_dir: Path, records: Path, size: int, cfg: dict, name: str,
                frame: str = "fitted"):
    """tfmask's experiment for the R50-FPN config at ``size`` px with the section's head,
    proposal and detection counts. ``frame``: ``square`` keeps the config's
    ``size`` x ``size`` (``pad_to_max_dimension``), ``fitted`` uses :func:`fitted_frame`
    of the section's photos (as ``fixed_shape_resizer`` of that size would)."""
    from tfmask.config import edit, experiment
    from tfmask.config.label_map import read_label_map
    from tfmask.config.textproto import read_text_file, write_text_file

    msg = read_text_file(R50_CONFIG)
    edit.point_at_records(msg, records)
    edit.set_num_classes(msg, len(read_label_map(records / "label_map.pbtxt",
                                                 pixel_suffix=False).classes))
    edit.set_image_size(msg, size)
    edit.set_batch_size(msg, 1)
    path = work_dir / f"{name}.config"
    write_text_file(path, msg, header=f"tfmask bench (peers): {R50_CONFIG.name} at {size} px")
    exp = experiment.from_pipeline_config(path)
    model = exp.params.task.model
    model.detection_head.override(FAITHFUL_HEAD)
    model.roi_generator.test_num_proposals = cfg["test_proposals"]
    model.roi_generator.test_pre_nms_top_k = cfg["test_proposals"]
    model.detection_generator.pre_nms_score_threshold = 0.0  # every detection is masked
    model.detection_generator.max_num_detections = cfg["detections"]
    if "train_proposals" in cfg:
        model.roi_generator.pre_nms_top_k = cfg["train_proposals"]
        model.roi_generator.num_proposals = cfg["train_proposals"]
    if "sampled_rois" in cfg:
        model.roi_sampler.num_sampled_rois = cfg["sampled_rois"]
    if frame == "fitted":
        model.input_size = [*fitted_frame(cfg["image_hw"], size, 2 ** model.max_level), 3]
    return exp


def torchvision_settings(params, cfg: dict) -> dict:
    """The constructor arguments that give torchvision tfmask's numbers."""
    m = params.task.model
    rg, rs = m.roi_generator, m.roi_sampler
    h, w = cfg["image_hw"]
    return {
        "num_classes": int(m.num_classes),  # both count the background
        "rpn_pre_nms_top_n_test": int(rg.test_pre_nms_top_k),
        "rpn_post_nms_top_n_test": int(rg.test_num_proposals),
        "rpn_pre_nms_top_n_train": int(rg.pre_nms_top_k),
        "rpn_post_nms_top_n_train": int(rg.num_proposals),
        "rpn_nms_thresh": float(rg.test_nms_iou_threshold),
        "rpn_batch_size_per_image": int(params.task.train_data.parser.rpn_batch_size_per_im),
        "rpn_positive_fraction": float(params.task.train_data.parser.rpn_fg_fraction),
        "box_batch_size_per_image": int(rs.num_sampled_rois),
        "box_positive_fraction": float(rs.foreground_fraction),
        "box_nms_thresh": float(m.detection_generator.nms_iou_threshold),
        "box_detections_per_img": int(m.detection_generator.max_num_detections),
        "box_score_thresh": 0.0,
        "infer_min_max_size": [cfg["infer_size"] * min(h, w) // max(h, w), cfg["infer_size"]],
        "train_min_max_size": [cfg["train_size"] * min(h, w) // max(h, w), cfg["train_size"]],
    }


def _images(records_dir: Path, count: int) -> List[np.ndarray]:
    from tfmask.inference.predictor import read_image

    paths = sorted((records_dir.parent / "data" / "test_images").iterdir())
    return [read_image(paths[i % len(paths)]) for i in range(count)]


def _tfmask_inference(exp, work_dir: Path, images, cfg: dict, precision: str) -> dict:
    """Latency of the reloaded SavedModel (tfmask export's module) at each batch size, ms."""
    import tensorflow as tf
    import tf_keras

    import tfmask.training.task  # noqa: F401  registers tfmask's backbones
    from tfmask.export.exporter import _DYNAMIC_BATCH_NMS
    from tfmask.export.precision import compute_policy
    from tfmask.export.rewrites import rewrite_for_serving
    from tfmask.export.serving import DetectionServing, Preprocessing, detect
    from tfmask.modeling import factory  # as tfmask export builds it

    params = exp.params
    generator = params.task.model.detection_generator
    if generator.nms_version not in _DYNAMIC_BATCH_NMS:  # as tfmask export does
        generator.nms_version = "batched"
    prep = Preprocessing.from_model_config(params.task.model)
    tf_keras.utils.set_random_seed(0)
    # Model Garden's heads make their layers on the first call, so it runs under the
    # policy too (as tfmask export's restore_model does): else they compute in float32.
    with compute_policy(precision):
        model = factory.build_maskrcnn(
            input_specs=tf_keras.layers.InputSpec(shape=[None, *prep.padded_hw, 3]),
            model_config=params.task.model)
        detect(model, prep, tf.zeros([1, *prep.padded_hw, 3], tf.uint8))
    rewrite_for_serving(model, prep)  # as tfmask export does
    module = DetectionServing(model, prep, "image_tensor", full_image_masks=True)
    out_dir = work_dir / f"saved_model_{precision}"
    tf.saved_model.save(module, str(out_dir),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    serve = tf.saved_model.load(str(out_dir)).signatures["serving_default"]
    result = {}
    for batch, runs in batch_runs(cfg):
        inputs = tf.constant(np.stack(images[:batch]))
        counts = []

        def once():
            out = {k: v.numpy() for k, v in serve(input_tensor=inputs).items()}
            counts.append(float(out["num_detections"].mean()))
        times = timed(once, runs, cfg["warmup"])
        result[f"b{batch}_ms"] = [round(1000 * t, 1) for t in times]
        result[f"b{batch}_detections"] = counts[-1]
    return result


def _tfmask_training(exp, cfg: dict, precision: str = "float32") -> List[float]:
    """Seconds per steady-state ``trainer.train(1)`` on one cached batch (tfmask's task,
    Model Garden's trainer, as ``tfmask train`` builds them); ``precision`` ``bfloat16``
    is ``tfmask train --mixed_precision bfloat16`` (Keras' mixed policy)."""
    import tensorflow as tf
    from official.core import task_factory, train_utils

    from tfmask.config.experiment import RunOptions, apply_options
    from tfmask.export.precision import compute_policy
    from tfmask.training import distribute

    steps = cfg["train_warmup"] + cfg["train_steps"]
    apply_options(exp, RunOptions(num_train_steps=steps + 1, checkpoint_every_n=steps + 1,
                                  mixed_precision=precision))
    params = exp.params
    times = []
    with compute_policy(precision):  # as tfmask train sets it for the run
        strategy = distribute.create_strategy(params)
        with strategy.scope():
            task = task_factory.get_task(params.task)
            trainer = train_utils.create_trainer(params, task, train=True, evaluate=False,
                                                 checkpoint_exporter=None)
        batch = next(iter(task.build_inputs(params.task.train_data)))
        cached = trainer.distribute_dataset(tf.data.Dataset.from_tensors(batch).repeat())
        engine_private.set_train_iterator(trainer, iter(cached))
        one = tf.constant(1, tf.int32)
        with strategy.scope():
            for i in range(steps):
                start = time.perf_counter()
                trainer.train(one)
                trainer.global_step.numpy()  # the step is done
                if i >= cfg["train_warmup"]:
                    times.append(time.perf_counter() - start)
    return times


def _train_example(records: Path, work_dir: Path) -> dict:
    """The first training record as arrays torchvision reads (image, xyxy px boxes, masks)."""
    from tfmask.data.records.reader import read_examples

    example = next(read_examples(str(records / "train-?????-of-?????")))
    np.save(work_dir / "train_image.npy", example.image())
    np.save(work_dir / "train_masks.npy", np.asarray(example.masks, np.uint8))
    return {"image": str(work_dir / "train_image.npy"),
            "masks": str(work_dir / "train_masks.npy"),
            "boxes_xyxy_px": example.boxes_xyxy_px.tolist(),
            "labels": [int(c) for c in example.class_ids]}


# --- the section --------------------------------------------------------------------------

def run(work_dir: Path, quick: bool) -> Section:
    """The section (see the module docstring)."""
    from tfmask import cpu_features

    cfg = _settings(quick)
    threads = cpu_threads()
    bf16 = cpu_features.has_native_bfloat16()
    section = Section("peers", details={"settings": cfg, "threads": threads,
                                        "cpu": cpu_features.describe(),
                                        "box_head": dict(FAITHFUL_HEAD)})
    records = _records(work_dir, cfg["image_hw"])
    images = _images(records, max(batch for batch, _ in batch_runs(cfg)))
    infer_exp = _experiment(work_dir, records, cfg["infer_size"], cfg, "r50_infer")
    tv = torchvision_settings(infer_exp.params, cfg)
    section.details["torchvision_arguments"] = tv
    frames = section.details["frame_hw"] = {
        "square": "the config's pad_to_max_dimension frame, size x size"}
    spec = _torchvision_spec(work_dir, records, images, cfg, tv, threads, bf16)
    phases = section.details.setdefault("phase_s", {})
    with Timer() as t:
        theirs = run_torchvision(spec, work_dir)
    phases["torchvision"] = round(t.seconds, 1)
    precisions = ["float32"] + (["bfloat16"] if bf16 else [])
    if not bf16:
        section.details["bfloat16"] = (f"not measured: {cpu_features.describe()} has no native "
                                       "bfloat16 (tfmask refuses it there; torch would emulate)")
    ours, train_s = {}, {}
    for precision in precisions:
        with Timer() as t:
            exp = _experiment(work_dir, records, cfg["infer_size"], cfg, f"r50_infer_{precision}")
            frames["inference"] = list(exp.params.task.model.input_size[:2])
            ours[precision] = _tfmask_inference(exp, work_dir, images, cfg, precision)
        phases[f"tfmask_inference_{precision}"] = round(t.seconds, 1)
        with Timer() as t:
            exp = _experiment(work_dir, records, cfg["train_size"], cfg, f"r50_train_{precision}")
            frames["training"] = list(exp.params.task.model.input_size[:2])
            train_s[precision] = _tfmask_training(exp, cfg, precision)
        phases[f"tfmask_training_{precision}"] = round(t.seconds, 1)
    fewer, accuracy = _faster_paths(work_dir, records, images, cfg, quick, bf16, phases)
    square = {}
    if not quick:  # what the padding of the config's square frame costs (quick: the same frame)
        with Timer() as t:
            exp = _experiment(work_dir, records, cfg["infer_size"], cfg, "r50_infer_square",
                              frame="square")
            square["inference_b1_ms"] = _tfmask_inference(
                exp, work_dir, images, {k: v for k, v in cfg.items()
                                        if not k.startswith("runs_b") or k == "runs_b1"},
                "float32")["b1_ms"]
            exp = _experiment(work_dir, records, cfg["train_size"], cfg, "r50_train_square",
                              frame="square")
            square["train_step_s"] = _tfmask_training(exp, cfg)
        phases["tfmask_square_frame"] = round(t.seconds, 1)
    section.details.update(
        tfmask={"inference": ours, "train_step_s": [round(t, 4) for t in train_s["float32"]],
                "bfloat16_train_step_s": [round(t, 4) for t in train_s.get("bfloat16", [])],
                "square_frame": square, "fewer_proposals": fewer},
        torchvision=theirs, accuracy=accuracy)
    section.rows.extend(timing_rows(cfg, tv, threads, bf16, ours, train_s, theirs, square))
    if bf16:
        section.rows.extend(accuracy_rows(
            accuracy, fewer["b1_ms"], _med(theirs["bfloat16_b1_ms"]),
            "torchvision's fastest (bfloat16)", fewer["test_proposals"],
            cfg["test_proposals"]))
    return section


def _faster_paths(work_dir: Path, records: Path, images, cfg: dict, quick: bool, bf16: bool,
                  phases: dict):
    """Where the CPU has native bfloat16: batch-1 latency of the bfloat16 SavedModel at
    ``PROPOSAL_FRACTION`` of the test proposals, and the AP check of the faster paths
    (:mod:`tfmask.bench.peers_accuracy`). ({}, {}) without it."""
    if not bf16:
        return {}, {}
    b1 = {k: v for k, v in cfg.items() if not k.startswith("runs_b") or k == "runs_b1"}
    count = math.ceil(cfg["test_proposals"] * PROPOSAL_FRACTION)
    with Timer() as t:
        exp = _experiment(work_dir, records, cfg["infer_size"], {**b1, "test_proposals": count},
                          "r50_infer_fewer_proposals")
        fewer = _tfmask_inference(exp, work_dir, images, b1, "bfloat16")
    phases["tfmask_inference_fewer_proposals"] = round(t.seconds, 1)
    with Timer() as t:
        (work_dir / "accuracy").mkdir(exist_ok=True)
        accuracy = fast_path_accuracy(work_dir / "accuracy", quick, bfloat16=True)
    phases["accuracy"] = round(t.seconds, 1)
    return {"test_proposals": count, "b1_ms": fewer["b1_ms"]}, accuracy


def _torchvision_spec(work_dir: Path, records: Path, images, cfg: dict, tv: dict,
                      threads: int, bf16: bool) -> dict:
    """What :func:`~tfmask.bench.peers_torchvision.torchvision_worker` reads; the images
    and the training example are written as .npy files beside it."""
    for i, image in enumerate(images):
        np.save(work_dir / f"image_{i}.npy", image)
    return {"settings": cfg, "torchvision": tv, "threads": threads, "bfloat16": bf16,
            "images": [str(work_dir / f"image_{i}.npy") for i in range(len(images))],
            "train_example": _train_example(records, work_dir)}
