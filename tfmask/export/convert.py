"""Convert an export's verified SavedModel to ONNX or OpenVINO IR, and check the copy.

``tfmask export --format onnx|openvino`` calls :func:`convert_and_verify` on the
export folder being built, after the SavedModel has been checked against the
in-memory model; the folder is swapped in only when this check passes too::

    tfmask export --format openvino --pipeline-config-path configs/mask_rcnn_tiny_cpu.config \\
        --trained-checkpoint-dir runs/tiny --export-dir exported/tiny_ov

* ``onnx``: tf2onnx freezes the ``serving_default`` signature and converts it
  (default opset); ONNX Runtime runs it. Before converting, the frozen graph's
  ``GatherV2`` ops with ``batch_dims`` and a negative axis get the same axis
  counted from the front (:func:`nonnegative_gather_axes`): Model Garden's mask
  head selects each ROI's class with ``tf.gather(logits, classes, axis=-1,
  batch_dims=2)``, and tf2onnx 1.17's GatherV2 handler builds its Transpose
  permutation from the raw axis (``perm[axis:axis + 1] + ... + perm[axis + 1:]``
  with axis -1), a 9-entry perm that ONNX Runtime refuses ("Attribute perm for
  Transpose has repeated value").
* ``openvino``: ``openvino.convert_model`` on the SavedModel folder, saved with
  float32 weights (``save_model`` would compress them to float16 by default).

The check runs the converted model and the SavedModel on the same images (the
SavedModel check's image and a batch of two at another size) and compares their
outputs as :func:`tfmask.export.verify.compare_outputs` does, detections paired as
sets, within ``TOLERANCE[format]``; up to ``UNPAIRED_SHARE`` of an image's detections may
lack a partner (near-tied proposals), and ``export.json`` records how many did.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np

from tfmask.export.formats import MODEL_PATHS, ExportInfo, require_module
from tfmask.export.verify import NEAR_TIE_SHARE

SIGNATURE = "serving_default"
# Converted vs SavedModel, normalized boxes and scores (masks: at least 1e-3, see
# verify.compare_outputs). Measured on the tiny model: ONNX Runtime 1e-6 (boxes, scores),
# 1e-5 (masks); OpenVINO 1e-7 / 3e-6. Both runtimes use their own convolution
# kernels, so a deep backbone's float32 rounding differs more than the
# SavedModel's from the in-memory model: twice the SavedModel check's 1e-4.
TOLERANCE = {"onnx": 2e-4, "openvino": 2e-4}
# Detections per check image that may have no partner (verify.NEAR_TIE_SHARE): proposals
# whose objectness ties within rounding go either way. Seen with OpenVINO 2026.4 on the
# untrained tiny model (Intel Xeon with AMX): one proposal of 64 swapped, 1-2 of 20
# detections replaced.
UNPAIRED_SHARE = NEAR_TIE_SHARE
SECOND_CHECK_HW = (160, 120)  # portrait, a batch of two: dynamic batch and size


def nonnegative_gather_axes(graph_def):
    """A copy of ``graph_def`` whose batched ``GatherV2`` ops take axis >= 0.

    Each ``GatherV2`` with ``batch_dims`` != 0 whose axis is a negative constant
    gets a new constant ``axis + rank(params)`` (a new node: Grappler shares equal
    constants between ops). The gather computes the same thing; see the module
    docstring for why tf2onnx needs it.
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    fixed = {}
    for op in graph.get_operations():
        if op.type != "GatherV2" or op.get_attr("batch_dims") == 0:
            continue
        axis_op, rank = op.inputs[2].op, op.inputs[0].shape.rank
        if axis_op.type != "Const" or rank is None:
            continue
        axis = int(tf.make_ndarray(axis_op.get_attr("value")))
        if axis < 0:
            fixed[op.name] = axis + rank
    out = type(graph_def)()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.name in fixed:
            const = out.node.add(name=f"{node.name}/nonnegative_axis", op="Const")
            const.attr["dtype"].type = tf.int32.as_datatype_enum
            const.attr["value"].tensor.CopyFrom(
                tf.make_tensor_proto(np.int32(fixed[node.name])))
            node.input[2] = const.name
    return out


def to_onnx(saved_model_dir: Path, out_path: Path) -> Path:
    """``saved_model_dir``'s ``serving_default`` as an ONNX model at ``out_path``;
    input ``input_tensor``, outputs named as the signature's."""
    import tensorflow as tf

    tf2onnx = require_module("onnx", "tf2onnx")
    from tf2onnx import tf_loader

    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures[SIGNATURE]
    inputs = [t.name for t in fn.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in fn.outputs]
    # A signature's outputs are its structured (dict) outputs flattened, in key order.
    names = [spec.name for spec in tf.nest.flatten(fn.structured_outputs)]
    input_names = [spec.name for spec in tf.nest.flatten(fn.structured_input_signature)]
    frozen = nonnegative_gather_axes(tf_loader.from_function(fn, inputs, outputs))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    level = logging.getLogger("tf2onnx").level
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # a line per folded node
    try:
        tf2onnx.convert.from_graph_def(
            frozen, name="tfmask", input_names=inputs, output_names=outputs,
            tensors_to_rename={**dict(zip(inputs, input_names)), **dict(zip(outputs, names))},
            output_path=str(out_path))
    finally:
        logging.getLogger("tf2onnx").setLevel(level)
    return out_path


def to_openvino(saved_model_dir: Path, out_xml: Path) -> Path:
    """``saved_model_dir`` as OpenVINO IR (``out_xml`` and the ``.bin`` beside it)."""
    ov = require_module("openvino", "openvino")
    model = ov.convert_model(str(saved_model_dir))
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out_xml), compress_to_fp16=False)
    return out_xml


_CONVERTERS = {"onnx": to_onnx, "openvino": to_openvino}


def check_inputs(input_type: str) -> Tuple[np.ndarray, ...]:
    """The check batches in ``input_type``'s dtype: [1, 100, 150, 3] and [2, 160, 120, 3]."""
    from tfmask.export.verify import verification_image

    first = verification_image()
    second = verification_image(SECOND_CHECK_HW)
    batches = (first[None], np.stack([second, second[:, ::-1]]))
    dtype = np.float32 if input_type == "float_image_tensor" else np.uint8
    return tuple(b.astype(dtype) for b in batches)


def verify_converted(export_dir: Path, info: ExportInfo) -> Dict[str, float]:
    """Runs the converted model and the SavedModel of ``export_dir`` on the check
    batches; returns the max |difference| per output, and ``"unpaired_detections"``: the
    most detections of one image without a partner (at most ``UNPAIRED_SHARE`` of them).

    Raises:
      ExportVerificationError: an output is missing, has another shape or differs
        by more than ``TOLERANCE[info.format]`` (named).
    """
    from tfmask.export.verify import compare_outputs
    from tfmask.inference.runtimes import open_runtime

    saved = open_runtime(export_dir, fmt="savedmodel", info=info)
    converted = open_runtime(export_dir, info=info)
    label = {"onnx": "the ONNX model", "openvino": "the OpenVINO model"}[info.format]
    diffs: Dict[str, float] = {}
    for batch in check_inputs(info.input_type):
        got = compare_outputs(saved.run(batch), converted.run(batch), TOLERANCE[info.format],
                              names=("the SavedModel", label), unpaired_share=UNPAIRED_SHARE)
        for name, diff in got.items():
            diffs[name] = max(diff, diffs.get(name, 0.0))
    return diffs


def convert_and_verify(export_dir: Path, info: ExportInfo,
                       say: Callable[[str], None] = lambda s: None) -> ExportInfo:
    """Converts ``export_dir/saved_model`` to ``info.format`` and checks the result.

    Returns ``info`` with ``model``, ``tolerance`` and ``max_abs_diff`` filled in
    (the caller writes it as ``export.json``).
    """
    start = time.perf_counter()
    say(f"converting the SavedModel to {info.format}")
    path = _CONVERTERS[info.format](export_dir / MODEL_PATHS["savedmodel"],
                                    export_dir / MODEL_PATHS[info.format])
    say(f"checking the {info.format} model against the SavedModel "
        f"(converted in {time.perf_counter() - start:.0f} s)")
    info.model = path.relative_to(export_dir).as_posix()
    info.tolerance = {"boxes_scores": TOLERANCE[info.format],
                      "masks": max(TOLERANCE[info.format], 1e-3)}
    diffs = verify_converted(export_dir, info)
    info.unpaired_detections = int(diffs.pop("unpaired_detections", 0))
    info.max_abs_diff = diffs
    return info


def write_export_info(export_dir: Path, fmt: str, input_type: str, min_score: float,
                      outputs: Dict[str, str],
                      say: Callable[[str], None] = lambda s: None) -> ExportInfo:
    """Converts the verified SavedModel in ``export_dir`` to ``fmt`` (checking it;
    nothing to do for ``savedmodel``) and writes ``export_dir/export.json``.

    ``outputs``: the signature's output name -> ``"dtype [shape]"``.
    """
    info = ExportInfo(format=fmt, input_type=input_type, min_score=float(min_score),
                      outputs=outputs)
    if fmt != "savedmodel":
        info = convert_and_verify(export_dir, info, say)
    info.write(export_dir)
    return info
