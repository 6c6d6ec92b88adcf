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

For the exported graph, :func:`store_in_compute_dtype` then keeps those
layers' weights in bfloat16 themselves, so the serving function no longer casts
every weight from float32 on every call (the export's checkpoint is written
before, in float32).
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


def store_in_compute_dtype(model) -> int:
    """Stores each weight that ``model``'s layers cast to their compute dtype on
    every call (a Keras mixed-policy ``AutoCastVariable``: float32 storage, read
    as bfloat16 inside its layer's call) in that dtype instead, in place; returns
    how many it changed (0 for a float32 model).

    Rounding to bfloat16 once gives the same values that the per-call cast gives
    (both round to nearest even), so the model's outputs do not change: the
    first box fc of an R50-FPN (12.8 M weights) otherwise reads and casts 51 MB
    of float32 per call. After this, reads of these weights outside a layer's
    call return bfloat16, and the model should not be trained or checkpointed
    again (export writes its checkpoint first).
    """
    import tensorflow as tf
    # tf_keras (pinned) does not export the class; its variables are the wrapper.
    from tf_keras.src.mixed_precision.autocast_variable import AutoCastVariable

    changed = 0
    for layer in model.submodules:
        policy = getattr(layer, "dtype_policy", None)
        if policy is None or policy.compute_dtype == policy.variable_dtype:
            continue
        compute = tf.as_dtype(policy.compute_dtype)
        for weight in layer._trainable_weights + layer._non_trainable_weights:  # noqa: SLF001
            if not isinstance(weight, AutoCastVariable) or weight.true_dtype == compute:
                continue
            stored = weight._variable  # noqa: SLF001
            weight._variable = tf.Variable(  # noqa: SLF001
                tf.cast(stored, compute), trainable=stored.trainable,
                name=stored.name.split(":")[0])
            changed += 1
    return changed
