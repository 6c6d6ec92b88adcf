"""The compute precision of an exported graph: float32, or bfloat16 (Keras mixed policy).

``tfmask export --mixed_precision bfloat16`` builds the model under Keras'
``mixed_bfloat16`` policy (Model Garden's ``runtime.mixed_precision_dtype``
does the same for training): variables stay float32 (the checkpoint restores
unchanged), convolutions and matrix products run in bfloat16, and the
signature's outputs stay float32. Without a GPU it needs a CPU with native
bfloat16 (:func:`tfmask.config.experiment.check_cpu_precision`)::

    from tfmask.export.precision import compute_policy
    with compute_policy("bfloat16"):
        model = build()          # layers built here compute in bfloat16
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from tfmask.errors import ConfigError

EXPORT_PRECISIONS = ("float32", "bfloat16")
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def check_export_precision(precision: str) -> None:
    """Raises ConfigError for an unknown precision, or bfloat16 that this machine
    (no GPU, no native bfloat16 on the CPU) would only emulate."""
    if precision not in EXPORT_PRECISIONS:
        raise ConfigError(f"mixed_precision '{precision}' is unknown for an export; valid: "
                          f"{', '.join(EXPORT_PRECISIONS)}", params=("mixed_precision",))
    import tensorflow as tf

    from tfmask.config.experiment import check_cpu_precision

    if not tf.config.list_physical_devices("GPU"):
        check_cpu_precision(precision, "mixed_precision")


@contextlib.contextmanager
def compute_policy(precision: str) -> Iterator[None]:
    """Keras layers built inside compute in ``precision``; the global policy is
    restored afterwards (layers keep the policy they were built with)."""
    import tf_keras

    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(_POLICIES[precision])
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)
