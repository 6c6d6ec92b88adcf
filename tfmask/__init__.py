"""tfmask: photos + mask PNGs -> trained, exported Mask R-CNN on TF Model Garden.

Run ``tfmask --help`` for the command line; the library entry points live in
the submodules (``tfmask.data.convert``, ``tfmask.data.records``, ...). ``tfmask.Predictor``
and ``tfmask.Detections`` (:mod:`tfmask.inference.predictor`) are imported on first use,
so ``import tfmask`` stays cheap (no TensorFlow).
"""

__version__ = "0.1.0"

_LAZY = {"Predictor": "tfmask.inference.predictor", "Detections": "tfmask.inference.predictor"}
__all__ = ["Predictor", "Detections", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfmask' has no attribute '{name}'")
