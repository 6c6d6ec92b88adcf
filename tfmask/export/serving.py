"""The exported model's serving computation: preprocessing, model, OD API outputs.

:class:`DetectionServing` is the ``tf.Module`` ``tfmask export`` saves;
:func:`detect` is the same computation, callable eagerly (the export is
verified against it).

Signature contract (the OD API exporter's, so its client code keeps working).
Input ``input_tensor``, by ``input_type``:

* ``image_tensor``: uint8 [B, H, W, 3], RGB, any size (a batch shares one size);
* ``float_image_tensor``: float32 [B, H, W, 3], RGB values in 0..255;
* ``encoded_image_string_tensor``: string [B], JPEG/PNG file bytes;
* ``tf_example``: string [B], serialized ``tf.train.Example`` in tfmask's record
  format (only ``image/encoded`` is read).

Decoded images are not EXIF-rotated (TF's decoders ignore EXIF). Outputs, N =
the model's ``max_num_detections``, entries past ``num_detections`` are padding
(zeros):

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

The mask head runs only on the surviving detections: Model Garden's
``model.call`` runs it on all ``max_num_detections`` boxes, padding included
(on CPU, 100 boxes of the ResNet-50-FPN head cost about as much as the rest of
the model; see :func:`run_model`). ``min_score`` (an export
option) drops detections scoring below it; they become padding, so
``num_detections`` shrinks and the survivors stay first, best first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import tensorflow as tf

from tfmask import engine_private
from tfmask.errors import ConfigError
from tfmask.data.records.feature_keys import IMAGE_ENCODED
from tfmask.export.signature import INPUT_NAME, INPUT_TYPES  # noqa: F401  (re-exported)

MASK_THRESHOLD = 0.5
_MIN_BOX_PX = 1e-3  # degenerate (padding) boxes: avoids dividing by zero


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

        from tfmask.modeling.factory import is_torchvision

        if is_torchvision(cfg):  # torchvision's resize and batch padding
            from tfmask.modeling.torchvision.inputs import TorchvisionPreprocessing

            return TorchvisionPreprocessing.from_model_config(cfg)
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

    def batch(self, images: tf.Tensor, info: tf.Tensor) -> tf.Tensor:
        """The batch the model runs on, from the [B, h, w, 3] padded images: all of it."""
        return images

    # Whether the export always adds ``detection_masks_reframed`` (models whose masks
    # are pasted another way than :func:`paste_masks`, which clients would apply).
    always_full_image_masks = False

    def paste_masks(self, masks: tf.Tensor, boxes_yxyx_px: tf.Tensor, size_hw,
                    threshold: Optional[float] = None) -> tf.Tensor:
        """The model's masks pasted onto the input image (:func:`paste_masks`)."""
        return paste_masks(masks, boxes_yxyx_px, size_hw, threshold)


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
                   out_hw, threshold: Optional[float] = None) -> tf.Tensor:
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
      threshold: if given, return ``values > threshold`` as bool instead
        (the same masks, without a float32 pass over the K x h x w cells).

    Returns:
      [K, h, w] float32 (bool with ``threshold``). Pasting onto an H x W image
      is ``dst = [0, 0, H, W]`` in pixel edges with ``out_hw = (H, W)``.
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
    inside = in_y[:, :, None] & in_x[:, None, :]
    if threshold is not None:
        # Equal to (sampled * inside) > threshold for threshold >= 0, a third the work.
        return (sampled > threshold) & inside
    return sampled * tf.cast(inside, tf.float32)


def paste_masks(masks: tf.Tensor, boxes_yxyx_px: tf.Tensor, size_hw,
                threshold: Optional[float] = None) -> tf.Tensor:
    """[K, m, m] box-relative masks -> [K, H, W] float32 probabilities on the image.

    ``boxes_yxyx_px`` [K, 4] are pixel edges ``[ymin, xmin, ymax, xmax]`` (a box
    covering rows 2..4 has ymin=2, ymax=5); they may reach past the image.
    With ``threshold`` (e.g. ``MASK_THRESHOLD``) it returns the [K, H, W] bool
    instance masks ``probabilities > threshold`` directly.
    """
    h, w = size_hw
    boxes = tf.convert_to_tensor(boxes_yxyx_px, tf.float32)
    canvas = tf.stack([0.0, 0.0, tf.cast(h, tf.float32), tf.cast(w, tf.float32)])
    canvas = tf.tile(canvas[None], [tf.shape(boxes)[0], 1])
    return resample_masks(masks, boxes, canvas, (h, w), threshold)


def map_outputs(out: Dict[str, tf.Tensor], info: tf.Tensor,
                full_image_masks: bool = False, paste=None) -> Dict[str, tf.Tensor]:
    """Model Garden outputs (model frame) -> the signature's outputs (input frame).

    ``out`` holds ``detection_boxes`` [B, N, 4] (model-frame pixels, as
    ``model.call`` and a raw Model Garden ``DetectionModule`` export return
    them), ``detection_scores``, ``detection_classes``, ``num_detections`` and
    box-relative ``detection_masks`` [B, N, m, m]; ``info`` is the [B, 4, 2]
    ``image_info`` (see :meth:`Preprocessing.image`). ``paste`` pastes the
    full-image masks: ``paste(masks, boxes, size_hw, threshold)`` returns
    bool masks, as :func:`paste_masks` (the default) does.
    """
    boxes = out["detection_boxes"]  # [B, N, 4] pixels in the model frame
    scale = tf.tile(info[:, None, 2, :], [1, 1, 2])
    offset = tf.tile(info[:, None, 3, :], [1, 1, 2])
    size = tf.tile(info[:, None, 0, :], [1, 1, 2])
    boxes_px = (boxes + offset) / scale  # input pixels; may reach into the padding
    clipped_px = tf.minimum(tf.maximum(boxes_px, 0.0), size)
    masks = out["detection_masks"]
    shape = tf.shape(masks)  # [B, N, m, m]
    # The mask size as a Python int where the graph knows it (the mask head's m x m):
    # OpenVINO's converter needs crop_and_resize's output size constant.
    m_hw = tuple(int(d) if d is not None else shape[i]
                 for i, d in ((2, masks.shape[2]), (3, masks.shape[3])))
    flat_masks = tf.reshape(masks, [-1, m_hw[0], m_hw[1]])
    flat_boxes = tf.reshape(boxes_px, [-1, 4])
    flat_clipped = tf.reshape(clipped_px, [-1, 4])
    # A clipped box no longer matches its mask: resample the mask onto it.
    recropped = resample_masks(flat_masks, flat_boxes, flat_clipped, m_hw)
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
        pasted = (paste or paste_masks)(flat_masks, flat_boxes, (hw[0], hw[1]),
                                        MASK_THRESHOLD)
        reframed = tf.cast(pasted, tf.uint8)
        result["detection_masks_reframed"] = tf.reshape(
            reframed, tf.concat([shape[:2], hw], axis=0))
    return result


def _survivor_order(out: Dict[str, tf.Tensor], min_score: float):
    """([B, N] indices putting survivors first in their order, [B] int32 survivor count).

    A detection survives when it is one of the ``num_detections`` and scores
    at least ``min_score``.
    """
    scores = out["detection_scores"]
    n = tf.shape(scores)[1]
    valid = tf.range(n)[None, :] < tf.cast(out["num_detections"], tf.int32)[:, None]
    valid &= scores >= min_score
    # A stable sort on "not valid" moves survivors to the front, keeping their order.
    order = tf.argsort(tf.cast(~valid, tf.int32), axis=1, stable=True)
    return order, tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)


def _mask_probs(model, features, rois: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    """Model Garden's inference mask branch (ROI align, mask head, class selection,
    sigmoid) on [B, K, 4] model-frame ``rois``; K may be dynamic (and 0).

    The mask head reads the number of ROIs from the static shape, so the K
    ROIs of each image go in as a batch of B*K single-ROI images.
    """
    roi_features = model.mask_roi_aligner(features, rois)  # [B, K, c, c, C]
    crop_h, crop_w, channels = roi_features.shape[2:]
    logits = model.mask_head([tf.reshape(roi_features, [-1, 1, crop_h, crop_w, channels]),
                              tf.reshape(classes, [-1, 1])])  # [B*K, 1, m, m]
    m_hw = tf.shape(logits)[2:]
    probs = tf.sigmoid(tf.cast(logits, tf.float32))  # bfloat16 under a mixed policy
    return tf.reshape(probs, tf.concat([tf.shape(rois)[:2], m_hw], axis=0))


def run_model(model, images: tf.Tensor, image_shape: tf.Tensor,
              anchors: Dict[str, tf.Tensor], min_score: float = 0.0) -> Dict[str, tf.Tensor]:
    """Model Garden's inference ``model.call`` with the mask head on survivors only.

    Runs the backbone, RPN, box head and detection generator (Model Garden's
    ``_call_box_outputs``), keeps the detections among ``num_detections`` that
    score at least ``min_score`` (K_b for image b), and runs the mask branch on
    K = max_b K_b boxes per image, not on all N. Survivor masks equal
    ``model.call``'s (same ROI align and head, per ROI); entries past an
    image's K_b are zeros, as are its boxes, scores and classes there.

    Returns:
      ``detection_boxes`` [B, N, 4] (model-frame pixels, ``[ymin, xmin, ymax, xmax]``),
      ``detection_scores`` [B, N], ``detection_classes`` [B, N] int,
      ``num_detections`` [B] int32 (the K_b), ``detection_masks`` [B, N, m, m]
      box-relative mask probabilities.
    """
    out, _ = engine_private.box_outputs(model, images, image_shape, anchors)
    n = out["detection_scores"].shape[1]  # static max_num_detections
    order, count = _survivor_order(out, min_score)
    keep = tf.range(n)[None, :] < count[:, None]  # [B, N] after reordering

    def reorder(value):
        value = tf.gather(value, order, batch_dims=1)
        mask = tf.reshape(keep, tf.concat([tf.shape(keep), tf.ones_like(tf.shape(value)[2:])],
                                          axis=0))
        return tf.where(mask, value, tf.zeros_like(value))

    result = {key: reorder(out[key])
              for key in ("detection_boxes", "detection_scores", "detection_classes")}
    rois = result["detection_boxes"]
    if model.outer_boxes_scale > 1.0:
        rois = reorder(out["detection_outer_boxes"])
    k = tf.reduce_max(tf.concat([count, [0]], axis=0))  # 0 for an empty batch
    # The head always gets at least one ROI per image (a padding box when nothing
    # survives): with oneDNN (TF_ENABLE_ONEDNN_OPTS=1) a Conv2D on an empty batch
    # returns its input's shape, and eagerly the bias add then fails ("Must provide
    # as many biases as the last dimension of the input tensor: [3] vs. [0,28,28,64]").
    k_run = tf.minimum(tf.maximum(k, 1), n)
    probs = _mask_probs(model, out["decoder_features"], rois[:, :k_run],
                        result["detection_classes"][:, :k_run])[:, :k]  # [B, K, m, m]
    probs *= tf.cast(keep[:, :k, None, None], probs.dtype)
    masks = tf.pad(probs, [[0, 0], [0, n - k], [0, 0], [0, 0]])
    masks.set_shape([None, n, None, None])
    result.update(num_detections=count, detection_masks=masks)
    return result


def detect(model, prep: Preprocessing, inputs: tf.Tensor, input_type: str = "image_tensor",
           full_image_masks: bool = False, min_score: float = 0.0) -> Dict[str, tf.Tensor]:
    """The serving computation: decode, preprocess, run the model, map back.

    Runs eagerly too, which is how the export checks the reloaded SavedModel.
    ``inputs`` and outputs follow the module docstring's contract; detections
    scoring below ``min_score`` are dropped (0.0 keeps what the config's
    post-processing keeps).
    """
    h, w = prep.padded_hw

    def one(element):
        return prep.image(_decode(element, input_type))

    images, info = tf.map_fn(
        one, inputs, fn_output_signature=(tf.TensorSpec([h, w, 3], tf.float32),
                                          tf.TensorSpec([4, 2], tf.float32)))
    images = prep.batch(images, info)
    batch = tf.shape(images)[0]
    anchors = {level: tf.tile(boxes[None], [batch, 1, 1, 1])
               for level, boxes in prep.anchor_boxes().items()}
    # The model's parts are called, not model(...): Keras' __call__ would record
    # the call's input specs, and saving then re-traces the model in training
    # mode (which needs ground truth) and fails.
    out = run_model(model, images, info[:, 1, :], anchors, min_score)
    return map_outputs(out, info, full_image_masks or prep.always_full_image_masks,
                       prep.paste_masks)


class DetectionServing(tf.Module):
    """The exported module: the ``serve`` function, the model's variables, the input type.

    The variables are tracked as a flat list and the Keras model itself is kept
    out of the saved object graph (``min_score`` is saved beside ``input_type``
    for clients to read): saving a Keras model makes
    ``tf.saved_model.save`` trace every layer's call functions (about 5 s of a
    tiny model's export, and a slower reload) for objects no client reads.
    """

    def __init__(self, model, prep: Preprocessing, input_type: str, full_image_masks: bool,
                 min_score: float = 0.0):
        super().__init__()
        self.model_variables = list(model.variables)
        self.input_type = tf.Variable(input_type, trainable=False, name="input_type")
        self.min_score = tf.Variable(float(min_score), trainable=False, name="min_score")
        # A partial is not trackable, so the model stays out of the object graph.
        self._detect = functools.partial(detect, model, prep, input_type=input_type,
                                         full_image_masks=full_image_masks,
                                         min_score=float(min_score))
        self.serve = tf.function(self._serve, input_signature=[input_spec(input_type)])

    def _serve(self, input_tensor):
        return self._detect(input_tensor)
