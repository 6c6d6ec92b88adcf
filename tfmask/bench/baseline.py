"""The straightforward converter ``tfmask bench`` measures tfmask's against.

:func:`baseline_convert` is the per-image algorithm of the tutorial's
``create_mask_rcnn_tf_record.py`` (class-mode instances, one per class
present), written plainly: decode the JPEG fully to learn its size, convert
the mask to gray, compare the whole image once per label-map class,
PNG-encode each instance mask at PIL's default compression, build a
``tf.train.Example`` with TensorFlow's protos and write everything through
one ``tf.io.TFRecordWriter`` in one process. It checks nothing and is not
part of the toolkit's conversion path; it exists so the speed-up of
``tfmask tfrecord`` is measured side by side, in the same run, on the same
files.

Example::

    from tfmask.bench import baseline_convert
    n = baseline_convert("dataset", "/tmp/baseline.record")
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

from tfmask.data.records import feature_keys as fk
from tfmask.errors import PathLike
from tfmask.config.label_map import load_label_map


def _instance_png(mask: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def tf_example(features: Dict[str, Tuple[str, list]]):
    """A ``tf.train.Example`` built with TensorFlow's own protos.

    Args:
      features: key -> ``(kind, values)``, kind ``bytes``, ``float`` or
        ``int64`` (any other kind is int64), as
        :func:`tfmask.data.records.wire.serialize_example` takes them.
    """
    import tensorflow as tf

    def feature(kind, values):
        if kind == "bytes":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if kind == "float":
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(
        feature={k: feature(kind, v) for k, (kind, v) in features.items()}))


def _class_instances(gray: np.ndarray, label_map, width: int, height: int
                     ) -> Dict[str, Tuple[str, list]]:
    """The instance features of one image: one instance per class present in ``gray``."""
    xmins, ymins, xmaxs, ymaxs, names, ids, areas, pngs = ([] for _ in range(8))
    for cls in label_map.classes:
        mask = gray == cls.pixel_value[0]
        if not mask.any():
            continue
        rows, cols = np.where(mask)
        xmins.append(cols.min() / width)
        xmaxs.append((cols.max() + 1) / width)
        ymins.append(rows.min() / height)
        ymaxs.append((rows.max() + 1) / height)
        names.append(cls.name.encode("utf-8"))
        ids.append(cls.id)
        areas.append(float(mask.sum()))
        pngs.append(_instance_png(mask))
    return {
        fk.BBOX_XMIN: ("float", xmins),
        fk.BBOX_XMAX: ("float", xmaxs),
        fk.BBOX_YMIN: ("float", ymins),
        fk.BBOX_YMAX: ("float", ymaxs),
        fk.CLASS_TEXT: ("bytes", names),
        fk.CLASS_LABEL: ("int64", ids),
        fk.AREA: ("float", areas),
        fk.IS_CROWD: ("int64", [0] * len(ids)),
        fk.MASK: ("bytes", pngs),
    }


def baseline_convert(data_dir: PathLike, output_path: PathLike,
                     label_map_path: Optional[PathLike] = None,
                     images_dir: str = "train_images", masks_dir: str = "train_masks") -> int:
    """Converts ``DATA_DIR/train_images`` + ``train_masks`` to one TFRecord file.

    Args:
      data_dir: the tutorial's dataset folder.
      output_path: the record file to write.
      label_map_path: defaults to ``DATA_DIR/label.pbtxt`` (pixel-suffix names,
        gray values).

    Returns:
      The number of records written (one per image; every image must have a
      mask ``NAME.png``).
    """
    import tensorflow as tf

    data_dir = Path(data_dir)
    label_map = load_label_map(label_map_path or data_dir / "label.pbtxt")
    count = 0
    with tf.io.TFRecordWriter(str(output_path)) as writer:
        for image_path in sorted((data_dir / images_dir).iterdir()):
            encoded = image_path.read_bytes()
            width, height = Image.open(io.BytesIO(encoded)).convert("RGB").size
            gray = np.array(Image.open(data_dir / masks_dir / f"{image_path.stem}.png")
                            .convert("L"))
            count += 1
            example = tf_example({
                fk.IMAGE_HEIGHT: ("int64", [height]),
                fk.IMAGE_WIDTH: ("int64", [width]),
                fk.IMAGE_FILENAME: ("bytes", [image_path.name.encode("utf-8")]),
                fk.IMAGE_SOURCE_ID: ("bytes", [str(count).encode("ascii")]),
                fk.IMAGE_KEY_SHA256: ("bytes", [hashlib.sha256(encoded).hexdigest()
                                                .encode("ascii")]),
                fk.IMAGE_ENCODED: ("bytes", [encoded]),
                fk.IMAGE_FORMAT: ("bytes", [b"jpeg"]),
                **_class_instances(gray, label_map, width, height),
            })
            writer.write(example.SerializeToString())
    return count
