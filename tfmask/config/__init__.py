"""Stage 2, configuration: the OD API ``pipeline.config`` -> a Model Garden experiment.

``textproto`` parses (and writes) the protobuf text format; ``fields`` is the
honoured-field ledger the translation reads through; ``translate`` runs its
table of sections: ``model_sections`` (classes, backbone/levels/size, anchors,
RPN, box head, mask head, post-processing, losses, with the feature-extractor
table in ``extractors``), ``train_config`` (schedule, augmentation, freezing),
``readers`` (data), ``fine_tune`` (fine_tune_checkpoint, OD API checkpoints
refused), then ``sizes`` (what Model Garden's samplers can hold). ``label_map``
reads the OD API label map, and ``experiment`` adds the command line's
overrides and saves the record of a run. Importing this package does not
import TensorFlow.
"""
