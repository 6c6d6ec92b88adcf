"""Run an exported model on images: ``Predictor(export_dir).predict(image)``.

Loads the model of a ``tfmask export`` folder (exported with the default
``image_tensor`` input) in the runtime of its format (``savedmodel``, ``onnx``
or ``openvino``: :mod:`tfmask.inference.runtimes`) and
``EXPORT_DIR/label_map.pbtxt``, and returns the detections of one image in its
own pixel frame::

    from tfmask import Predictor
    predictor = Predictor("exported/tiny", min_score=0.5)
    det = predictor.predict("dataset/test_images/a.jpg")   # or an [H, W, 3] uint8 array
    det.boxes_xyxy_px, det.class_names, det.scores, det.masks   # masks: [K, H, W] bool

Image files are read with :func:`tfmask.data.images.load_image`, so EXIF orientation
is applied as it was for the training records.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from tfmask.annotation import Detections, class_names_for
from tfmask.errors import ConfigError, DataError, PathLike

ImageLike = Union[np.ndarray, PathLike]


def read_image(path: PathLike) -> np.ndarray:
    """An image file as [H, W, 3] uint8 RGB, EXIF orientation applied.

    Raises:
      DataError: missing, empty, truncated, not JPEG/PNG, or too large.
    """
    from PIL import Image

    from tfmask.data.images import load_image

    encoded = load_image(path).encoded
    try:
        with Image.open(io.BytesIO(encoded.data)) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"image does not decode ({exc})", kind="unreadable") from None


class Predictor:
    """An exported tfmask model, ready to run on images.

    Args:
      export_dir: a ``tfmask export`` output folder (the model, ``export.json`` and
        ``label_map.pbtxt`` inside), exported with ``--input-type image_tensor``.
      min_score: detections scoring below this are dropped.
      runtime: the format to run (``savedmodel``, ``onnx``, ``openvino``); default
        the export's own (a converted export holds its SavedModel too).

    Raises:
      DataError: the folder has no model or label map.
      ConfigError: the export takes another input type, holds no model of
        ``runtime``, or the runtime's package is not installed.
    """

    def __init__(self, export_dir: PathLike, min_score: float = 0.5,
                 runtime: Optional[str] = None):
        from tfmask.config.label_map import read_label_map
        from tfmask.inference.runtimes import open_runtime

        self.export_dir = Path(export_dir)
        self.min_score = float(min_score)
        self.runtime = open_runtime(self.export_dir, runtime)
        labels = self.export_dir / "label_map.pbtxt"
        if not labels.is_file():
            raise DataError(self.export_dir, "label_map.pbtxt is missing from the export")
        self.class_names: Dict[int, str] = {
            c.id: c.name for c in read_label_map(labels, pixel_suffix=False).classes}
        if self.runtime.input_type != "image_tensor":
            raise ConfigError(f"{self.export_dir} was exported with input_type "
                              f"'{self.runtime.input_type}'; Predictor needs 'image_tensor' "
                              "(export again with --input-type image_tensor)")

    @property
    def max_detections(self) -> int:
        """The most detections the export returns for one image (its
        ``max_total_detections``: the static N of ``detection_scores`` [B, N])."""
        return self.runtime.max_detections

    def predict(self, image: ImageLike) -> Detections:
        """Detections of one image: an [H, W, 3] uint8 RGB array or an image file."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageLike]) -> List[Detections]:
        """Detections of several images; same-size images run as one batch."""
        arrays = [_as_array(im) for im in images]
        results: List[Detections] = [None] * len(arrays)  # type: ignore[list-item]
        by_size: Dict[Tuple[int, int], List[int]] = {}
        for i, array in enumerate(arrays):
            by_size.setdefault(array.shape[:2], []).append(i)
        for size_hw, indices in by_size.items():
            outputs = self._run(np.stack([arrays[i] for i in indices]))
            for row, i in enumerate(indices):
                results[i] = self._detections(outputs, row, size_hw)
        return results

    def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        return self.runtime.run(batch)

    def _detections(self, out: Dict[str, np.ndarray], row: int,
                    size_hw: Tuple[int, int]) -> Detections:
        from tfmask.boxes import yxyx_to_xyxy

        h, w = size_hw
        n = int(out["num_detections"][row])
        scores = out["detection_scores"][row, :n].astype(np.float32)
        keep = np.nonzero(scores >= self.min_score)[0]
        # [ymin, xmin, ymax, xmax] normalized -> [x0, y0, x1, y1] pixel edges
        boxes_yxyx = out["detection_boxes"][row, keep] * np.float32([h, w, h, w])
        class_ids = np.rint(out["detection_classes"][row, keep]).astype(np.int64)
        if "detection_masks_reframed" in out:
            masks = out["detection_masks_reframed"][row, keep, :h, :w] > 0
        else:
            masks = paste_in_boxes(out["detection_masks"][row, keep], boxes_yxyx, (h, w))
        return Detections(
            boxes_xyxy_px=yxyx_to_xyxy(boxes_yxyx),
            class_ids=class_ids,
            class_names=class_names_for(class_ids, self.class_names),
            scores=scores[keep], masks=masks, size_hw=(h, w))


def paste_in_boxes(masks: np.ndarray, boxes_yxyx_px: np.ndarray, size_hw) -> np.ndarray:
    """[K, m, m] box-relative mask probabilities -> [K, H, W] bool instance masks.

    Each mask is pasted (:func:`tfmask.export.serving.paste_masks`, thresholded
    at ``MASK_THRESHOLD``) on the pixels its box covers only, so memory stays
    at the K bool masks (12 MB each for a 12 MP photo) instead of K float32
    full-image probabilities. ``boxes_yxyx_px``: [K, 4] pixel edges
    ``[ymin, xmin, ymax, xmax]``; the result equals pasting on the whole image
    (pixels outside a box are 0 there too).
    """
    from tfmask.export.serving import MASK_THRESHOLD, paste_masks

    h, w = size_hw
    out = np.zeros((len(masks), h, w), bool)
    for i, (mask, box) in enumerate(zip(masks, np.asarray(boxes_yxyx_px, np.float32))):
        y0, x0 = (int(np.floor(np.clip(v, 0, m))) for v, m in zip(box[:2], (h, w)))
        y1, x1 = (int(np.ceil(np.clip(v, 0, m))) for v, m in zip(box[2:], (h, w)))
        if y1 <= y0 or x1 <= x0:
            continue
        shifted = box - np.float32([y0, x0, y0, x0])
        out[i, y0:y1, x0:x1] = paste_masks(mask[None], shifted[None], (y1 - y0, x1 - x0),
                                           MASK_THRESHOLD).numpy()[0]
    return out


def _as_array(image: ImageLike) -> np.ndarray:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be [H, W, 3] uint8 RGB, got {image.shape} "
                             f"{image.dtype}")
        return image
    return read_image(image)
