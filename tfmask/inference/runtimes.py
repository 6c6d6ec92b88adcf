"""Open an export folder of any format and run it: one output dict for every runtime.

``open_runtime(export_dir)`` reads ``export_dir/export.json``
(:mod:`tfmask.export.formats`) and loads the model its format runs with::

    savedmodel  TensorFlow's SavedModel loader (``saved_model/``)
    onnx        ONNX Runtime, CPU execution provider (``onnx/model.onnx``)
    openvino    OpenVINO Runtime, CPU device, latency hint (``openvino/model.xml``)

Each runtime's ``run(batch)`` takes the signature's ``input_tensor`` as a numpy
array ([B, H, W, 3] uint8 for ``image_tensor``) and returns the SavedModel
signature's outputs: the same keys, dtypes and shapes (contract in
:mod:`tfmask.export.serving`), as numpy arrays::

    from tfmask.inference.runtimes import open_runtime
    rt = open_runtime("exported/tiny")          # the format export.json names
    out = rt.run(image[None])                    # out["detection_boxes"]: [1, N, 4] float32
    sm = open_runtime("exported/tiny", fmt="savedmodel")   # the SavedModel of the same export

A runtime package that is not installed gives one ConfigError naming the pip
extra (``pip install 'tfmask[runtimes]'``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfmask.errors import ConfigError, DataError, PathLike
from tfmask.export.formats import MODEL_PATHS, ExportInfo, check_format, read_info, \
    require_module

SIGNATURE = "serving_default"
Outputs = Dict[str, np.ndarray]


def _parse_spec(text: str) -> Tuple[np.dtype, List[Optional[int]]]:
    """``"float32 [None, 20, 4]"`` -> (dtype, [None, 20, 4])."""
    dtype, _, dims = text.partition(" ")
    shape = [None if d.strip() == "None" else int(d) for d in dims.strip("[]").split(",")
             if d.strip()]
    return np.dtype(dtype), shape


class Runtime:
    """An export's model, loaded: ``run(batch) -> outputs`` (see module docstring).

    Attributes:
      format: one of ``tfmask.export.formats.FORMATS``.
      input_type: the signature's input type (``image_tensor``, ...).
      output_specs: output name -> (numpy dtype, shape with None for unknown dims).
    """

    format = ""

    def __init__(self, export_dir: Path, info: ExportInfo):
        self.export_dir = export_dir
        self.info = info
        self.input_type = info.input_type
        self.output_specs = {name: _parse_spec(spec) for name, spec in info.outputs.items()}

    @property
    def max_detections(self) -> int:
        """The static N of ``detection_scores`` [B, N]: the most detections per image."""
        return int(self.output_specs["detection_scores"][1][1])

    def run(self, batch: np.ndarray) -> Outputs:
        """The signature's outputs for ``batch`` (its ``input_tensor``)."""
        out = self._run(np.ascontiguousarray(batch))
        return {name: np.asarray(value).astype(self.output_specs[name][0], copy=False)
                if name in self.output_specs else np.asarray(value)
                for name, value in out.items()}

    def _run(self, batch: np.ndarray) -> Outputs:
        raise NotImplementedError


class SavedModelRuntime(Runtime):
    """``saved_model/`` through ``tf.saved_model.load`` (signature ``serving_default``)."""

    format = "savedmodel"

    def __init__(self, export_dir: Path, info: ExportInfo):
        import tensorflow as tf

        saved = export_dir / MODEL_PATHS["savedmodel"]
        if not (saved / "saved_model.pb").is_file():
            raise DataError(export_dir, "no saved_model/ here; give the folder "
                            "`tfmask export --export-dir` wrote")
        self._loaded = tf.saved_model.load(str(saved))
        self._serve = self._loaded.signatures[SIGNATURE]
        outputs = {name: f"{spec.dtype.name} {spec.shape.as_list()}"
                   for name, spec in self._serve.structured_outputs.items()}
        super().__init__(export_dir, ExportInfo(**{**info.__dict__, "outputs": outputs}))
        self.input_spec = self._serve.structured_input_signature[1].get("input_tensor")
        self.input_type = self._saved_input_type()

    def _saved_input_type(self) -> str:
        variable = getattr(self._loaded, "input_type", None)  # DetectionServing saves it
        if variable is not None:
            return variable.numpy().decode()
        spec = self.input_spec
        if spec is not None and spec.dtype.name == "uint8" and spec.shape.rank == 4:
            return "image_tensor"
        return "unknown" if spec is None else f"{spec.dtype.name} {spec.shape}"

    def _run(self, batch: np.ndarray) -> Outputs:
        import tensorflow as tf

        out = self._serve(input_tensor=tf.constant(batch))
        return {name: value.numpy() for name, value in out.items()}


class OnnxRuntime(Runtime):
    """``onnx/model.onnx`` through an ONNX Runtime CPU session (all graph optimizations)."""

    format = "onnx"

    def __init__(self, export_dir: Path, info: ExportInfo):
        super().__init__(export_dir, info)
        ort = require_module("onnx", "onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers, shape merges
        threads = os.environ.get("TFMASK_RUNTIME_THREADS")
        if threads:
            options.intra_op_num_threads = int(threads)
        self._session = ort.InferenceSession(str(self.model_path()), options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._names = [o.name for o in self._session.get_outputs()]

    def model_path(self) -> Path:
        path = self.export_dir / self.info.model
        if not path.is_file():
            raise DataError(self.export_dir, f"{self.info.model} is missing from this "
                            f"{self.format} export")
        return path

    def _run(self, batch: np.ndarray) -> Outputs:
        return dict(zip(self._names, self._session.run(None, {self._input: batch})))


class OpenVinoRuntime(OnnxRuntime):
    """``openvino/model.xml`` compiled for OpenVINO's CPU device, ``PERFORMANCE_HINT:
    LATENCY`` (one request at a time, all cores on it), in float32.

    ``INFERENCE_PRECISION_HINT: f32`` is explicit: on CPUs with AMX or avx512_bf16,
    OpenVINO's CPU plugin otherwise computes in bfloat16 by default, and the
    float32 export would then be checked and run at another precision than the
    SavedModel's (the likely cause of a mask mismatch of 0.72 the conversion check
    once reported; not re-run since)."""

    format = "openvino"

    def __init__(self, export_dir: Path, info: ExportInfo):  # noqa: super-init-not-called
        Runtime.__init__(self, export_dir, info)
        ov = require_module("openvino", "openvino")
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        threads = os.environ.get("TFMASK_RUNTIME_THREADS")
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        compiled = ov.Core().compile_model(str(self.model_path()), "CPU", config)
        self._request = compiled.create_infer_request()
        self._outputs = [(o, o.get_any_name()) for o in compiled.outputs]

    def _run(self, batch: np.ndarray) -> Outputs:
        result = self._request.infer({0: batch})
        # Copies: the request reuses its output buffers on the next call.
        return {name: np.array(result[port]) for port, name in self._outputs}


_RUNTIMES = {cls.format: cls for cls in (SavedModelRuntime, OnnxRuntime, OpenVinoRuntime)}


def open_runtime(export_dir: PathLike, fmt: Optional[str] = None,
                 info: Optional[ExportInfo] = None) -> Runtime:
    """Loads the model of an export folder.

    Args:
      export_dir: a ``tfmask export`` output folder.
      fmt: the format to run (default: the one ``export.json`` records); a
        converted export holds its SavedModel too, so ``"savedmodel"`` always works.
      info: the export's description, when it is not (yet) written to the folder.

    Raises:
      DataError: the folder lacks the model file, or its export.json is bad.
      ConfigError: an unknown format, a format the export does not hold, or a
        runtime package that is not installed.
    """
    folder = Path(export_dir)
    if not folder.is_dir():
        raise DataError(folder, "no such export folder", kind="missing_file")
    info = read_info(folder) if info is None else info
    fmt = info.format if fmt is None else check_format(fmt, "fmt")
    if fmt != "savedmodel" and fmt != info.format:
        raise ConfigError(f"{folder} is a {info.format} export; it holds no {fmt} model "
                          f"(export again with --format {fmt})")
    if fmt == "savedmodel" and info.format != "savedmodel":
        info = ExportInfo(**{**info.__dict__, "format": "savedmodel",
                             "model": MODEL_PATHS["savedmodel"]})
    return _RUNTIMES[fmt](folder, info)
