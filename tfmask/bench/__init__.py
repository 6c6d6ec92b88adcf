"""``tfmask bench``: every stage measured side by side with its baseline.

Sections (one module each, run in fresh processes by :mod:`tfmask.bench.run`):
``conversion`` (tfmask's converter vs :func:`baseline_convert`, 1 and 2
workers, peak memory for 500 vs 5,000 images), ``input_pipeline`` (decoded +
augmented examples/s, step time on real records vs a cached batch),
``training`` (step time, tfmask vs raw Model Garden) and ``inference``
(exported-model latency, tfmask vs a raw Model Garden export). Results go to
``bench/results.json``; see :mod:`tfmask.bench.common` for the row format.
"""

from tfmask.bench.baseline import baseline_convert

__all__ = ["baseline_convert"]
