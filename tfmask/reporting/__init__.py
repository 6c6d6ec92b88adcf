"""``tfmask report``: self-contained HTML pages about a dataset or an evaluation.

:mod:`~tfmask.reporting.dataset` describes records (class counts, instances
per image, object sizes and aspects, conversion problems, ground-truth
gallery); :mod:`~tfmask.reporting.evaluation` describes a ``tfmask eval``
folder (AP tables, PR curves, worst images with false positives and misses);
:mod:`~tfmask.reporting.page` builds the page (inline SVG charts, images as
``data:`` URIs: one file, no network). None of them imports TensorFlow.
"""
