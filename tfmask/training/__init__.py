"""Training and evaluation on TF Model Garden's Mask R-CNN trainer.

``experiment`` builds the Model Garden params (from a pipeline.config or a
YAML experiment), ``progress`` is the per-step progress line and NaN guard,
``loop`` runs training / evaluation with resume and interrupt-safe saving.
"""
