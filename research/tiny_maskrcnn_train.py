#!/usr/bin/env python
"""Research prototype: a tiny CPU Mask R-CNN run with TF Model Garden.

What it does, end to end (each stage can be skipped with a flag):

1. records  -- synthesizes N 128x128 PNG images with coloured shapes on noise
               (class 1 rectangle, 2 ellipse, 3 triangle) and writes them as
               OD-API-schema TFRecords with ``tfmask.records.build_example``
               (the project's own writer); or uses ``--records GLOB``.
2. config   -- builds the Model Garden experiment config programmatically from
               ``exp_factory.get_exp_config('maskrcnn_resnetfpn_coco')`` with
               a tiny CPU setting, validates it and dumps it as YAML.
3. train    -- ``official.core.train_lib.run_experiment(mode='train',
               run_post_eval=True)`` with ``steps_per_loop=1`` and an Orbit
               train action that logs every step's losses and wall time.
4. eval     -- the post-train eval of run_experiment (COCO box + mask AP with
               ground truth from the records only; no annotation file given).
5. export   -- ``export_saved_model_lib.export_inference_graph`` with
               ``input_type='image_tensor'``, reload, run on one image, time it.

Everything (records, model_dir, export, params.yaml, results.json) goes under
``--work-dir`` (default /tmp/tiny_maskrcnn), which is wiped first unless
``--keep``.

Usage:
  .venv/bin/python research/tiny_maskrcnn_train.py                # all stages
  .venv/bin/python research/tiny_maskrcnn_train.py --steps 60 --backbone-id 10
  .venv/bin/python research/tiny_maskrcnn_train.py --records 'dataset/records/train-*'
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import math
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repo root, for `tfmask`


# --------------------------------------------------------------------------
# 1. Synthetic records
# --------------------------------------------------------------------------
CLASS_NAMES = {1: "rectangle", 2: "ellipse", 3: "triangle"}
CLASS_COLOURS = {1: (220, 40, 40), 2: (40, 200, 40), 3: (50, 60, 230)}


def _shape_mask(cls: int, size: int, rng: np.random.Generator, hw=(128, 128)):
    """[H, W] bool mask of one shape of class `cls`, bounding box ~size px."""
    h, w = hw
    sh = int(rng.integers(max(10, size // 2), size + 1))
    sw = int(rng.integers(max(10, size // 2), size + 1))
    y0 = int(rng.integers(0, h - sh))
    x0 = int(rng.integers(0, w - sw))
    yy, xx = np.mgrid[0:h, 0:w]
    if cls == 1:
        m = (yy >= y0) & (yy < y0 + sh) & (xx >= x0) & (xx < x0 + sw)
    elif cls == 2:
        cy, cx, ry, rx = y0 + sh / 2, x0 + sw / 2, sh / 2, sw / 2
        m = ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1.0
    else:  # isosceles triangle, apex up
        t = (yy - y0 + 0.5) / sh  # 0 at apex row .. 1 at base row
        half = t * sw / 2
        cx = x0 + sw / 2
        m = (yy >= y0) & (yy < y0 + sh) & (np.abs(xx + 0.5 - cx) <= half)
    return m


def synth_samples(num_images: int, seed: int = 0, hw=(128, 128)):
    """Yields (image uint8 [H,W,3], masks [N,H,W] bool, class_ids [N])."""
    rng = np.random.default_rng(seed)
    for _ in range(num_images):
        img = rng.integers(60, 160, size=(*hw, 3), dtype=np.int16)
        occupied = np.zeros(hw, bool)
        masks, ids = [], []
        for _ in range(int(rng.integers(1, 4))):
            cls = int(rng.integers(1, 4))
            for _try in range(20):  # rejection-sample non-overlapping shapes
                m = _shape_mask(cls, int(rng.integers(24, 56)), rng, hw)
                if m.sum() >= 40 and not (m & occupied).any():
                    break
            else:
                continue
            occupied |= m
            colour = np.array(CLASS_COLOURS[cls], np.int16)
            img[m] = colour + rng.integers(-20, 21, size=(int(m.sum()), 3))
            masks.append(m)
            ids.append(cls)
        if not masks:  # make sure every image has an object
            m = _shape_mask(1, 40, rng, hw)
            img[m] = np.array(CLASS_COLOURS[1], np.int16)
            masks, ids = [m], [1]
        yield np.clip(img, 0, 255).astype(np.uint8), np.stack(masks), np.array(ids)


def write_synthetic_records(out_dir: str, num_images: int, seed: int = 0) -> str:
    """Writes `num_images` examples into one shard; returns a glob for it."""
    import tensorflow as tf
    from PIL import Image

    from tfmask.annotation import EncodedImage, Instances, Sample, tight_box_xyxy_px
    from tfmask.records import build_example

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "synth-00000-of-00001")
    with tf.io.TFRecordWriter(path) as writer:
        for i, (img, masks, ids) in enumerate(synth_samples(num_images, seed)):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            boxes = np.stack([tight_box_xyxy_px(m) for m in masks])
            sample = Sample(
                image=EncodedImage(buf.getvalue(), "png", img.shape[:2], f"synth_{i:04d}.png"),
                instances=Instances(masks, boxes, ids, [CLASS_NAMES[int(c)] for c in ids]),
                source_id=i + 1,  # decimal string "1", "2", ... in the record
            )
            writer.write(build_example(sample))
    return os.path.join(out_dir, "synth-*")


def count_records(pattern: str) -> int:
    import tensorflow as tf
    files = sorted(glob.glob(pattern))
    return sum(1 for _ in tf.data.TFRecordDataset(files))


# --------------------------------------------------------------------------
# 2. Experiment config
# --------------------------------------------------------------------------
def build_params(args, input_glob: str, num_examples: int):
    from official.core import exp_factory
    import official.vision.configs.maskrcnn  # noqa: F401  (registers experiments)

    params = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco")
    eval_batch = args.batch_size
    params.override({
        "runtime": {
            # The COCO experiment asks for bfloat16 + XLA (TPU settings);
            # on CPU use float32 and no XLA.
            "mixed_precision_dtype": "float32",
            "enable_xla": False,
            "distribution_strategy": "one_device",
            "num_gpus": 0,
        },
        "task": {
            "init_checkpoint": args.init_checkpoint,  # None: from scratch
            "init_checkpoint_modules": args.init_modules,
            "annotation_file": None,            # -> ground truth from records
            "per_category_metrics": args.per_category_metrics,
            "freeze_backbone": args.freeze_backbone,
            "losses": {"l2_weight_decay": 4e-5},
            "model": {
                "num_classes": 4,               # includes background: ids 1..3
                "input_size": [args.size, args.size, 3],
                "min_level": 3,
                "max_level": 5,
                # base anchor = anchor_size * 2**level: 24/48/96 px at 3/4/5
                "anchor": {"anchor_size": 3.0},
                "backbone": {"type": "resnet",
                             "resnet": {"model_id": args.backbone_id}},
                "decoder": {"type": "fpn", "fpn": {"num_filters": 64}},
                "rpn_head": {"num_convs": 1, "num_filters": 64},
                "detection_head": {"num_convs": 0, "num_filters": 64,
                                   "num_fcs": 1, "fc_dims": 256},
                "roi_generator": {"pre_nms_top_k": 512, "num_proposals": 256,
                                  "test_pre_nms_top_k": 512,
                                  "test_num_proposals": 100},
                "roi_sampler": {"num_sampled_rois": 64},
                "mask_head": {"num_convs": 2, "num_filters": 64},
                "mask_sampler": {"num_sampled_masks": 16},
                "detection_generator": {"pre_nms_top_k": 500,
                                        "max_num_detections": 20},
                "norm_activation": {"use_sync_bn": False},
            },
            "train_data": {
                "input_path": input_glob,
                "global_batch_size": args.batch_size,
                "is_training": True,
                "dtype": "float32",             # default is bfloat16
                "shuffle_buffer_size": 64,
                "seed": args.seed,
                "parser": {"aug_rand_hflip": True, "aug_rand_vflip": False,
                           "aug_scale_min": 1.0, "aug_scale_max": 1.0,
                           "max_num_instances": 20},
            },
            "validation_data": {
                "input_path": input_glob,
                "global_batch_size": eval_batch,
                "is_training": False,
                "drop_remainder": False,
                "dtype": "float32",
                # used to scan the records into annotation.json (mask eval)
                "num_examples": num_examples,
                "parser": {"max_num_instances": 20},
            },
        },
        "trainer": {
            "train_steps": args.steps,
            "steps_per_loop": 1,            # one Orbit loop per step -> per-step logs
            "summary_interval": 1,
            "checkpoint_interval": args.steps,
            "max_to_keep": 1,
            "validation_steps": math.ceil(num_examples / eval_batch),
            "validation_interval": args.steps,
            "optimizer_config": {
                "optimizer": {"type": "sgd",
                              "sgd": {"momentum": 0.9, "global_clipnorm": 10.0}},
                "learning_rate": {"type": "constant",
                                  "constant": {"learning_rate": args.lr}},
                "warmup": {"type": "linear",
                           "linear": {"warmup_steps": args.warmup,
                                      "warmup_learning_rate": args.lr / 10}},
            },
        },
    }, is_strict=True)
    params.validate()
    params.lock()
    return params


# --------------------------------------------------------------------------
# 3. Train + 4. eval
# --------------------------------------------------------------------------
class StepLogger:
    """Orbit train action: called after every train loop (= every step here)."""

    def __init__(self, global_step):
        self.global_step = global_step
        self.rows = []
        self._t = time.perf_counter()

    def __call__(self, output):
        now = time.perf_counter()
        row = {"step": int(self.global_step.numpy()), "wall_s": now - self._t}
        for k, v in output.items():
            try:
                row[k] = float(np.asarray(v))
            except (TypeError, ValueError):
                pass
        self.rows.append(row)
        print("step {step:3d}  {wall_s:6.2f}s  total {total_loss:.4f}  "
              "rpn_score {rpn_score_loss:.4f}  rpn_box {rpn_box_loss:.4f}  "
              "frcnn_cls {frcnn_cls_loss:.4f}  frcnn_box {frcnn_box_loss:.4f}  "
              "mask {mask_loss:.4f}  lr {learning_rate:.5f}".format(**row), flush=True)
        self._t = time.perf_counter()


def train_and_eval(params, model_dir: str):
    import tensorflow as tf
    from official.common import distribute_utils
    from official.core import task_factory, train_lib, train_utils
    from official.modeling import performance

    if params.runtime.mixed_precision_dtype:
        performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
    strategy = distribute_utils.get_distribution_strategy(
        distribution_strategy=params.runtime.distribution_strategy,
        num_gpus=params.runtime.num_gpus)
    with strategy.scope():
        # logging_dir matters: with include_mask=True and no annotation_file the
        # task writes <logging_dir>/annotation.json by scanning validation records.
        task = task_factory.get_task(params.task, logging_dir=model_dir)
    train_utils.serialize_config(params, model_dir)  # model_dir/params.yaml

    # Build the trainer ourselves (same as run_experiment does) so the
    # step-logging action can see the global step.
    with strategy.scope():
        trainer = train_utils.create_trainer(
            params, task, train=True, evaluate=True,
            checkpoint_exporter=train_lib.maybe_create_best_ckpt_exporter(params, model_dir))
    logger = StepLogger(trainer.global_step)
    t0 = time.perf_counter()
    model, eval_logs = train_lib.run_experiment(
        distribution_strategy=strategy, task=task, mode="train", params=params,
        model_dir=model_dir, run_post_eval=True, trainer=trainer,
        train_actions=[logger])
    total = time.perf_counter() - t0
    return model, eval_logs, logger.rows, total


# --------------------------------------------------------------------------
# 5. Export
# --------------------------------------------------------------------------
def export_and_run(params, model_dir: str, export_dir: str, image: np.ndarray):
    import tensorflow as tf
    from official.vision.serving import export_saved_model_lib

    t0 = time.perf_counter()
    export_saved_model_lib.export_inference_graph(
        input_type="image_tensor", batch_size=1,
        input_image_size=list(params.task.model.input_size[:2]), params=params,
        checkpoint_path=tf.train.latest_checkpoint(model_dir), export_dir=export_dir)
    export_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    loaded = tf.saved_model.load(export_dir)
    fn = loaded.signatures["serving_default"]
    load_s = time.perf_counter() - t0
    sig_in = {k: (v.shape.as_list(), v.dtype.name)
              for k, v in fn.structured_input_signature[1].items()}
    x = tf.constant(image[None], tf.uint8)
    t0 = time.perf_counter()
    out = fn(inputs=x)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        out = fn(inputs=x)
        _ = out["num_detections"].numpy()
        times.append(time.perf_counter() - t0)
    outputs = {k: {"shape": v.shape.as_list(), "dtype": v.dtype.name}
               for k, v in out.items()}
    n = int(out["num_detections"].numpy()[0])
    sample = {
        "num_detections": n,
        "image_info": out["image_info"].numpy()[0].tolist(),
        "top_scores": out["detection_scores"].numpy()[0][:5].round(4).tolist(),
        "top_classes": out["detection_classes"].numpy()[0][:5].tolist(),
        "top_boxes": out["detection_boxes"].numpy()[0][:3].round(1).tolist(),
        "mask_value_range": [float(out["detection_masks"].numpy().min()),
                             float(out["detection_masks"].numpy().max())],
    }
    return {"export_s": export_s, "load_s": load_s, "first_call_s": first_s,
            "latency_s_median": float(np.median(times)),
            "signature_inputs": sig_in, "outputs": outputs, "sample": sample,
            "signature_keys": list(loaded.signatures.keys())}


# --------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", help="TFRecord glob (default: synthesize)")
    ap.add_argument("--work-dir", default="/tmp/tiny_maskrcnn")
    ap.add_argument("--keep", action="store_true", help="do not wipe --work-dir")
    ap.add_argument("--num-images", type=int, default=16)
    ap.add_argument("--size", type=int, default=128, help="square input size (multiple of 32)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--backbone-id", type=int, default=18, help="ResNet model_id")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-category-metrics", action="store_true")
    ap.add_argument("--freeze-backbone", action="store_true")
    ap.add_argument("--init-checkpoint", default=None,
                    help="checkpoint file/dir to warm-start from (task.init_checkpoint)")
    ap.add_argument("--init-modules", default="all",
                    help="task.init_checkpoint_modules: all | backbone | backbone,decoder")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="absl INFO logging")
    args = ap.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import logging as absl_logging
    import tensorflow as tf
    absl_logging.set_verbosity(absl_logging.INFO if args.verbose else absl_logging.WARNING)
    tf.random.set_seed(args.seed)

    if os.path.exists(args.work_dir) and not args.keep:
        shutil.rmtree(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    model_dir = os.path.join(args.work_dir, "model")
    export_dir = os.path.join(args.work_dir, "export")
    results = {"argv": sys.argv[1:]}

    t0 = time.perf_counter()
    pattern = args.records or write_synthetic_records(
        os.path.join(args.work_dir, "records"), args.num_images, args.seed)
    n = count_records(pattern)
    results["records"] = {"glob": pattern, "num_examples": n,
                          "write_s": time.perf_counter() - t0}
    print(f"records: {pattern} ({n} examples)", flush=True)

    params = build_params(args, pattern, n)
    import yaml
    with open(os.path.join(args.work_dir, "params.yaml"), "w") as f:
        yaml.safe_dump(params.as_dict(), f, sort_keys=False)

    model, eval_logs, rows, total_s = train_and_eval(params, model_dir)
    results["num_params"] = int(model.count_params())
    results["num_trainable_params"] = int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))
    print(f"params: {results['num_params']:,} total, "
          f"{results['num_trainable_params']:,} trainable", flush=True)
    results["train_total_s_incl_eval"] = total_s
    results["steps"] = rows
    walls = [r["wall_s"] for r in rows]
    losses = [r["total_loss"] for r in rows]
    k = min(5, len(losses) // 2) or 1
    results["summary"] = {
        "first_step_s": walls[0],
        "median_step_s_after_warmup": float(np.median(walls[3:] if len(walls) > 3 else walls)),
        "loss_first5_mean": float(np.mean(losses[:k])),
        "loss_last5_mean": float(np.mean(losses[-k:])),
        "loss_went_down": bool(np.mean(losses[-k:]) < np.mean(losses[:k])),
    }
    results["eval"] = {kk: float(np.asarray(v)) for kk, v in eval_logs.items()
                       if np.asarray(v).size == 1}
    print(json.dumps(results["summary"], indent=1))
    print("eval:", json.dumps({kk: round(v, 4) for kk, v in results["eval"].items()}, indent=1))

    if not args.no_export:
        img = next(synth_samples(1, seed=args.seed + 1))[0]
        results["export"] = export_and_run(params, model_dir, export_dir, img)
        print("export:", json.dumps(results["export"], indent=1))

    with open(os.path.join(args.work_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.work_dir}/results.json and params.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
