"""``tfmask train``: the OD API's model_main_tf2.py, on TF Model Garden.

    tfmask train --pipeline-config-path configs/mask_rcnn_tiny_cpu.config \\
        --model-dir runs/tiny --num-train-steps 300

model_main_tf2.py's spellings (--pipeline_config_path, --model_dir,
--num_train_steps, --checkpoint_dir, ...) are accepted as well. Passing
``--checkpoint-dir C`` evaluates the newest checkpoint of C instead
(COCO box and mask AP on the eval records), as in the OD API.
"""

from __future__ import annotations

import argparse

from tfmask.cli.flags import od_api_flag
from tfmask.config.experiment import PRECISIONS, STRATEGIES


def register(sub) -> None:
    p = sub.add_parser("train", help="train Mask R-CNN from a pipeline.config (or evaluate)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    od_api_flag(src, "pipeline_config_path", help="OD API pipeline.config")
    od_api_flag(src, "experiment_config", help="Model Garden YAML experiment (power users)")
    od_api_flag(p, "params_override", default="",
                help="with --experiment_config: 'a.b=1,c.d=x' or YAML text")
    od_api_flag(p, "model_dir", required=True, help="checkpoints, summaries, params.yaml")
    od_api_flag(p, "num_train_steps", type=int, help="default: the config's num_steps")
    od_api_flag(p, "checkpoint_every_n", type=int, help="steps between checkpoints "
                "(default 1000, or the run length if shorter)")
    od_api_flag(p, "keep_checkpoints", type=int, default=5, help="default: %(default)s")
    od_api_flag(p, "checkpoint_dir", help="evaluate the newest checkpoint here instead "
                "of training; metrics go to MODEL_DIR/metrics.json")
    od_api_flag(p, "eval_on_train_data", action="store_true")
    od_api_flag(p, "sample_1_of_n_eval_examples", type=int, default=1,
                help="evaluate on the first 1/N of the eval records")
    od_api_flag(p, "strict", action="store_true",
                help="fail on pipeline.config fields that are not honoured, and when "
                "max_total_detections is below the objects of the densest image")
    od_api_flag(p, "distribution_strategy", choices=STRATEGIES, default="one_device")
    od_api_flag(p, "num_gpus", type=int, default=0)
    od_api_flag(p, "mixed_precision", choices=PRECISIONS, default="float32",
                help="float16 or bfloat16 on a GPU; bfloat16 also on a CPU with "
                "avx512_bf16 or AMX (refused on other CPUs)")
    od_api_flag(p, "xla", action="store_true", help="GPU only: compile with XLA")
    od_api_flag(p, "log_every", type=int, default=1, help="progress line every N steps")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.training import loop
    from tfmask.config import experiment

    if args.pipeline_config_path:
        exp = experiment.from_pipeline_config(args.pipeline_config_path, strict=args.strict)
    else:
        exp = experiment.from_yaml(args.experiment_config, args.params_override)
    opts = experiment.RunOptions(
        num_train_steps=args.num_train_steps, checkpoint_every_n=args.checkpoint_every_n,
        keep_checkpoints=args.keep_checkpoints,
        distribution_strategy=args.distribution_strategy, num_gpus=args.num_gpus,
        mixed_precision=args.mixed_precision, xla=args.xla,
        eval_on_train_data=args.eval_on_train_data,
        sample_1_of_n_eval_examples=args.sample_1_of_n_eval_examples)
    if args.checkpoint_dir:
        metrics = loop.evaluate(exp, args.checkpoint_dir, args.model_dir, opts)
        print(_format_metrics(metrics))
        return 0
    result = loop.train(exp, args.model_dir, opts, log_every=args.log_every, strict=args.strict)
    print(f"done at step {result.step}; model dir {result.model_dir}")
    if result.metrics:
        print(_format_metrics(result.metrics))
    return 0


def _format_metrics(metrics) -> str:
    keys = [k for k in ("AP", "AP50", "AP75", "mask_AP", "mask_AP50", "mask_AP75")
            if k in metrics]
    return "eval: " + "  ".join(f"{k} {metrics[k]:.3f}" for k in keys)
