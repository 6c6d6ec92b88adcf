"""tfmask: photos + mask PNGs -> trained, exported Mask R-CNN on TF Model Garden.

Run ``tfmask --help`` for the command line; the library entry points live in
the submodules (``tfmask.convert``, ``tfmask.records``, ...).
"""

__version__ = "0.1.0"
