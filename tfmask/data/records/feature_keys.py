"""TFRecord feature keys, defined once.

The key set is the TF Object Detection API's ``tf.train.Example`` schema for
instance segmentation, which TF Model Garden's
``official.vision.dataloaders.tf_example_decoder.TfExampleDecoder`` also reads.
The writer (:mod:`tfmask.data.records.writer`), readers, preview and tests import these
names instead of spelling strings.
"""

IMAGE_HEIGHT = "image/height"  # int64, pixels
IMAGE_WIDTH = "image/width"  # int64, pixels
IMAGE_FILENAME = "image/filename"  # bytes, the image's file name
# bytes, a decimal string: Model Garden's COCO evaluator casts it to a number.
IMAGE_SOURCE_ID = "image/source_id"
IMAGE_KEY_SHA256 = "image/key/sha256"  # bytes, hex digest of image/encoded
IMAGE_ENCODED = "image/encoded"  # bytes, the encoded image file
IMAGE_FORMAT = "image/format"  # bytes, b"jpeg" or b"png"

# Boxes are normalized to [0, 1] by the image width/height; edges are pixel
# edges (xmax is exclusive in pixel-index terms: a box covering columns 2..4
# has xmin=2/W and xmax=5/W).
BBOX_XMIN = "image/object/bbox/xmin"  # float list
BBOX_YMIN = "image/object/bbox/ymin"  # float list
BBOX_XMAX = "image/object/bbox/xmax"  # float list
BBOX_YMAX = "image/object/bbox/ymax"  # float list
CLASS_TEXT = "image/object/class/text"  # bytes list, plain class names
CLASS_LABEL = "image/object/class/label"  # int64 list, label-map ids (>= 1)
AREA = "image/object/area"  # float list, instance mask pixel count
IS_CROWD = "image/object/is_crowd"  # int64 list, 0 or 1
MASK = "image/object/mask"  # bytes list, one PNG per instance, values 0/1

OBJECT_KEYS = (BBOX_XMIN, BBOX_YMIN, BBOX_XMAX, BBOX_YMAX, CLASS_TEXT,
               CLASS_LABEL, AREA, IS_CROWD, MASK)
IMAGE_KEYS = (IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_FILENAME, IMAGE_SOURCE_ID,
              IMAGE_KEY_SHA256, IMAGE_ENCODED, IMAGE_FORMAT)
ALL_KEYS = IMAGE_KEYS + OBJECT_KEYS
