"""Error types that tfmask raises for bad user input.

Every error a user can cause names the file it is about and the reason, so the
CLI can print one actionable line and exit non-zero without a traceback.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


class TfmaskError(Exception):
    """Base class of every error tfmask reports to the user as one line.

    Library functions name their own parameters in the message (``val_fraction
    must be in [0, 1)``) and list them in ``params``; the ``tfmask`` command
    shows each as the flag that sets it (``--val-fraction``).

    Attributes:
      params: names of the library parameters the message mentions.
    """

    def __init__(self, *args, params: Sequence[str] = ()):
        super().__init__(*args)
        self.params = tuple(params)


class ConfigError(TfmaskError):
    """An invalid option combination or configuration value."""


class DataError(TfmaskError):
    """A problem with one input file (image, mask, XML, label map, JSON, config).

    Attributes:
      path: the file the problem is in (``None`` when there is no single file).
      reason: what is wrong, phrased so the user knows what to change.
      kind: a short machine-readable problem kind used by validation summaries
        (for example ``missing_mask`` or ``size_mismatch``).
    """

    def __init__(self, path: Optional[PathLike], reason: str, kind: str = "invalid",
                 params: Sequence[str] = ()):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}" if self.path else reason, params=params)
