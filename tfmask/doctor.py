"""``tfmask doctor``: what this install runs on, and the known-bad combinations.

Prints the versions of Python, TensorFlow, Model Garden (tf-models-official),
tf-keras, Keras, numpy and protobuf (from package metadata, without importing
them), which Keras ``tf.keras`` is and which one Model Garden builds models
with, the GPUs TensorFlow sees with its CUDA/cuDNN build, whether oneDNN is
on, the CPU with its bfloat16/VNNI flags (:mod:`tfmask.cpu_features`), and the
free disk in the working folder. TensorFlow is probed in a child
process, so a TensorFlow that fails to import (or crashes) is reported as a
finding, never as a traceback.

Known-bad combinations (exit status 1):

* Keras 3 where Model Garden needs Keras 2: ``tf_keras`` missing or not 2.x
  (Model Garden 2.16+ builds every model with ``tf_keras``), or
  ``TF_USE_LEGACY_KERAS=1`` set without it;
* ``tensorflow`` and ``tensorflow-cpu`` (or ``-gpu``) installed together:
  they overwrite each other's files;
* TensorFlow and tf-models-official of different minor versions (Model
  Garden is released in step with TensorFlow);
* mixed precision asked for (``--mixed-precision`` or the config's
  ``runtime.mixed_precision_dtype`` / ``use_bfloat16``) on a machine where
  TensorFlow sees no GPU: float16 is a GPU precision, bfloat16 needs a GPU or
  a CPU with native bfloat16.

Run::

    tfmask doctor [--config pipeline.config|params.yaml] [--mixed-precision float16]
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Tuple

PACKAGES = ("tensorflow", "tf-models-official", "tf-keras", "keras", "numpy", "protobuf")
TF_VARIANTS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel")
PROBE_TIMEOUT_S = 180


@dataclass
class Finding:
    """One line of the report; ``bad`` ones make ``tfmask doctor`` exit 1."""

    name: str
    value: str
    bad: str = ""  # why this is a known-bad combination ("" = fine)


@dataclass
class Report:
    findings: List[Finding] = field(default_factory=list)

    def add(self, name: str, value: str, bad: str = "") -> None:
        self.findings.append(Finding(name, value, bad))

    @property
    def ok(self) -> bool:
        return not any(f.bad for f in self.findings)

    def format(self) -> str:
        width = max(len(f.name) for f in self.findings) + 2
        lines = []
        for f in self.findings:
            lines.append(f"{f.name + ':':<{width}}{f.value}")
            if f.bad:
                lines.append(f"{'':<{width}}BAD: {f.bad}")
        bad = [f for f in self.findings if f.bad]
        lines.append("")
        lines.append("no known-bad combination found" if not bad else
                     f"{len(bad)} known-bad combination(s): {', '.join(f.name for f in bad)}")
        return "\n".join(lines)


def dist_version(name: str) -> Optional[str]:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def probe_tensorflow() -> Dict:
    """What TensorFlow itself reports, from a child process.

    Returns:
      ``{"ok": True, "gpus": [...], "cuda": str|None, "cudnn": str|None,
      "onednn": bool|None, "tf_keras_module": str}``, or
      ``{"ok": False, "error": "..."}`` when the import fails or the child dies.
    """
    code = "from tfmask.doctor import _probe_main; _probe_main()"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"importing TensorFlow took over {PROBE_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        how = (f"killed by signal {-done.returncode}" if done.returncode < 0
               else f"exit status {done.returncode}")
        return {"ok": False, "error": f"importing TensorFlow failed ({how}): {tail[:300]}"}
    return json.loads(lines[-1])


def _probe_main() -> None:
    """Runs in the child: imports TensorFlow and prints one JSON line."""
    try:
        import tensorflow as tf

        info = tf.sysconfig.get_build_info()
        try:
            from tensorflow.python.util import _pywrap_util_port
            built = bool(_pywrap_util_port.IsMklEnabled())
        except (ImportError, AttributeError):
            built = None
        flag = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
        onednn = None if built is None else (built and flag not in ("0", "false", "False"))
        out = {"ok": True, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
               "cuda": info.get("cuda_version"), "cudnn": info.get("cudnn_version"),
               "onednn": onednn, "onednn_flag": flag,
               "tf_keras_module": getattr(tf.keras, "__name__", "?")}
    except Exception as exc:  # any import failure is the finding itself
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(out))


def requested_precision(config: Optional[str], flag: Optional[str]) -> Optional[str]:
    """The mixed precision a run would use: ``--mixed-precision``, else the config's.

    A Model Garden params YAML gives ``runtime.mixed_precision_dtype``; a
    pipeline.config gives ``bfloat16`` when ``train_config.use_bfloat16`` is true.
    """
    if flag:
        return None if flag == "float32" else flag
    if not config:
        return None
    from tfmask.errors import ConfigError

    path = Path(config)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config {config}: cannot read it ({exc})",
                              params=("config",)) from None
        dtype = ((doc.get("runtime") or {}).get("mixed_precision_dtype")
                 if isinstance(doc, dict) else None)
        return None if dtype in (None, "", "float32") else str(dtype)
    from tfmask.config.textproto import read_text_file

    msg = read_text_file(path)
    train = msg.get("train_config")
    use_bf16 = train.get("use_bfloat16") if train is not None else None
    return "bfloat16" if use_bf16 is True or str(use_bf16).lower() == "true" else None


def _minor(version: Optional[str]) -> Optional[str]:
    return ".".join(version.split(".")[:2]) if version else None


def _cpu(cpuinfo: Optional[str]) -> Tuple[str, bool]:
    """(one-line CPU description, whether it computes bfloat16 natively) from ``cpuinfo``
    (default ``/proc/cpuinfo``; unreadable: no flags, so no native bfloat16)."""
    from tfmask import cpu_features

    path = cpuinfo or cpu_features.CPUINFO
    return cpu_features.describe(path), cpu_features.has_native_bfloat16(path)


def diagnose(config: Optional[str] = None, mixed_precision: Optional[str] = None,
             probe=None, version=None, cwd: str = ".",
             cpuinfo: Optional[str] = None) -> Report:
    """Collects every finding; see the module docstring.

    Args:
      config: a pipeline.config or Model Garden params YAML (mixed precision).
      mixed_precision: the precision a run would be given on the command line.
      probe: the TensorFlow probe (default :func:`probe_tensorflow`; tests fake it).
      version: distribution name -> version or None (default :func:`dist_version`).
      cwd: the folder whose free disk is reported.
      cpuinfo: the ``/proc/cpuinfo`` to read the CPU's flags from (tests simulate CPUs).
    """
    probe = probe or probe_tensorflow
    version = version or dist_version
    rep = Report()
    rep.add("python", f"{platform.python_version()} ({sys.executable})")
    versions = _add_packages(rep, version)
    _add_keras(rep, versions)
    tf_info = probe()
    gpus = _add_tensorflow(rep, tf_info)
    cpu, native_bf16 = _cpu(cpuinfo)
    rep.add("CPU", cpu)
    precision = requested_precision(config, mixed_precision)
    if precision:
        _add_precision(rep, precision, tf_info, gpus, cpu, native_bf16)
    usage = shutil.disk_usage(cwd)
    rep.add("free disk", f"{usage.free / 2 ** 30:.1f} GiB of {usage.total / 2 ** 30:.1f} GiB "
            f"in {os.path.abspath(cwd)}")
    return rep


def _add_packages(rep: Report, version) -> Dict[str, Optional[str]]:
    """Package versions, TensorFlow variants installed together, TF / Model Garden minors;
    returns the versions of :data:`PACKAGES`."""
    versions = {name: version(name) for name in PACKAGES}
    for name in PACKAGES:
        rep.add(name, versions[name] or "not installed")
    variants = [v for v in TF_VARIANTS if version(v)]
    if len(variants) > 1:
        rep.add("tensorflow packages", ", ".join(f"{v} {version(v)}" for v in variants),
                f"{' and '.join(variants)} are installed together and overwrite each other's "
                f"files; pip uninstall all of them, then reinstall one (make install)")
    tf_version = versions["tensorflow"] or next((version(v) for v in variants), None)
    tf_minor, mg_minor = _minor(tf_version), _minor(versions["tf-models-official"])
    if tf_minor and mg_minor and tf_minor != mg_minor:
        rep.add("TF / Model Garden", f"{tf_minor} / {mg_minor}",
                f"tf-models-official {versions['tf-models-official']} is made for TensorFlow "
                f"{mg_minor}, not {tf_version}; install matching versions "
                "(requirements.lock pins them)")
    return versions


def _add_keras(rep: Report, versions: Dict[str, Optional[str]]) -> None:
    """Which Keras ``tf.keras`` is, and whether Model Garden gets the Keras 2 it needs."""
    legacy = os.environ.get("TF_USE_LEGACY_KERAS", "") in ("1", "true", "True")
    tk = versions["tf-keras"]
    tf_keras_desc = (f"Keras 2 (tf-keras {tk})" if legacy and tk else
                     f"Keras {versions['keras']}" if versions["keras"] else "none")
    keras_bad = ""
    if not tk or not tk.startswith("2."):
        keras_bad = ("Model Garden builds its models with tf_keras (Keras 2); "
                     + ("tf-keras is not installed" if not tk else f"tf-keras is {tk}")
                     + ": install tf-keras matching TensorFlow (requirements.lock)")
    rep.add("tf.keras", tf_keras_desc + ("" if legacy else " (TF_USE_LEGACY_KERAS unset)"))
    rep.add("Model Garden's Keras", f"Keras 2 (tf_keras {tk})" if tk and tk.startswith("2.")
            else "Keras 3 / missing", keras_bad)


def _add_tensorflow(rep: Report, tf_info: Dict) -> List[str]:
    """What the TensorFlow probe saw; returns the GPUs (none when the import failed)."""
    if not tf_info.get("ok"):
        rep.add("TensorFlow import", tf_info.get("error", "failed"),
                "TensorFlow does not import; reinstall with make install")
        return []
    gpus = list(tf_info.get("gpus") or [])
    rep.add("GPUs TF sees", ", ".join(gpus) if gpus else "none")
    rep.add("CUDA / cuDNN (build)", f"{tf_info.get('cuda') or '-'} / "
            f"{tf_info.get('cudnn') or '-'}")
    onednn = tf_info.get("onednn")
    rep.add("oneDNN", "unknown" if onednn is None else ("on" if onednn else "off")
            + (f" (TF_ENABLE_ONEDNN_OPTS={tf_info.get('onednn_flag')})"
               if tf_info.get("onednn_flag") is not None else ""))
    return gpus


def _add_precision(rep: Report, precision: str, tf_info: Dict, gpus: List[str], cpu: str,
                   native_bf16: bool) -> None:
    """The requested mixed precision; bad where this machine cannot run it natively."""
    bad = ""
    if tf_info.get("ok") and not gpus and precision == "bfloat16" and not native_bf16:
        bad = ("bfloat16 mixed precision is asked for but TensorFlow sees no GPU and "
               f"{cpu} has no native bfloat16 (avx512_bf16 or amx_bf16: it would be "
               "emulated, slower than float32); train in float32 here")
    elif tf_info.get("ok") and not gpus and precision != "bfloat16":
        bad = (f"{precision} mixed precision is asked for but TensorFlow sees no GPU "
               "(float16 is a GPU precision); train in float32 here, or bfloat16 on a "
               "CPU with avx512_bf16/amx_bf16")
    rep.add("mixed precision", precision + (" (native on this CPU)" if precision ==
                                            "bfloat16" and native_bf16 and not gpus
                                            else ""), bad)
