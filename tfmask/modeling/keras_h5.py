"""Loading Keras ``.h5`` weight files into a model by layer name.

Keras Applications publish ImageNet weights in the legacy Keras h5 format:
``layer_names`` at the top (or under ``model_weights`` for a whole saved
model), one group per layer with a ``weight_names`` attribute. Layers that
Keras leaves auto-named (``conv2d_7``, ``batch_normalization_7``) are numbered
by creation order, and that numbering depends on what the process built
before, so they match here by rank within their prefix; explicitly named
layers match exactly. Used for the Inception-ResNet-v2 backbone
(:mod:`tfmask.modeling.inception_resnet_v2`).
"""

from __future__ import annotations

import collections
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import h5py
import numpy as np
import tf_keras

from tfmask.errors import DataError, PathLike

# Layer classes Keras leaves auto-named in InceptionResNetV2; only these are
# matched by rank when loading (everything else matches by exact name).
AUTO_PREFIXES = ("conv2d", "batch_normalization", "activation")
_AUTO_NAME = re.compile(r"^(%s)(?:_(\d+))?$" % "|".join(AUTO_PREFIXES))


@dataclass
class H5LoadReport:
    """What :func:`load_keras_h5_weights` did.

    Attributes:
      matched: model weight names (``layer/kernel``) that received file values.
      missing: model weight names the file did not provide (left unchanged).
      unused: file weight names (as stored in ``weight_names``) nothing used.
    """

    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)


def _string_list_attr(group, name: str) -> Optional[List[str]]:
    """Reads a Keras string-list attribute, possibly chunked as name0, name1, ..."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{name}{len(chunks)}"])
        if not chunks:
            return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v)
            for chunk in chunks for v in np.atleast_1d(chunk)]


def _read_h5_layers(path: PathLike) -> Dict[str, List[Tuple[str, np.ndarray]]]:
    """``{layer name: [(weight name, value), ...]}`` for layers that have weights."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(path, f"not an HDF5 file ({e})", kind="unreadable") from e
    with f:
        root = f
        if "layer_names" not in f.attrs and "model_weights" in f:
            root = f["model_weights"]  # a whole model saved with model.save('x.h5')
        layer_names = _string_list_attr(root, "layer_names")
        if layer_names is None:
            raise DataError(path, "not a Keras weights .h5 file (no 'layer_names' attribute)",
                            kind="unreadable")
        layers = {}
        for layer_name in layer_names:
            if layer_name not in root:
                raise DataError(path, f"layer {layer_name!r} is listed but has no group",
                                kind="unreadable")
            group = root[layer_name]
            weight_names = _string_list_attr(group, "weight_names") or []
            try:
                values = [(w, np.asarray(group[w])) for w in weight_names]
            except KeyError as e:
                raise DataError(path, f"layer {layer_name!r}: weight listed but absent ({e})",
                                kind="unreadable") from e
            if values:
                layers[layer_name] = values
    return layers


def _match_keys(names: Sequence[str], where: str, path: PathLike) -> Dict[str, str]:
    """Maps each name to a match key: itself, or ``prefix#rank`` for auto names.

    Auto names are ranked by their number within their prefix (bare
    ``conv2d`` is number 0), so ``conv2d, conv2d_1, ...`` and ``conv2d_1,
    conv2d_2, ...`` give the same keys.
    """
    keys = {}
    numbered = collections.defaultdict(list)
    for name in names:
        m = _AUTO_NAME.match(name)
        if m:
            numbered[m.group(1)].append((int(m.group(2) or 0), name))
        else:
            keys[name] = name
    for prefix, items in numbered.items():
        items.sort()
        if len({number for number, _ in items}) != len(items):
            raise DataError(path, f"{where} has two {prefix!r} layers with the same number",
                            kind="unreadable")
        for rank, (_, name) in enumerate(items):
            keys[name] = f"{prefix}#{rank}"
    return keys


def _short(weight_name: str) -> str:
    """``'conv2d_3/kernel:0'`` -> ``'kernel'``."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def load_keras_h5_weights(model: tf_keras.Model, path: PathLike) -> H5LoadReport:
    """Loads Keras InceptionResNetV2 weights from a .h5 file into ``model`` by name.

    Reads the legacy Keras h5 weights format with h5py (``layer_names`` at the
    top, or under ``model_weights`` for a whole saved model; one group per
    layer with a ``weight_names`` attribute). Only layers named the Keras way
    load: explicit names (``mixed_5b``, ``block35_1_conv``, ``conv_7b_bn``,
    ...) match exactly; auto names (``conv2d``, ``batch_normalization``,
    ``activation``) match by rank within their prefix, so files numbered from
    0 (a fresh ``tf_keras`` session), from 1 (the published keras-applications
    files) or from any offset load alike. Anything else (for example the
    ``predictions`` classifier of a full-model file) ends up in ``unused``.
    Within a layer, weights pair by their short name (``kernel``,
    ``moving_mean``, ...) when both sides have the same set, else in order.
    Every shape is checked before any value is assigned.

    Args:
      model: the model to fill, e.g. from :func:`build_inception_resnet_v2`.
      path: the .h5 file.

    Returns:
      An :class:`H5LoadReport`.

    Raises:
      DataError: the file is missing, is not a Keras weights h5, has a
        different number of auto-named layers than the model, or a weight
        whose count or shape differs from the model's (naming the layer and
        both shapes).
    """
    if not os.path.isfile(path):
        raise DataError(path, "weights file not found", kind="missing_file")
    file_layers = _read_h5_layers(path)
    model_layers = {layer.name: layer for layer in model.layers
                    if layer.trainable_weights + layer.non_trainable_weights}
    file_keys = _match_keys(list(file_layers), "the file", path)
    model_keys = _match_keys(list(model_layers), "the model", path)
    _check_auto_counts(file_keys, model_keys, path)
    model_by_key = {key: model_layers[name] for name, key in model_keys.items()}

    report = H5LoadReport()
    assignments = []
    loaded_layers = set()
    for file_name, values in file_layers.items():
        layer = model_by_key.get(file_keys[file_name])
        if layer is None:
            report.unused.extend(name for name, _ in values)
            continue
        for weight, short, value in _pair_weights(file_name, values, layer, path):
            assignments.append((weight, value))
            report.matched.append(f"{layer.name}/{short}")
        loaded_layers.add(layer.name)
    for name, layer in model_layers.items():
        if name not in loaded_layers:
            report.missing.extend(f"{name}/{_short(w.name)}"
                                  for w in layer.trainable_weights + layer.non_trainable_weights)
    tf_keras.backend.batch_set_value(assignments)
    return report


def _check_auto_counts(file_keys: Dict[str, str], model_keys: Dict[str, str],
                       path: PathLike) -> None:
    """Auto-numbered layers match by rank only when both sides have as many of them."""
    for prefix in AUTO_PREFIXES:
        in_file = sum(k.startswith(prefix + "#") for k in file_keys.values())
        in_model = sum(k.startswith(prefix + "#") for k in model_keys.values())
        if in_file and in_file != in_model:
            raise DataError(path, f"the file has {in_file} {prefix!r} layers with weights, "
                            f"the model {in_model}; auto-numbered names cannot be matched",
                            kind="shape_mismatch")


def _pair_weights(file_name: str, values, layer, path: PathLike):
    """[(model weight, its short name, file value)] of one layer, shapes checked: by short
    name when both sides have the same set, else in order."""
    weights = layer.trainable_weights + layer.non_trainable_weights
    if len(weights) != len(values):
        raise DataError(path, f"layer {file_name!r} has {len(values)} weights, model layer "
                        f"{layer.name!r} has {len(weights)}", kind="shape_mismatch")
    file_short = [_short(name) for name, _ in values]
    model_short = [_short(w.name) for w in weights]
    if sorted(file_short) == sorted(model_short) and len(set(file_short)) == len(values):
        by_short = dict(zip(file_short, values))
        values = [by_short[s] for s in model_short]
    pairs = []
    for weight, short, (file_weight, value) in zip(weights, model_short, values):
        if tuple(weight.shape) != value.shape:
            raise DataError(path, f"layer {file_name!r} weight {file_weight!r} has shape "
                            f"{value.shape}, model layer {layer.name!r} expects "
                            f"{tuple(weight.shape)}", kind="shape_mismatch")
        pairs.append((weight, short, value))
    return pairs
