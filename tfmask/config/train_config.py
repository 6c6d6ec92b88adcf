"""The ``train_config`` half of the pipeline.config translation.

Optimizer and learning-rate schedule, data augmentation and staged training
(``freeze_variables`` / ``update_trainable_variables``), each returned as the
Model Garden config dict the sections :func:`schedule` and :func:`augmentation`
(run by :func:`tfmask.config.translate.translate`) write into the experiment.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from tfmask.config.fields import Fields, Ledger
from tfmask.errors import ConfigError


def schedule(ex: Ledger) -> None:
    """``num_steps``, the optimizer and its learning-rate schedule; checkpoint cadence."""
    num_steps = ex.train.get_int("num_steps", 0, minimum=0) or 200000
    ex.update("trainer", {"train_steps": num_steps,
                          "optimizer_config": optimizer(ex.train, num_steps),
                          "steps_per_loop": 1, "summary_interval": 1,
                          "checkpoint_interval": 1000, "max_to_keep": 5,
                          "validation_interval": 1000, "validation_steps": -1})


def augmentation(ex: Ledger) -> None:
    """``data_augmentation_options`` -> Model Garden's parser and tfmask's augmentation."""
    ex.update("task.train_data.parser", augmentations(ex.train))

# Parts of Model Garden's Mask R-CNN that freeze_variables / update_trainable_variables
# patterns select (its `checkpoint_items`); a pattern matches a group by re.search.
TRAINABLE_GROUPS = ("backbone", "decoder", "rpn_head", "detection_head", "mask_head")


def learning_rate(lr: Fields, num_steps: int) -> Tuple[dict, Optional[dict]]:
    """(Model Garden learning_rate, warmup) config dicts from an OD API learning_rate."""
    kind, f = lr.oneof()
    if kind == "constant_learning_rate":
        return {"type": "constant",
                "constant": {"learning_rate": f.get_float("learning_rate", 0.002)}}, None
    if kind == "cosine_decay_learning_rate":
        base = f.get_float("learning_rate_base", 0.002)
        total = f.get_int("total_steps", num_steps)
        warmup_steps = f.get_int("warmup_steps", 0, minimum=0)
        f.expect("hold_base_rate_steps", 0)
        sched = {"type": "cosine", "cosine": {"initial_learning_rate": base,
                                              "decay_steps": max(total, 1)}}
        warm = None
        if warmup_steps:
            warm = {"type": "linear", "linear": {
                "warmup_steps": warmup_steps,
                "warmup_learning_rate": f.get_float("warmup_learning_rate", 0.0)}}
        return sched, warm
    if kind == "manual_step_learning_rate":
        initial = f.get_float("initial_learning_rate", 0.002)
        steps, values = [], [initial]
        for item in f.subs("schedule"):
            steps.append(item.get_int("step"))
            values.append(item.get_float("learning_rate"))
        if steps != sorted(steps):
            raise ConfigError("manual_step_learning_rate.schedule steps must increase")
        warm = None
        if f.get("warmup", False) and steps:
            warm = {"type": "linear", "linear": {"warmup_steps": steps[0],
                                                 "warmup_learning_rate": 0.0}}
        if not steps:
            return {"type": "constant", "constant": {"learning_rate": initial}}, warm
        return {"type": "stepwise", "stepwise": {"boundaries": steps, "values": values}}, warm
    if kind == "exponential_decay_learning_rate":
        sched = {"type": "exponential", "exponential": {
            "initial_learning_rate": f.get_float("initial_learning_rate", 0.002),
            "decay_steps": f.get_int("decay_steps", 4000000, minimum=1),
            "decay_rate": f.get_float("decay_factor", 0.95),
            "staircase": f.get_bool("staircase", True)}}
        warm = None
        burnin_steps = f.get_int("burnin_steps", 0, minimum=0)
        if burnin_steps:
            warm = {"type": "linear", "linear": {
                "warmup_steps": burnin_steps,
                "warmup_learning_rate": f.get_float("burnin_learning_rate", 0.0)}}
        f.expect("min_learning_rate", 0.0)
        return sched, warm
    raise ConfigError(f"unsupported learning rate '{kind}'; valid: constant_learning_rate, "
                      "cosine_decay_learning_rate, manual_step_learning_rate, "
                      "exponential_decay_learning_rate")


def optimizer(train: Fields, num_steps: int) -> dict:
    opt = train.sub("optimizer")
    opt.expect("use_moving_average", False)
    kind, f = opt.oneof()
    clip = train.get_float("gradient_clipping_by_norm", 0.0, minimum=0.0)
    if kind == "momentum_optimizer":
        opt_cfg = {"type": "sgd",
                   "sgd": {"momentum": f.get_float("momentum_optimizer_value", 0.9)}}
    elif kind == "adam_optimizer":
        opt_cfg = {"type": "adam", "adam": {"epsilon": f.get_float("epsilon", 1e-8)}}
    elif kind is None:
        raise ConfigError("train_config.optimizer is missing; use momentum_optimizer or "
                          "adam_optimizer")
    else:
        raise ConfigError(f"unsupported optimizer '{kind}'; valid: momentum_optimizer, "
                          "adam_optimizer")
    if clip:
        opt_cfg[opt_cfg["type"]]["global_clipnorm"] = float(clip)
    lr, warmup = learning_rate(f.sub("learning_rate"), num_steps)
    out = {"optimizer": opt_cfg, "learning_rate": lr}
    if warmup:
        out["warmup"] = warmup
    return out


def frozen_groups(train: Fields) -> List[str]:
    """Groups frozen by ``freeze_variables`` / not kept by ``update_trainable_variables``.

    Heads-only training is ``freeze_variables: "backbone"``; fine-tuning just
    the mask head is ``update_trainable_variables: "mask_head"``.
    """
    import re

    def matched(patterns: List[str], field_name: str) -> set:
        out = set()
        for pattern in patterns:
            try:
                hits = {g for g in TRAINABLE_GROUPS if re.search(str(pattern), g)}
            except re.error as exc:
                raise ConfigError(f"train_config.{field_name} '{pattern}' is not a valid "
                                  f"regular expression: {exc}") from None
            if not hits:
                raise ConfigError(f"train_config.{field_name} '{pattern}' matches no part of "
                                  f"the model; parts: {', '.join(TRAINABLE_GROUPS)}")
            out |= hits
        return out

    frozen = matched(train.get_all("freeze_variables"), "freeze_variables")
    keep = train.get_all("update_trainable_variables")
    if keep:
        frozen |= set(TRAINABLE_GROUPS) - matched(keep, "update_trainable_variables")
    if frozen == set(TRAINABLE_GROUPS):
        raise ConfigError("freeze_variables / update_trainable_variables leave nothing to train")
    return [g for g in TRAINABLE_GROUPS if g in frozen]


# OD API data_augmentation_options tfmask applies to image, boxes and masks.
# Flips and scale jitter run in Model Garden's parser; the rest in
# tfmask.training.augment (random_rotation is tfmask's own: +-max_degrees).
AUGMENTATIONS = ("random_horizontal_flip", "random_vertical_flip", "random_image_scale",
                 "random_rotation90", "random_rotation", "random_adjust_brightness",
                 "random_adjust_contrast", "random_adjust_hue", "random_adjust_saturation",
                 "random_distort_color")


def _probability(opts: Fields, name: str, default: float = 0.5) -> float:
    value = opts.get_float("probability", default)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}.probability must be in [0, 1], got {value}")
    return value


def augmentations(train: Fields) -> Dict[str, Any]:
    """Model Garden parser settings (with tfmask's ``augmentation`` block).

    Model Garden flips with probability 0.5 only, so a flip ``probability``
    other than 0.5 is left unhonoured (listed) rather than approximated.
    """
    parser: Dict[str, Any] = {"aug_rand_hflip": False, "aug_rand_vflip": False,
                              "aug_scale_min": 1.0, "aug_scale_max": 1.0}
    aug: Dict[str, Any] = {}
    for step in train.subs("data_augmentation_options"):
        name, opts = step.oneof()
        if name in ("random_horizontal_flip", "random_vertical_flip"):
            parser["aug_rand_hflip" if name == "random_horizontal_flip"
                   else "aug_rand_vflip"] = True
            opts.expect("probability", 0.5)
        elif name == "random_image_scale":
            parser["aug_scale_min"] = opts.get_float("min_scale_ratio", 0.5)
            parser["aug_scale_max"] = opts.get_float("max_scale_ratio", 2.0)
        elif name == "random_rotation90":
            aug["rotation90_probability"] = _probability(opts, name)
        elif name == "random_rotation":
            aug["rotation_max_degrees"] = opts.get_float("max_degrees", 15.0)
            aug["rotation_probability"] = _probability(opts, name)
        elif name == "random_adjust_brightness":
            aug["brightness_max_delta"] = opts.get_float("max_delta", 0.2)
        elif name in ("random_adjust_contrast", "random_adjust_saturation"):
            key = "contrast" if name == "random_adjust_contrast" else "saturation"
            aug[f"{key}_min"] = opts.get_float("min_delta", 0.8)
            aug[f"{key}_max"] = opts.get_float("max_delta", 1.25)
        elif name == "random_adjust_hue":
            aug["hue_max_delta"] = opts.get_float("max_delta", 0.02)
        elif name == "random_distort_color":
            aug["distort_color_ordering"] = opts.get_int("color_ordering", 0)
        else:
            raise ConfigError(f"unknown augmentation '{name}'; valid: {', '.join(AUGMENTATIONS)}")
    if aug:
        from tfmask.training.augment import Augmentation

        try:
            Augmentation(**aug).validate()
        except ValueError as exc:
            raise ConfigError(f"train_config.data_augmentation_options: {exc}") from None
    parser["augmentation"] = aug
    return parser
