"""Export formats and the export folder's ``export.json``, importable without TensorFlow.

``tfmask export --format`` writes the SavedModel always and, for ``onnx`` or
``openvino``, a converted copy of it beside (:mod:`tfmask.export.convert`)::

    OUT/saved_model/            every format
    OUT/onnx/model.onnx         --format onnx      (tf2onnx; run by ONNX Runtime)
    OUT/openvino/model.xml+.bin --format openvino  (openvino.convert_model)
    OUT/export.json             {"format": ..., "model": ..., "input_type": ..., ...}

``export.json`` is what :func:`tfmask.inference.runtimes.open_runtime` (and so
``Predictor``, ``tfmask infer`` and ``tfmask eval --export-dir``) reads to pick
the runtime; a folder without one (an export older than this file) is a
SavedModel export. The runtimes are an optional extra: ``pip install
'tfmask[runtimes]'`` (:func:`require_module` names it when one is missing).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict

from tfmask.errors import ConfigError, DataError, PathLike

FORMATS = ("savedmodel", "onnx", "openvino")
DEFAULT_FORMAT = "savedmodel"
INFO_NAME = "export.json"
# Format -> the model it runs, relative to the export folder.
MODEL_PATHS = {"savedmodel": "saved_model", "onnx": "onnx/model.onnx",
               "openvino": "openvino/model.xml"}
# Converted formats take pixels: the string inputs decode in TF ops that neither
# converter has (DecodeImage, ParseSingleExample).
CONVERTED_INPUT_TYPES = ("image_tensor", "float_image_tensor")
EXTRA = "runtimes"  # pyproject's optional extra holding the packages below
# Format -> (import name, pip package) needed to convert to it (first) and run it.
PACKAGES = {"onnx": (("tf2onnx", "tf2onnx"), ("onnxruntime", "onnxruntime")),
            "openvino": (("openvino", "openvino"),)}


@dataclass
class ExportInfo:
    """What ``OUT/export.json`` records.

    Attributes:
      format: one of ``FORMATS``; model: the model file or folder it runs,
        relative to the export folder (``MODEL_PATHS[format]``).
      input_type: the signature input (``tfmask.export.signature.INPUT_TYPES``).
      min_score: detections below it were dropped by the exported graph.
      outputs: output name -> ``"dtype [shape]"`` of the SavedModel's signature
        (``None`` for an unknown dimension); every runtime returns these.
      tolerance / max_abs_diff: the converted model's check against the
        SavedModel (empty for ``savedmodel``).
      unpaired_detections: in that check, the most detections of one image that only one
        of the two had (near-tied proposals; see ``tfmask.export.convert.UNPAIRED_SHARE``).
    """

    format: str = DEFAULT_FORMAT
    model: str = MODEL_PATHS[DEFAULT_FORMAT]
    input_type: str = "image_tensor"
    min_score: float = 0.0
    outputs: Dict[str, str] = field(default_factory=dict)
    tolerance: Dict[str, float] = field(default_factory=dict)
    max_abs_diff: Dict[str, float] = field(default_factory=dict)
    unpaired_detections: int = 0

    def write(self, export_dir: PathLike) -> Path:
        """Writes ``export_dir/export.json`` (inside a folder being built: not atomic)."""
        path = Path(export_dir) / INFO_NAME
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")
        return path


def check_format(fmt: str, param: str = "format") -> str:
    """``fmt`` if it is one of ``FORMATS``; else ConfigError with the valid names."""
    if fmt not in FORMATS:
        raise ConfigError(f"{param} '{fmt}' is unknown; valid: {', '.join(FORMATS)}",
                          params=(param,))
    return fmt


def read_info(export_dir: PathLike) -> ExportInfo:
    """The export's ``export.json``; a SavedModel export's defaults without one.

    Raises:
      DataError: ``export.json`` does not parse, or names an unknown format.
    """
    path = Path(export_dir) / INFO_NAME
    if not path.is_file():
        return ExportInfo()
    try:
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in ExportInfo.__dataclass_fields__}
        info = ExportInfo(**known)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(path, f"is not an export description ({exc})") from None
    if info.format not in FORMATS:
        raise DataError(path, f"format '{info.format}' is unknown to this tfmask; valid: "
                        f"{', '.join(FORMATS)}")
    return info


def require_module(fmt: str, name: str):
    """Imports the package ``name`` that format ``fmt`` needs.

    Raises:
      ConfigError: it is not installed (the message names the pip extra).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        pip_name = dict(PACKAGES.get(fmt, ())).get(name, name)
        raise ConfigError(f"format '{fmt}' needs the {pip_name} package, which is not "
                          f"installed: pip install 'tfmask[{EXTRA}]'") from None


def require_packages(fmt: str) -> None:
    """Fails early (before any export work) when ``fmt``'s packages are missing."""
    for name, _ in PACKAGES.get(fmt, ()):
        require_module(fmt, name)


def check_export_format(fmt: str, input_type: str, mixed_precision: str,
                        full_image_masks: bool = False) -> None:
    """Fails early (before any export work) on a format this export cannot have:
    unknown, a string input or bfloat16 for a converted format, full-image masks
    for ``openvino``, or one whose packages are not installed.

    ``openvino.convert_model`` (2026.4) cannot convert the full-image mask paste:
    its ``CropAndResize`` output size is the input image's, known only at run time
    ("Input 3 cannot be folded to Constant for node CropAndResize"). Predictor,
    ``tfmask infer`` and ``tfmask eval`` paste the box-relative
    ``detection_masks`` themselves, so they do not need it."""
    if check_format(fmt) == DEFAULT_FORMAT:
        return
    if fmt == "openvino" and full_image_masks:
        raise ConfigError("format 'openvino' cannot convert full_image_masks (the paste's "
                          "output size is the input image's, which OpenVINO's converter "
                          "needs constant); export without full_image_masks: Predictor, "
                          "tfmask infer and tfmask eval paste detection_masks onto the "
                          "image themselves, or use format 'savedmodel' or 'onnx'",
                          params=("format", "full_image_masks"))
    if input_type not in CONVERTED_INPUT_TYPES:
        raise ConfigError(f"format '{fmt}' takes pixels: input_type must be one of "
                          f"{', '.join(CONVERTED_INPUT_TYPES)}, not '{input_type}'",
                          params=("format", "input_type"))
    if mixed_precision != "float32":
        raise ConfigError(f"format '{fmt}' converts a float32 graph; mixed_precision "
                          f"'{mixed_precision}' exports only as savedmodel",
                          params=("format", "mixed_precision"))
    require_packages(fmt)
