"""Warm start: a model's initial weights from a checkpoint, with a report.

The OD API's ``fine_tune_checkpoint_type`` semantics, on Model Garden models:

* ``classification`` (modules ``backbone``): every backbone variable must be
  restored, or it fails naming what is missing. A TF checkpoint with a root
  ``backbone`` object (Model Garden classification/detection checkpoints) or,
  for Inception-ResNet-v2, a Keras ImageNet ``.h5`` weights file.
* ``detection`` / ``full`` (modules ``all``): every variable whose checkpoint
  entry exists with the same shape is restored; the rest (e.g. class-count
  dependent head layers when the number of classes changed) keep their
  initial values and are listed. Restoring nothing at all is an error.

Matching follows TensorFlow's object-based checkpoints: a variable's path of
attribute names from the root (``model/backbone/...``) is walked through the
checkpoint's saved object graph, as ``tf.train.Checkpoint.restore`` does, so
objects saved under several paths (Model Garden saves ``backbone`` both at
the root and under ``model``) are found either way.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from tfmask.errors import ConfigError, DataError

# Names Model Garden's init_checkpoint_modules may contain besides "all".
_MODULES = ("backbone", "decoder")
_SHOWN = 8  # unmatched names listed in a summary


@dataclass
class WarmStartReport:
    """What a warm start restored.

    Attributes:
      source: the checkpoint prefix or .h5 file read.
      scope: ``all`` or the restored modules (``backbone``, ``decoder``).
      matched: variable paths restored.
      missing: model variable paths with no checkpoint entry (kept initial values).
      shape_mismatch: (path, model shape, checkpoint shape) skipped.
      unused: checkpoint entries under the restored roots that no variable took.
    """

    source: str
    scope: str
    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    shape_mismatch: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(
        default_factory=list)
    unused: List[str] = field(default_factory=list)

    def summary_lines(self) -> List[str]:
        total = len(self.matched) + len(self.missing) + len(self.shape_mismatch)
        lines = [f"warm start from {self.source} ({self.scope}): {len(self.matched)} of "
                 f"{total} variables restored"]
        if self.shape_mismatch:
            shown = ", ".join(f"{p} {list(m)} vs {list(c)}"
                              for p, m, c in self.shape_mismatch[:_SHOWN])
            lines.append(f"  not restored, shape differs ({len(self.shape_mismatch)}): {shown}")
        if self.missing:
            lines.append(f"  not in the checkpoint ({len(self.missing)}): "
                         f"{', '.join(self.missing[:_SHOWN])}")
        if self.unused:
            lines.append(f"  checkpoint entries not used ({len(self.unused)}): "
                         f"{', '.join(self.unused[:_SHOWN])}")
        return lines


def model_variables(roots: Dict[str, object]) -> Dict[Tuple[str, ...], object]:
    """Every variable under ``roots`` keyed by its first breadth-first path.

    This is the path TensorFlow's checkpointing assigns (breadth-first over
    ``tf.train.TrackableView`` children from the root).
    """
    import tensorflow as tf

    out: Dict[Tuple[str, ...], object] = {}
    seen = set()
    queue = collections.deque()
    for name, obj in roots.items():
        if id(obj) not in seen:
            seen.add(id(obj))
            queue.append((obj, (name,)))
    while queue:
        obj, path = queue.popleft()
        if isinstance(obj, tf.Variable):
            out[path] = obj
            continue
        for name, child in tf.train.TrackableView(obj).children(obj).items():
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((child, path + (name,)))
    return out


class _CheckpointGraph:
    """A checkpoint's saved object graph: walk attribute paths to variable keys."""

    def __init__(self, prefix: str):
        import tensorflow as tf
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        self.reader = tf.train.load_checkpoint(prefix)
        self.shapes = self.reader.get_variable_to_shape_map()
        if "_CHECKPOINTABLE_OBJECT_GRAPH" not in self.shapes:
            raise DataError(prefix, "not an object-based TF2 checkpoint (no object graph); "
                            "TF1 name-based checkpoints are not supported")
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(self.reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        self.nodes = graph.nodes

    def _child(self, node_id: int, name: str) -> Optional[int]:
        for ref in self.nodes[node_id].children:
            if ref.local_name == name:
                return ref.node_id
        return None

    def key(self, path: Sequence[str]) -> Optional[str]:
        """The checkpoint key of the variable at ``path``, or None."""
        node = 0
        for name in path:
            node = self._child(node, name)
            if node is None:
                return None
        for attr in self.nodes[node].attributes:
            if attr.name == "VARIABLE_VALUE":
                return attr.checkpoint_key
        return None

    def keys_under(self, root_names: Sequence[str]) -> Dict[str, str]:
        """checkpoint key -> a readable path, for variables under the named roots."""
        out: Dict[str, str] = {}
        seen = set()
        queue = collections.deque()
        for name in root_names:
            node = self._child(0, name)
            if node is not None:
                queue.append((node, name))
        while queue:
            node, path = queue.popleft()
            if node in seen:
                continue
            seen.add(node)
            for attr in self.nodes[node].attributes:
                if attr.name == "VARIABLE_VALUE":
                    out.setdefault(attr.checkpoint_key, path)
            for ref in self.nodes[node].children:
                queue.append((ref.node_id, f"{path}/{ref.local_name}"))
        return out


def _modules(modules: Union[str, Sequence[str]]) -> List[str]:
    text = modules if isinstance(modules, str) else ",".join(modules)
    if text.strip() == "all":
        return ["all"]
    chosen = [m for m in _MODULES if m in text]
    if not chosen:
        raise ConfigError(f"init_checkpoint_modules {modules!r} names no module; valid: all, "
                          f"{', '.join(_MODULES)}")
    return chosen


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix (a folder means its newest checkpoint) or a .h5 file."""
    import tensorflow as tf

    if path.endswith(".h5"):
        if not tf.io.gfile.exists(path):
            raise DataError(path, "weights file not found (see pretrained/README.md; "
                            "`make pretrained` downloads it)")
        return path
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise DataError(path, "no checkpoint found in this folder")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise DataError(path, "checkpoint not found (expected PREFIX.index and "
                        "PREFIX.data-*, or a folder holding a `checkpoint` file)")
    return path


def _warm_start_h5(model, path: str, modules: List[str]) -> WarmStartReport:
    from tfmask.modeling.keras_h5 import load_keras_h5_weights

    if modules != ["backbone"]:
        raise ConfigError(f"{path}: Keras .h5 weights initialize the backbone only; use "
                          "fine_tune_checkpoint_type: \"classification\"")
    if model.backbone.name != "inception_resnet_v2":
        raise ConfigError(f"{path}: Keras .h5 weights are supported for the "
                          f"Inception-ResNet-v2 backbone, not {model.backbone.name!r}")
    loaded = load_keras_h5_weights(model.backbone, path)
    report = WarmStartReport(path, "backbone", matched=list(loaded.matched),
                             missing=list(loaded.missing), unused=list(loaded.unused))
    if report.missing:
        raise DataError(path, f"{len(report.missing)} backbone weights are not in the file "
                        f"(first: {', '.join(report.missing[:_SHOWN])}); a classification "
                        "init must restore the whole backbone")
    return report


def warm_start(model, checkpoint: str,
               modules: Union[str, Sequence[str]] = "all") -> WarmStartReport:
    """Restores ``model`` (a Model Garden Mask R-CNN) from ``checkpoint``.

    Args:
      model: the built model (variables exist).
      checkpoint: a checkpoint prefix, a folder (newest checkpoint) or a .h5 file.
      modules: ``all``, or a string/list naming ``backbone`` and/or ``decoder``.

    Returns:
      The report; its summary lines say what matched and what did not.

    Raises:
      DataError: unreadable checkpoint; a module init that leaves variables
        unrestored; an ``all`` init that restores nothing.
    """
    chosen = _modules(modules)
    path = resolve_checkpoint(str(checkpoint))
    if path.endswith(".h5"):
        return _warm_start_h5(model, path, chosen)
    roots = ({"model": model} if chosen == ["all"]
             else {name: getattr(model, name) for name in chosen})
    graph = _CheckpointGraph(path)
    report = WarmStartReport(path, ",".join(chosen))
    assignments = []
    used = set()
    for var_path, var in model_variables(roots).items():
        readable = "/".join(var_path)
        key = graph.key(var_path)
        if key is None:
            report.missing.append(readable)
            continue
        model_shape = tuple(var.shape.as_list())
        ckpt_shape = tuple(graph.shapes[key])
        if model_shape != ckpt_shape:
            report.shape_mismatch.append((readable, model_shape, ckpt_shape))
            continue
        used.add(key)
        report.matched.append(readable)
        assignments.append((var, key))
    report.unused = sorted(p for k, p in graph.keys_under(list(roots)).items() if k not in used)
    if chosen != ["all"] and (report.missing or report.shape_mismatch):
        bad = report.missing + [p for p, _, _ in report.shape_mismatch]
        raise DataError(path, f"{len(bad)} of {len(bad) + len(report.matched)} "
                        f"{'/'.join(chosen)} variables cannot be restored (first: "
                        f"{', '.join(bad[:_SHOWN])}); a classification init must restore "
                        "the whole backbone")
    if not report.matched:
        raise DataError(path, "no variable of this checkpoint matches the model (OD API "
                        "zoo checkpoints use other names; use a Model Garden or tfmask "
                        "checkpoint)")
    for var, key in assignments:
        var.assign(graph.reader.get_tensor(key))
    return report
