"""The exported signature's names, importable without TensorFlow.

``serving_default`` takes ``INPUT_NAME`` (the OD API exporter's
``input_tensor``) in one of ``INPUT_TYPES``; the command line needs these
names to build its parser before TensorFlow is loaded.
"""

INPUT_TYPES = ("image_tensor", "encoded_image_string_tensor", "tf_example",
               "float_image_tensor")
INPUT_NAME = "input_tensor"
