"""TFRecords: the feature keys (defined once), the wire format (TF's Example
schema and TFRecord framing, no TensorFlow import), the one writer and a numpy
reader.
"""
