"""Stage 5, inference: an exported model on images.

``predictor`` is the library entry point (:class:`Predictor`, also
``tfmask.Predictor``), ``infer`` runs it over a folder and writes overlays,
masks and COCO results.
"""
