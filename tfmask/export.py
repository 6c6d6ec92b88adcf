"""Export a trained checkpoint as a SavedModel with the OD API's serving signature.

The library behind ``tfmask export``::

    tfmask export --pipeline_config_path configs/mask_rcnn_tiny_cpu.config \\
        --trained_checkpoint_dir runs/tiny --output_directory exported/tiny

writes ``OUT/saved_model/`` (signature ``serving_default``), ``OUT/checkpoint/ckpt-0``
(usable as ``fine_tune_checkpoint`` or ``--trained_checkpoint_dir``),
``OUT/pipeline.config`` (a copy) and ``OUT/label_map.pbtxt``. The folder is built
beside OUT and swapped in only after the reloaded SavedModel has been checked
against the in-memory model, so a failed export never replaces a good one.

Signature contract (the OD API exporter's, so its client code keeps working).
Input ``input_tensor``, by ``input_type``:

* ``image_tensor``: uint8 [B, H, W, 3], RGB, any size (a batch shares one size);
* ``float_image_tensor``: float32 [B, H, W, 3], RGB values in 0..255;
* ``encoded_image_string_tensor``: string [B], JPEG/PNG file bytes;
* ``tf_example``: string [B], serialized ``tf.train.Example`` in tfmask's record
  format (only ``image/encoded`` is read).

Decoded images are not EXIF-rotated (TF's decoders ignore EXIF). Outputs, N =
the model's ``max_num_detections``, entries past ``num_detections`` are padding:

* ``detection_boxes`` float32 [B, N, 4]: ``[ymin, xmin, ymax, xmax]`` normalized
  by the *input* image's height/width, clipped to [0, 1];
* ``detection_scores`` float32 [B, N]; ``detection_classes`` float32 [B, N]
  label-map ids (1..num_classes); ``num_detections`` float32 [B];
* ``detection_masks`` float32 [B, N, m, m]: mask probabilities relative to
  ``detection_boxes`` (Model Garden's masks, resampled onto the clipped box where
  a box reached past the image);
* with ``full_image_masks``: ``detection_masks_reframed`` uint8 [B, N, H, W] 0/1
  masks on the input image (probability > 0.5). A string batch of different
  sizes is pasted onto the largest; each image's masks lie in its top-left corner.

Preprocessing is Model Garden's eval parser (normalize, resize keeping the
aspect ratio, pad to a multiple of ``2**max_level``), in the graph.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, Tuple

import numpy as np
import tensorflow as tf

from tfmask.errors import ConfigError, DataError, PathLike, TfmaskError
from tfmask.feature_keys import IMAGE_ENCODED

INPUT_TYPES = ("image_tensor", "encoded_image_string_tensor", "tf_example",
               "float_image_tensor")
INPUT_NAME = "input_tensor"
SIGNATURE = "serving_default"
MASK_THRESHOLD = 0.5
VERIFY_SIZE_HW = (100, 150)  # non-square, so a swapped height/width shows up
_DYNAMIC_BATCH_NMS = ("batched", "v2", "v3")
_BOX_TOLERANCE = 1e-4  # normalized boxes, scores and masks, reloaded vs in memory
_MIN_BOX_PX = 1e-3  # degenerate (padding) boxes: avoids dividing by zero


class ExportVerificationError(TfmaskError):
    """The reloaded SavedModel disagrees with the in-memory model."""


@dataclass
class ExportResult:
    """What ``export_model`` wrote.

    Attributes:
      output_directory / saved_model_dir / checkpoint_path / pipeline_config /
        label_map: where things are (``checkpoint_path`` is the ``ckpt-0`` prefix).
      source_checkpoint: the checkpoint that was exported.
      input_type: one of ``INPUT_TYPES``.
      inputs / outputs: signature tensor name -> ``"dtype [shape]"``.
      max_abs_diff: per output, largest |reloaded - in memory| on the check image.
      seconds: the whole export; reload_seconds: ``tf.saved_model.load`` alone.
    """

    output_directory: str
    saved_model_dir: str
    checkpoint_path: str
    pipeline_config: str
    label_map: str
    source_checkpoint: str
    input_type: str
    inputs: Dict[str, str] = field(default_factory=dict)
    outputs: Dict[str, str] = field(default_factory=dict)
    max_abs_diff: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    reload_seconds: float = 0.0


@dataclass(frozen=True)
class Preprocessing:
    """What the eval parser needs from the model config (sizes in pixels, [h, w])."""

    input_hw: Tuple[int, int]
    padded_hw: Tuple[int, int]
    min_level: int
    max_level: int
    num_scales: int
    aspect_ratios: Tuple[float, ...]
    anchor_size: float

    @classmethod
    def from_model_config(cls, cfg) -> "Preprocessing":
        from official.vision.ops.preprocess_ops import compute_padded_size

        input_hw = tuple(int(v) for v in cfg.input_size[:2])
        padded = compute_padded_size(list(input_hw), 2 ** cfg.max_level)
        return cls(input_hw, tuple(int(v) for v in padded), cfg.min_level, cfg.max_level,
                   cfg.anchor.num_scales, tuple(cfg.anchor.aspect_ratios),
                   float(cfg.anchor.anchor_size))

    def anchor_boxes(self) -> Dict[str, tf.Tensor]:
        """Level -> [h_l, w_l, 4 * anchors] anchor boxes of the padded frame."""
        from official.vision.ops.anchor import build_anchor_generator

        generator = build_anchor_generator(
            min_level=self.min_level, max_level=self.max_level, num_scales=self.num_scales,
            aspect_ratios=list(self.aspect_ratios), anchor_size=self.anchor_size)
        return generator(image_size=list(self.padded_hw))

    def image(self, image: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """[H, W, 3] RGB 0..255 (any dtype) -> (padded model input, image_info [4, 2]).

        ``image_info`` rows: input [h, w], model size [h, w], scale [y, x],
        offset [y, x]; a model-frame pixel p is input pixel ``(p + offset) / scale``.
        """
        from official.vision.ops import preprocess_ops

        image = preprocess_ops.normalize_image(
            tf.cast(image, tf.float32), offset=preprocess_ops.MEAN_RGB,
            scale=preprocess_ops.STDDEV_RGB)
        return preprocess_ops.resize_and_crop_image(
            image, list(self.input_hw), padded_size=list(self.padded_hw),
            aug_scale_min=1.0, aug_scale_max=1.0)


def input_spec(input_type: str) -> tf.TensorSpec:
    """The signature's input for ``input_type``."""
    specs = {
        "image_tensor": ([None, None, None, 3], tf.uint8),
        "float_image_tensor": ([None, None, None, 3], tf.float32),
        "encoded_image_string_tensor": ([None], tf.string),
        "tf_example": ([None], tf.string),
    }
    if input_type not in specs:
        raise ConfigError(f"unknown input_type '{input_type}'; valid: {', '.join(INPUT_TYPES)}")
    shape, dtype = specs[input_type]
    return tf.TensorSpec(shape, dtype, name=INPUT_NAME)


def _decode(element: tf.Tensor, input_type: str) -> tf.Tensor:
    """One input element -> [H, W, 3] RGB image (uint8, or float32 0..255)."""
    if input_type == "tf_example":
        parsed = tf.io.parse_single_example(
            element, {IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string)})
        element = parsed[IMAGE_ENCODED]
    if input_type in ("tf_example", "encoded_image_string_tensor"):
        image = tf.io.decode_image(element, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image
    return element


def resample_masks(masks: tf.Tensor, src_boxes: tf.Tensor, dst_boxes: tf.Tensor,
                   out_hw) -> tf.Tensor:
    """Resamples box-relative masks onto a grid covering other boxes.

    Mask cell (i, j) of an m x m mask covers the (i, j)-th of m x m equal parts
    of its source box; values are bilinear between cell centres, equal to the
    edge cell between the outermost centres and the box edge, and 0 outside the
    box. Output cell (r, c) takes the value at its centre.

    Args:
      masks: [K, m, m] float, e.g. Model Garden's mask probabilities.
      src_boxes: [K, 4] ``[ymin, xmin, ymax, xmax]`` each mask covers (any units).
      dst_boxes: [K, 4] the region each output grid covers (same units).
      out_hw: (h, w) output grid size (ints or scalar tensors).

    Returns:
      [K, h, w] float32. Pasting onto an H x W image is ``dst = [0, 0, H, W]``
      in pixel edges with ``out_hw = (H, W)``.
    """
    masks = tf.convert_to_tensor(masks, tf.float32)
    src = tf.convert_to_tensor(src_boxes, tf.float32)
    dst = tf.convert_to_tensor(dst_boxes, tf.float32)
    # Edge cells repeated once: sampling between the last centre and the box edge
    # keeps the edge value; crop_and_resize gives 0 beyond the padded mask.
    padded = tf.pad(masks, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC")[..., None]
    m_hw = tf.cast(tf.shape(masks)[1:3], tf.float32)

    def axis(k: int, n):
        s0, s1, d0, d1 = src[:, k], src[:, k + 2], dst[:, k], dst[:, k + 2]
        m, n_f = m_hw[k], tf.cast(n, tf.float32)
        to_cells = m / tf.maximum(s1 - s0, _MIN_BOX_PX)
        step = (d1 - d0) / n_f  # output cell size, box units
        first = d0 + 0.5 * step  # centre of output cell 0
        # Padded-mask coordinate of output centre t: (pos - s0) * to_cells - 0.5 + 1;
        # crop_and_resize maps box coordinate b to b * (m + 1) on the padded mask.
        start = ((first - s0) * to_cells + 0.5) / (m + 1.0)
        end = start + step * to_cells * (n_f - 1.0) / (m + 1.0)
        centres = first[:, None] + step[:, None] * tf.range(n_f)[None, :]
        inside = (centres >= s0[:, None]) & (centres < s1[:, None])
        return start, end, inside

    out_h, out_w = out_hw
    y0, y1, in_y = axis(0, out_h)
    x0, x1, in_x = axis(1, out_w)
    k = tf.shape(masks)[0]
    sampled = tf.image.crop_and_resize(
        padded, tf.stack([y0, x0, y1, x1], axis=1), tf.range(k),
        tf.stack([tf.cast(out_h, tf.int32), tf.cast(out_w, tf.int32)]),
        method="bilinear", extrapolation_value=0.0)[..., 0]
    inside = tf.cast(in_y[:, :, None] & in_x[:, None, :], tf.float32)
    return sampled * inside


def paste_masks(masks: tf.Tensor, boxes_yxyx_px: tf.Tensor, size_hw) -> tf.Tensor:
    """[K, m, m] box-relative masks -> [K, H, W] float32 probabilities on the image.

    ``boxes_yxyx_px`` [K, 4] are pixel edges ``[ymin, xmin, ymax, xmax]`` (a box
    covering rows 2..4 has ymin=2, ymax=5); they may reach past the image.
    Threshold the result at ``MASK_THRESHOLD`` for instance masks.
    """
    h, w = size_hw
    boxes = tf.convert_to_tensor(boxes_yxyx_px, tf.float32)
    canvas = tf.stack([0.0, 0.0, tf.cast(h, tf.float32), tf.cast(w, tf.float32)])
    canvas = tf.tile(canvas[None], [tf.shape(boxes)[0], 1])
    return resample_masks(masks, boxes, canvas, (h, w))


def _postprocess(out: Dict[str, tf.Tensor], info: tf.Tensor,
                 full_image_masks: bool) -> Dict[str, tf.Tensor]:
    """Model Garden outputs (model frame) -> the signature's outputs (input frame)."""
    boxes = out["detection_boxes"]  # [B, N, 4] pixels in the model frame
    scale = tf.tile(info[:, None, 2, :], [1, 1, 2])
    offset = tf.tile(info[:, None, 3, :], [1, 1, 2])
    size = tf.tile(info[:, None, 0, :], [1, 1, 2])
    boxes_px = (boxes + offset) / scale  # input pixels; may reach into the padding
    clipped_px = tf.minimum(tf.maximum(boxes_px, 0.0), size)
    masks = out["detection_masks"]
    shape = tf.shape(masks)  # [B, N, m, m]
    flat_masks = tf.reshape(masks, [-1, shape[2], shape[3]])
    flat_boxes = tf.reshape(boxes_px, [-1, 4])
    flat_clipped = tf.reshape(clipped_px, [-1, 4])
    # A clipped box no longer matches its mask: resample the mask onto it.
    recropped = resample_masks(flat_masks, flat_boxes, flat_clipped, (shape[2], shape[3]))
    changed = tf.reduce_any(tf.not_equal(flat_boxes, flat_clipped), axis=1)
    flat_out = tf.where(changed[:, None, None], recropped, flat_masks)
    result = {
        "detection_boxes": tf.clip_by_value(clipped_px / size, 0.0, 1.0),
        "detection_scores": out["detection_scores"],
        "detection_classes": tf.cast(out["detection_classes"], tf.float32),
        "num_detections": tf.cast(out["num_detections"], tf.float32),
        "detection_masks": tf.reshape(flat_out, shape),
    }
    if full_image_masks:
        hw = tf.cast(tf.reduce_max(info[:, 0, :], axis=0), tf.int32)
        pasted = paste_masks(flat_masks, flat_boxes, (hw[0], hw[1]))
        reframed = tf.cast(pasted > MASK_THRESHOLD, tf.uint8)
        result["detection_masks_reframed"] = tf.reshape(
            reframed, tf.concat([shape[:2], hw], axis=0))
    return result


def detect(model, prep: Preprocessing, inputs: tf.Tensor, input_type: str = "image_tensor",
           full_image_masks: bool = False) -> Dict[str, tf.Tensor]:
    """The serving computation: decode, preprocess, run the model, map back.

    Runs eagerly too, which is how the export checks the reloaded SavedModel.
    ``inputs`` and outputs follow the module docstring's contract.
    """
    h, w = prep.padded_hw

    def one(element):
        return prep.image(_decode(element, input_type))

    images, info = tf.map_fn(
        one, inputs, fn_output_signature=(tf.TensorSpec([h, w, 3], tf.float32),
                                          tf.TensorSpec([4, 2], tf.float32)))
    batch = tf.shape(images)[0]
    anchors = {level: tf.tile(boxes[None], [batch, 1, 1, 1])
               for level, boxes in prep.anchor_boxes().items()}
    # model.call, not model(...): Keras' __call__ would record the call's input
    # specs, and saving then re-traces the model in training mode (which needs
    # ground truth) and fails. Model Garden's exporter does the same.
    out = model.call(images, image_shape=info[:, 1, :], anchor_boxes=anchors, training=False)
    return _postprocess(out, info, full_image_masks)


class DetectionServing(tf.Module):
    """The exported module: the ``serve`` function, the model's variables, the input type.

    The variables are tracked as a flat list and the Keras model itself is kept
    out of the saved object graph: saving a Keras model makes
    ``tf.saved_model.save`` trace every layer's call functions (about 5 s of a
    tiny model's export, and a slower reload) for objects no client reads.
    """

    def __init__(self, model, prep: Preprocessing, input_type: str, full_image_masks: bool):
        super().__init__()
        self.model_variables = list(model.variables)
        self.input_type = tf.Variable(input_type, trainable=False, name="input_type")
        # A partial is not trackable, so the model stays out of the object graph.
        self._detect = functools.partial(detect, model, prep, input_type=input_type,
                                         full_image_masks=full_image_masks)
        self.serve = tf.function(self._serve, input_signature=[input_spec(input_type)])

    def _serve(self, input_tensor):
        return self._detect(input_tensor)


def verification_input(input_type: str, image: np.ndarray) -> tf.Tensor:
    """The signature input holding ``image`` ([H, W, 3] uint8) for ``input_type``."""
    if input_type == "image_tensor":
        return tf.constant(image[None])
    if input_type == "float_image_tensor":
        return tf.constant(image[None].astype(np.float32))
    png = tf.io.encode_png(image).numpy()
    if input_type == "encoded_image_string_tensor":
        return tf.constant([png])
    example = tf.train.Example(features=tf.train.Features(feature={
        IMAGE_ENCODED: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png]))}))
    return tf.constant([example.SerializeToString()])


def verification_image(size_hw: Tuple[int, int] = VERIFY_SIZE_HW) -> np.ndarray:
    """A deterministic [H, W, 3] uint8 picture: gradients with a few flat shapes."""
    h, w = size_hw
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([255 * xx / w, 255 * yy / h, 128 + 0 * xx], -1)
    rng = np.random.default_rng(0)
    for _ in range(4):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        image[y0:y0 + h // 3, x0:x0 + w // 4] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


def _compare(expected: Dict[str, tf.Tensor], got: Dict[str, tf.Tensor]) -> Dict[str, float]:
    diffs: Dict[str, float] = {}
    for name, want in expected.items():
        if name not in got:
            raise ExportVerificationError(f"the reloaded SavedModel has no output '{name}'")
        a, b = np.asarray(want, np.float64), np.asarray(got[name], np.float64)
        if a.shape != b.shape:
            raise ExportVerificationError(f"output '{name}' has shape {b.shape} after reload, "
                                          f"{a.shape} in memory")
        diff = np.abs(a - b)
        diffs[name] = float(diff.max()) if diff.size else 0.0
        if name in ("detection_classes", "num_detections"):
            bad = diffs[name] != 0
        elif name == "detection_masks_reframed":  # a probability at 0.5 may flip
            bad = diff.size and diff.mean() > 1e-3
        else:
            bad = diffs[name] > _BOX_TOLERANCE
        if bad:
            raise ExportVerificationError(
                f"output '{name}' of the reloaded SavedModel differs from the in-memory "
                f"model by up to {diffs[name]:.3g}")
    return diffs


def verify_export(saved_model_dir: PathLike, model, prep: Preprocessing, input_type: str,
                  full_image_masks: bool) -> Tuple[Dict[str, float], float]:
    """Reloads the SavedModel and compares it with ``model`` on one image.

    Returns:
      (max abs difference per output, seconds ``tf.saved_model.load`` took).

    Raises:
      ExportVerificationError: an output is missing or differs (named).
    """
    image = verification_image()
    expected = detect(model, prep, tf.constant(image[None]), "image_tensor", full_image_masks)
    start = time.perf_counter()
    loaded = tf.saved_model.load(str(saved_model_dir))
    reload_s = time.perf_counter() - start
    got = loaded.signatures[SIGNATURE](**{INPUT_NAME: verification_input(input_type, image)})
    return _compare(expected, got), reload_s


def find_checkpoint(checkpoint_dir: PathLike) -> str:
    """The newest checkpoint in a folder, in an export folder's ``checkpoint/``, or a
    checkpoint prefix given directly."""
    path = str(checkpoint_dir)
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
        latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoint"))
    if latest is None and Path(path + ".index").is_file():
        latest = path
    if latest is None:
        raise DataError(path, "no checkpoint found in this folder")
    return latest


def restore_model(params, checkpoint: str):
    """Builds the Model Garden model of ``params`` and restores ``checkpoint`` into it.

    Built with Model Garden's ``factory.build_maskrcnn`` (as its own exporter
    does) rather than ``MaskRCNNTask.build_model``: the task's warm-up call
    through Keras' ``__call__`` records input specs, and ``tf.saved_model.save``
    then re-traces the model in training mode (which needs ground truth) and
    fails. A warm-up through ``model.call`` creates the variables instead.

    Raises:
      DataError: the checkpoint does not hold this model's variables.
    """
    import tf_keras
    from official.vision.modeling import factory

    import tfmask.training.task  # noqa: F401  registers tfmask's configs and backbone

    prep = Preprocessing.from_model_config(params.task.model)
    model = factory.build_maskrcnn(
        input_specs=tf_keras.layers.InputSpec(shape=[None, *prep.padded_hw, 3]),
        model_config=params.task.model)
    detect(model, prep, tf.zeros([1, *prep.padded_hw, 3], tf.uint8))  # creates variables
    try:
        status = tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        raise DataError(checkpoint, "checkpoint does not match the model of this "
                        f"pipeline.config ({first})", kind="checkpoint") from None
    return model


@contextlib.contextmanager
def _quiet_tf_logger() -> Iterator[None]:
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _describe(spec) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in spec.shape.as_list())
    return f"{spec.dtype.name} [{dims}]"


def _replace_dir(new: Path, out: Path) -> None:
    """Puts ``new`` at ``out``; an existing ``out`` is moved aside first, then deleted."""
    if not out.exists():
        os.rename(new, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(aside)
    os.rename(out, aside)
    try:
        os.rename(new, out)
    except OSError:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _check_output_dir(out: Path) -> None:
    """Only an earlier export (or an empty folder) may be replaced."""
    if out.is_file():
        raise ConfigError(f"--output_directory {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / "saved_model").is_dir():
        raise ConfigError(f"--output_directory {out} exists and is not an export (no "
                          "saved_model/ inside); choose a new folder so nothing is deleted")


def export_model(pipeline_config_path: PathLike, trained_checkpoint_dir: PathLike,
                 output_directory: PathLike, input_type: str = "image_tensor",
                 full_image_masks: bool = False,
                 say: Callable[[str], None] = lambda s: None) -> ExportResult:
    """Exports the newest checkpoint of ``trained_checkpoint_dir`` (see module docstring).

    Raises:
      DataError: no checkpoint, or one that does not match the pipeline.config's model;
        errors of the pipeline.config or its label map.
      ConfigError: unknown input type, or an output folder that is not an export.
      ExportVerificationError: the reloaded SavedModel disagrees with the model.
    """
    from tfmask.pipeline_config import translate

    start = time.perf_counter()
    input_spec(input_type)  # fails early on an unknown type
    out = Path(os.path.abspath(output_directory))  # a real name even for "."
    _check_output_dir(out)
    translation = translate(pipeline_config_path)
    params = translation.params
    generator = params.task.model.detection_generator
    if generator.nms_version not in _DYNAMIC_BATCH_NMS:  # as Model Garden's exporter does
        say(f"nms_version '{generator.nms_version}' needs a fixed batch size; exporting "
            "with 'batched'")
        generator.nms_version = "batched"
    checkpoint = find_checkpoint(trained_checkpoint_dir)
    say(f"restoring {checkpoint}")
    model = restore_model(params, checkpoint)
    prep = Preprocessing.from_model_config(params.task.model)
    module = DetectionServing(model, prep, input_type, full_image_masks)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 -> what mkdir would give
    try:
        say("writing the SavedModel")
        concrete = module.serve.get_concrete_function()
        with _quiet_tf_logger():  # "Skipping full serialization" of unbuilt Keras layers
            tf.saved_model.save(module, str(tmp / "saved_model"),
                                signatures={SIGNATURE: concrete})
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model, **model.checkpoint_items),
            str(tmp / "checkpoint"), max_to_keep=1)
        manager.save(checkpoint_number=0)
        shutil.copyfile(pipeline_config_path, tmp / "pipeline.config")
        translation.label_map.write(tmp / "label_map.pbtxt")
        say("checking the reloaded SavedModel against the model")
        diffs, reload_s = verify_export(tmp / "saved_model", model, prep, input_type,
                                        full_image_masks)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    outputs = {name: _describe(spec)
               for name, spec in sorted(concrete.structured_outputs.items())}
    return ExportResult(
        output_directory=str(out), saved_model_dir=str(out / "saved_model"),
        checkpoint_path=str(out / "checkpoint" / "ckpt-0"),
        pipeline_config=str(out / "pipeline.config"), label_map=str(out / "label_map.pbtxt"),
        source_checkpoint=checkpoint, input_type=input_type,
        inputs={INPUT_NAME: _describe(input_spec(input_type))}, outputs=outputs,
        max_abs_diff=diffs, seconds=time.perf_counter() - start, reload_seconds=reload_s)
