"""The Model Garden experiment a training run uses, and the record of it.

Two ways in: the user's OD API ``pipeline.config`` (translated by
:mod:`tfmask.config.translate`), or a Model Garden YAML experiment for power
users. Command-line flags (steps, checkpoint interval, strategy, precision)
are applied on top, and the effective config is saved into the model dir as
``params.yaml`` beside a copy of the pipeline.config.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from tfmask.errors import ConfigError, DataError, PathLike

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("float32", "float16", "bfloat16")


@dataclass
class RunOptions:
    """Flags of ``tfmask train`` that override the config.

    Attributes:
      num_train_steps: total steps (None: the config's ``num_steps``).
      checkpoint_every_n: steps between checkpoints (None: 1000 or the total).
      keep_checkpoints: how many recent checkpoints to keep.
      distribution_strategy / num_gpus: Model Garden runtime settings.
      mixed_precision: ``float16``/``bfloat16`` on GPU, ``bfloat16`` on a CPU with
        native bfloat16 (:func:`check_cpu_precision`); float32 otherwise.
      xla: compile with XLA (GPU opt-in).
      eval_on_train_data: evaluate on the training records.
      sample_1_of_n_eval_examples: evaluate on the first 1/N of the eval records.
    """

    num_train_steps: Optional[int] = None
    checkpoint_every_n: Optional[int] = None
    keep_checkpoints: int = 5
    distribution_strategy: str = "one_device"
    num_gpus: int = 0
    mixed_precision: str = "float32"
    xla: bool = False
    eval_on_train_data: bool = False
    sample_1_of_n_eval_examples: int = 1


@dataclass
class Experiment:
    """Model Garden params plus what the user should be told about them.

    ``class_names`` (label-map id -> name) labels the TensorBoard prediction
    images; a YAML experiment has none (ids are shown).
    """

    params: Any
    ignored: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    pipeline_config: Optional[str] = None
    frozen_groups: List[str] = field(default_factory=list)
    class_names: Dict[int, str] = field(default_factory=dict)


def from_pipeline_config(path: PathLike, strict: bool = False) -> Experiment:
    from tfmask.config.translate import translate

    t = translate(path, strict=strict)
    return Experiment(t.params, t.ignored, t.notes, str(path), t.frozen_groups,
                      {c.id: c.name for c in t.label_map.classes})


def _safe_yaml(path: PathLike) -> Dict[str, Any]:
    """The YAML file as a dict, read with ``yaml.safe_load``.

    Model Garden's own loader uses ``yaml.FullLoader``, which resolves
    ``!!python/name`` tags; tfmask parses files itself with the safe loader
    (plain data only) and hands Model Garden the resulting dict.
    """
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "experiment config not found", kind="missing_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the experiment config: {exc}",
                        kind="unreadable") from None
    class SafeLoader(yaml.SafeLoader):
        """Plain data only; also reads ``1e-05`` as a float, as Model Garden's loader does."""

    SafeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))
    try:
        loaded = yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise DataError(path, f"invalid YAML: {' '.join(str(exc).split())}",
                        kind="invalid") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DataError(path, f"an experiment config is a YAML mapping, not a "
                        f"{type(loaded).__name__}", kind="invalid")
    return loaded


def from_yaml(path: PathLike, params_override: str = "") -> Experiment:
    """A Model Garden experiment: ``tfmask_maskrcnn`` + YAML + overrides.

    ``tfmask_maskrcnn`` is ``maskrcnn_resnetfpn_coco`` with tfmask's additions,
    so a ``params.yaml`` saved by an earlier run loads back.
    """
    from official.core import exp_factory
    from official.modeling import hyperparams
    from tfmask.training.task import EXPERIMENT  # registers the experiment

    params = exp_factory.get_exp_config(EXPERIMENT)  # no cloud checkpoint by default
    overrides = _safe_yaml(path)
    try:
        params = hyperparams.override_params_dict(params, overrides, is_strict=True)
        if params_override:
            params = hyperparams.override_params_dict(params, params_override, is_strict=True)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    params.validate()
    return Experiment(params)


def check_cpu_precision(precision: str, param: str = "mixed_precision") -> None:
    """Refuses a precision this CPU cannot run fast when there is no GPU.

    ``bfloat16`` needs native bfloat16 arithmetic (``avx512_bf16`` or AMX;
    :mod:`tfmask.cpu_features`): elsewhere TensorFlow emulates it, which
    gains nothing. ``float16`` is a GPU precision (CPUs emulate it).

    Raises:
      ConfigError: naming ``param`` (the caller's parameter), the CPU and
        what to do instead.
    """
    if precision == "float32":
        return
    from tfmask import cpu_features

    if precision == "bfloat16":
        if cpu_features.has_native_bfloat16():
            return
        raise ConfigError(
            f"{param} bfloat16 needs a GPU or a CPU with native bfloat16 (the avx512_bf16 or "
            f"amx_bf16 flag in /proc/cpuinfo); on {cpu_features.describe()} TensorFlow would "
            f"emulate it: leave {param} out to run in float32", params=(param,))
    raise ConfigError(f"{param} float16 is a GPU option and this machine has no GPU; on a CPU "
                      "use bfloat16 (where the CPU has avx512_bf16) or float32", params=(param,))


def apply_options(exp: Experiment, opts: RunOptions) -> None:
    """Writes the command-line overrides into ``exp.params``."""
    if opts.distribution_strategy not in STRATEGIES:
        raise ConfigError(f"distribution_strategy '{opts.distribution_strategy}' is unknown; "
                          f"valid: {', '.join(STRATEGIES)}", params=("distribution_strategy",))
    if opts.mixed_precision not in PRECISIONS:
        raise ConfigError(f"mixed_precision '{opts.mixed_precision}' is unknown; valid: "
                          f"{', '.join(PRECISIONS)}", params=("mixed_precision",))
    import tensorflow as tf

    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    if not on_gpu:
        check_cpu_precision(opts.mixed_precision, "mixed_precision")
    if opts.xla and not on_gpu:
        raise ConfigError("xla is a GPU option and this machine has no GPU", params=("xla",))
    p = exp.params
    steps = opts.num_train_steps or p.trainer.train_steps
    every = opts.checkpoint_every_n or min(1000, steps)
    if steps < 1 or every < 1 or opts.keep_checkpoints < 1:
        raise ConfigError("num_train_steps, checkpoint_every_n and keep_checkpoints must be "
                          ">= 1", params=("num_train_steps", "checkpoint_every_n",
                                          "keep_checkpoints"))
    if opts.sample_1_of_n_eval_examples < 1:
        raise ConfigError("sample_1_of_n_eval_examples must be >= 1",
                          params=("sample_1_of_n_eval_examples",))
    p.override({
        "runtime": {"distribution_strategy": opts.distribution_strategy,
                    "num_gpus": opts.num_gpus, "mixed_precision_dtype": opts.mixed_precision,
                    "enable_xla": opts.xla},
        "trainer": {"train_steps": steps, "checkpoint_interval": every,
                    "max_to_keep": opts.keep_checkpoints, "validation_interval": every},
    }, is_strict=True)
    if opts.eval_on_train_data:
        p.task.validation_data.input_path = p.task.train_data.input_path


def save_record(exp: Experiment, model_dir: PathLike) -> List[Path]:
    """Saves ``params.yaml`` (and a copy of the pipeline.config) into the model dir."""
    from official.core import train_utils

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    train_utils.serialize_config(exp.params, str(model_dir))
    written = [model_dir / "params.yaml"]
    if exp.pipeline_config:
        dest = model_dir / "pipeline.config"
        if Path(exp.pipeline_config).resolve() != dest.resolve():
            shutil.copyfile(exp.pipeline_config, dest)
        written.append(dest)
    return written
