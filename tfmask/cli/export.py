"""``tfmask export``: a trained checkpoint -> SavedModel, as the OD API's exporter_main_v2.py.

    tfmask export --pipeline-config-path configs/mask_rcnn_tiny_cpu.config \\
        --trained-checkpoint-dir runs/tiny --export-dir exported/tiny

The OD API's spellings (--pipeline_config_path, --trained_checkpoint_dir,
--output_directory, --input_type, --min_score, ...) are accepted as well.

Writes OUT/saved_model (signature serving_default, the OD API's inputs and
outputs, boxes normalized to the input image), OUT/checkpoint/ckpt-0,
OUT/pipeline.config, OUT/label_map.pbtxt and OUT/export.json (the format).
The reloaded SavedModel is checked against the in-memory model before OUT is
replaced. --format onnx (OUT/onnx/model.onnx, ONNX Runtime) or openvino
(OUT/openvino/model.xml, OpenVINO) also converts the SavedModel and checks the
converted model against it; tfmask infer, tfmask eval and Predictor run the
format the export records. Those two need `pip install 'tfmask[runtimes]'`.
"""

from __future__ import annotations

import argparse

from tfmask.cli.flags import od_api_flag
from tfmask.export.formats import DEFAULT_FORMAT, FORMATS
from tfmask.export.precision import EXPORT_PRECISIONS
from tfmask.export.signature import INPUT_TYPES


def register(sub) -> None:
    p = sub.add_parser("export", help="export a trained checkpoint as a SavedModel",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    od_api_flag(p, "pipeline_config_path", required=True, help="the training pipeline.config")
    od_api_flag(p, "trained_checkpoint_dir", required=True,
                help="folder with the checkpoint (the newest is exported), e.g. the "
                "training --model-dir")
    p.add_argument("--export-dir", "--output_directory", dest="export_dir", required=True,
                   help="export folder (the OD API's --output_directory)")
    od_api_flag(p, "input_type", choices=INPUT_TYPES, default="image_tensor",
                help="signature input (default: %(default)s)")
    od_api_flag(p, "full_image_masks", action="store_true",
                help="also output detection_masks_reframed: 0/1 masks on the input image")
    od_api_flag(p, "min_score", type=float, default=0.0,
                help="drop detections scoring below this from the outputs; the mask head "
                "runs only on the rest, so a higher value is faster on CPU (default: "
                "%(default)s, keep what the config's second_stage_post_processing keeps)")
    od_api_flag(p, "mixed_precision", choices=EXPORT_PRECISIONS, default="float32",
                help="compute precision of the exported graph: bfloat16 needs a GPU or a "
                "CPU with avx512_bf16/AMX (outputs stay float32; default: %(default)s)")
    p.add_argument("--format", choices=FORMATS, default=DEFAULT_FORMAT,
                   help="savedmodel (TensorFlow), onnx (ONNX Runtime) or openvino: the "
                   "last two convert the SavedModel and check the copy against it, "
                   "image_tensor/float_image_tensor input, float32 (default: %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.export.exporter import export_model
    from tfmask.export.convert import UNPAIRED_SHARE

    result = export_model(args.pipeline_config_path, args.trained_checkpoint_dir,
                          args.export_dir, input_type=args.input_type,
                          full_image_masks=args.full_image_masks, min_score=args.min_score,
                          say=print, mixed_precision=args.mixed_precision,
                          format=args.format)
    print(f"exported {result.source_checkpoint} to {result.export_dir}/ in "
          f"{result.seconds:.1f} s")
    print(f"  saved model:  {result.saved_model_dir}  (signature serving_default)")
    for name, spec in result.inputs.items():
        print(f"    input  {name}: {spec}")
    for name, spec in result.outputs.items():
        print(f"    output {name}: {spec}")
    if result.mixed_precision != "float32":
        print(f"    computes in {result.mixed_precision} (outputs float32)")
    if result.min_score > 0:
        print(f"    detections scoring below {result.min_score:g} are dropped")
    print(f"  checkpoint:   {result.checkpoint_path}")
    print(f"  config:       {result.pipeline_config}")
    print(f"  label map:    {result.label_map}")
    if result.format != DEFAULT_FORMAT:
        print(f"  {result.format + ':':<13} {result.model_path}")
    worst = max(result.max_abs_diff.values(), default=0.0)
    print(f"  verified: the reloaded SavedModel matches the model (max |diff| {worst:.2g})")
    if result.format != DEFAULT_FORMAT:
        worst = max(result.converted_max_abs_diff.values(), default=0.0)
        print(f"  verified: the {result.format} model matches the SavedModel (max |diff| "
              f"{worst:.2g}; tolerance {result.converted_tolerance['boxes_scores']:g}, "
              f"masks {result.converted_tolerance['masks']:g})")
        if result.converted_unpaired:
            print(f"  {result.converted_unpaired} detection(s) of a check image had no "
                  "partner (proposals that tie within rounding go either way; allowed up "
                  f"to {UNPAIRED_SHARE:.0%} of an image's)")
    return 0
