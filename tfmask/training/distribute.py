"""Distribution strategies for training: one device, several GPUs, several machines.

``multi_worker_mirrored`` reads the cluster from the ``TF_CONFIG`` environment
variable (TensorFlow's convention), e.g. on host A::

    TF_CONFIG='{"cluster": {"worker": ["hostA:12345", "hostB:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        tfmask train --distribution_strategy multi_worker_mirrored ...

and the same command with ``"index": 1`` on host B. Worker 0 (or a ``chief``
task, if the cluster names one) is the chief: it owns the model dir
(checkpoints, params.yaml, metrics.json, summaries); the other workers keep
their copies in temporary folders, as Model Garden does for checkpoints.
The strategy must be created before TensorFlow runs anything else in the
process, which is why :func:`create_strategy` comes first in a run.
"""

from __future__ import annotations

from typing import Tuple

from tfmask.errors import ConfigError


def create_strategy(params):
    """The ``tf.distribute`` strategy ``params.runtime`` asks for."""
    from official.common import distribute_utils

    try:
        return distribute_utils.get_distribution_strategy(
            distribution_strategy=params.runtime.distribution_strategy,
            num_gpus=params.runtime.num_gpus)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot set up distribution_strategy "
                          f"{params.runtime.distribution_strategy}: {exc}",
                          params=("distribution_strategy",)) from None


def worker(strategy) -> Tuple[str, int, bool]:
    """(task type, task index, is chief) of this process; one process is chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) if resolver is not None else None
    if not task_type:
        return "worker", 0, True
    task_id = int(resolver.task_id or 0)
    cluster = resolver.cluster_spec().as_dict()
    chief = task_type == "chief" if "chief" in cluster else (task_type == "worker"
                                                             and task_id == 0)
    return task_type, task_id, chief


def check_batches(params, replicas: int) -> None:
    """Global batch sizes must split evenly over the replicas."""
    for name, data in (("train_config.batch_size", params.task.train_data),
                       ("eval_config.batch_size", params.task.validation_data)):
        if data.global_batch_size % replicas:
            raise ConfigError(f"{name} {data.global_batch_size} does not split evenly over "
                              f"{replicas} replicas; use a multiple of {replicas}")


def describe(params, strategy) -> str:
    """One line for the log: the strategy, replicas and this worker."""
    task_type, task_id, chief = worker(strategy)
    line = (f"distribution: {params.runtime.distribution_strategy} over "
            f"{strategy.num_replicas_in_sync} replicas")
    if getattr(strategy, "cluster_resolver", None) is not None:
        line += f" ({task_type} {task_id}{', chief' if chief else ''})"
    return line
