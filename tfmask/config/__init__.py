"""Stage 2, configuration: the OD API ``pipeline.config`` -> a Model Garden experiment.

``textproto`` parses the protobuf text format, ``fields`` reads it while
recording which fields were honoured, ``translate`` maps each part of the
file onto the experiment, ``train_config`` the optimizer, schedule,
augmentation and freezing, ``label_map`` the OD API label map, and
``experiment`` adds the command line's overrides and saves the record of a
run. Importing this package does not import TensorFlow.
"""
