"""tfmask.data.records.wire writes the bytes TensorFlow would; instance PNGs decode to 0/1 everywhere."""

import io
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfmask.bench.baseline import tf_example  # TensorFlow's own protos
from tfmask.data.records.writer import encode_mask_png
from tfmask.data.records.wire import serialize_example, write_record


@pytest.mark.parametrize("features", [
    {},
    {"image/encoded": ("bytes", [b"\x00\xff" * 1000]), "b": ("bytes", [])},
    {"z": ("float", [0.1, -2.5, 1e30]), "a": ("int64", [0, -1, 2 ** 62]),
     "m": ("bytes", [b"x", b"", "é".encode()]), "e": ("float", [])},
])
def test_example_bytes_equal_tensorflow(features):
    ours = serialize_example(features)
    assert ours == tf_example(features).SerializeToString(deterministic=True)
    parsed = tf.train.Example.FromString(ours)
    assert set(parsed.features.feature) == set(features)


def test_unknown_feature_kind_is_refused():
    with pytest.raises(ValueError, match="valid: bytes, float, int64"):
        serialize_example({"a": ("string", [b"x"])})


def test_record_framing_equals_tfrecordwriter(tmp_path):
    payloads = [b"", b"a", bytes(range(256)) * 300]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.rec")) as writer:
        for p in payloads:
            writer.write(p)
    with open(tmp_path / "ours.rec", "wb") as stream:
        for p in payloads:
            write_record(stream, p)
    assert (tmp_path / "ours.rec").read_bytes() == (tmp_path / "tf.rec").read_bytes()
    read = list(tf.data.TFRecordDataset(str(tmp_path / "ours.rec")).as_numpy_iterator())
    assert read == payloads


@pytest.mark.parametrize("size_hw", [(1, 1), (5, 13), (384, 512)])
def test_mask_png_decodes_to_zero_one(size_hw):
    rng = np.random.default_rng(sum(size_hw))
    mask = rng.random(size_hw) < 0.3
    png = encode_mask_png(mask)
    pil = np.asarray(Image.open(io.BytesIO(png)))
    assert pil.dtype == np.uint8 and pil.shape == size_hw
    np.testing.assert_array_equal(pil, mask.astype(np.uint8))
    decoded = tf.io.decode_png(png, channels=1).numpy()[..., 0]
    np.testing.assert_array_equal(decoded, mask.astype(np.uint8))  # 0/1, not 0/255


def test_converter_and_cli_do_not_import_tensorflow():
    code = ("import sys, numpy as np\n"
            "from tfmask.data.records.writer import build_example\n"
            "from tfmask.annotation import EncodedImage, Instances, Sample\n"
            "m = np.zeros((1, 4, 6), bool); m[0, 1:3, 2:5] = True\n"
            "inst = Instances(m, np.array([[2, 1, 5, 3]], np.float32), [1], ['a'])\n"
            "build_example(Sample(EncodedImage(b'x', 'png', (4, 6), 'a.png'), inst, 1))\n"
            "import tfmask.data.sources.masks_voc, tfmask.data.convert\n"
            "from tfmask.cli import build_parser\n"
            "build_parser()  # `tfmask tfrecord` starts without TF, so its pool can fork\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
