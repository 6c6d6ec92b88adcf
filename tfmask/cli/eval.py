"""``tfmask eval``: COCO box and mask AP of detections against ground truth.

Ground truth is TFRecords (categories from ``label_map.pbtxt`` beside them, or
``--label-map``) or a COCO JSON such as ``tfmask tfrecord --coco-json-out``
writes. Detections are a COCO results JSON such as ``tfmask infer`` writes, or
``--export-dir EXPORT_DIR`` (or ``--model``) runs an exported model on the ground-truth records' own
images first. Writes ``OUT/metrics.json`` and
``OUT/pr_curves/{bbox,segm}_<class>.png``. Examples::

    tfmask eval --gt 'dataset/records/val-*' --detections out/infer/detections.json \\
        --output out/eval --iou-range 0.5:0.8
    tfmask eval --gt 'dataset/records/val-*' --export-dir out/demo/export --output out/eval
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("eval", help="COCO box and mask AP of detections",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, metavar="RECORDS_OR_JSON",
                   help="ground truth: record files (a glob, quote it, or a comma-separated "
                   "list) or a COCO ground-truth .json")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--detections", metavar="JSON",
                      help="COCO results JSON (e.g. OUT/detections.json of tfmask infer)")
    what.add_argument("--export-dir", "--model", dest="export_dir", metavar="EXPORT_DIR",
                      help="a tfmask export: run it on the images of the --gt records")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="folder for metrics.json and pr_curves/")
    p.add_argument("--label-map", dest="label_map_path", metavar="PATH",
                   help="record ground truth: default label_map.pbtxt beside the records")
    p.add_argument("--iou-range", default="0.5:0.95", metavar="START:END[:STEP]",
                   help="IoU thresholds of the extra mAP, multiples of 0.05 unless a step "
                   "is given (default: %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.evaluation.outputs import format_table, write_eval_outputs
    from tfmask.errors import ConfigError
    from tfmask.evaluation.coco_eval import evaluate_files, evaluate_model_on_records, parse_iou_range

    lo, hi, step = parse_iou_range(args.iou_range)
    if args.export_dir:
        if args.gt.lower().endswith(".json"):
            raise ConfigError("--export-dir runs the export on the images inside records; give "
                              "--gt records (a COCO JSON holds no images) or use --detections")
        result = evaluate_model_on_records(args.export_dir, args.gt, args.label_map_path, (lo, hi),
                                           step, progress=True)
    else:
        result = evaluate_files(args.gt, args.detections, args.label_map_path, (lo, hi), step)
    outputs = write_eval_outputs(result, args.output)
    print(format_table(result))
    print(f"wrote {outputs.metrics_json} and {len(outputs.pr_curves)} PR curve(s) in "
          f"{outputs.metrics_json.parent / 'pr_curves'}/")
    return 0
