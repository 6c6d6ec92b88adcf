"""Swapping layers of a Model Garden model before its first call.

tfmask replaces a few of Model Garden's layers with subclasses
(:mod:`tfmask.modeling.foreground_masks`, :mod:`tfmask.modeling.proposals`).
A ``MaskRCNNModel`` takes its layers as constructor arguments, so the swap
rebuilds the model by its own class from its config with the new layers; every
other layer is the same object, and the names (so the variable names Model
Garden checkpoints hold) stay Model Garden's.
"""

from __future__ import annotations


def recast(layer, cls):
    """A ``cls`` layer with ``layer``'s config and name (``cls`` subclasses its class)."""
    return cls(**layer.get_config(), name=layer.name)


def with_layers(model, **layers):
    """``model`` (not yet called) rebuilt with ``layers`` (constructor argument -> layer)
    in place of its own."""
    return type(model)(**{**model.get_config(), **layers}, name=model.name)
