"""Stage 4, export: a trained checkpoint -> a SavedModel with the OD API's
output contract, verified against the in-memory model.

``signature`` names the inputs (no TensorFlow import), ``serving`` is the
serving graph (preprocessing, model, survivors-only mask head, pasted masks),
``exporter`` restores the checkpoint, writes and verifies the SavedModel.
"""
