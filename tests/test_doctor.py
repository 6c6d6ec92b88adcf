"""``tfmask doctor``: the report, and each known-bad combination simulated."""

from __future__ import annotations

import pytest

from tfmask import doctor
from tfmask.cli import main

GOOD = {"tensorflow": "2.20.0", "tf-models-official": "2.20.0", "tf-keras": "2.20.1",
        "keras": "3.15.1", "numpy": "2.4.6", "protobuf": "6.33.6"}
CPU = {"ok": True, "gpus": [], "cuda": "12.5.1", "cudnn": "9", "onednn": False,
       "onednn_flag": None}
GPU = dict(CPU, gpus=["/physical_device:GPU:0"])


def run(versions=GOOD, probe=CPU, **kwargs):
    return doctor.diagnose(probe=lambda: probe, version=versions.get, **kwargs)


def bad_names(report):
    return [f.name for f in report.findings if f.bad]


def test_a_good_install_reports_everything_and_passes():
    rep = run()
    text = rep.format()
    assert rep.ok and "no known-bad combination found" in text
    for what in ("python", "tensorflow:", "tf-models-official", "tf-keras", "numpy",
                 "protobuf", "tf.keras", "GPUs TF sees:         none", "CUDA / cuDNN",
                 "oneDNN", "free disk"):
        assert what in text, what


@pytest.mark.parametrize("versions, probe, kwargs, name, reason", [
    (dict(GOOD, **{"tf-keras": None}), CPU, {}, "Model Garden's Keras", "not installed"),
    (dict(GOOD, **{"tf-keras": "3.0.0"}), CPU, {}, "Model Garden's Keras", "tf-keras is 3.0.0"),
    (dict(GOOD, **{"tensorflow-cpu": "2.20.0"}), CPU, {}, "tensorflow packages",
     "tensorflow and tensorflow-cpu are installed together"),
    (dict(GOOD, **{"tf-models-official": "2.19.1"}), CPU, {}, "TF / Model Garden",
     "made for TensorFlow 2.19"),
    (GOOD, CPU, {"mixed_precision": "float16"}, "mixed precision", "sees no GPU"),
    (GOOD, {"ok": False, "error": "ImportError: libcudart.so.12"}, {}, "TensorFlow import",
     "does not import"),
])
def test_known_bad_combinations_are_flagged(versions, probe, kwargs, name, reason):
    rep = run(versions, probe, **kwargs)
    assert bad_names(rep) == [name]
    assert reason in rep.format()


def test_mixed_precision_is_fine_with_a_gpu_and_read_from_a_params_yaml(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("runtime:\n  mixed_precision_dtype: float16\n")
    assert run(probe=GPU, config=str(params)).ok
    assert bad_names(run(config=str(params))) == ["mixed precision"]
    config = tmp_path / "pipeline.config"
    config.write_text("train_config { use_bfloat16: true }\n")
    assert doctor.requested_precision(str(config), None) == "bfloat16"


def write_cpuinfo(tmp_path, flags: str) -> str:
    """A /proc/cpuinfo of one simulated CPU with ``flags``."""
    path = tmp_path / f"cpuinfo_{flags.replace(' ', '_') or 'plain'}"
    path.write_text("processor\t: 0\nmodel name\t: Simulated CPU\n"
                    f"flags\t\t: fpu sse2 avx2 {flags}\n\n")
    return str(path)


@pytest.mark.parametrize("flags", ["avx512f avx512_bf16 avx512_vnni", "amx_bf16 amx_tile"])
def test_bfloat16_without_a_gpu_is_fine_on_a_cpu_with_native_bfloat16(tmp_path, flags):
    rep = run(mixed_precision="bfloat16", cpuinfo=write_cpuinfo(tmp_path, flags))
    assert rep.ok, rep.format()
    text = rep.format()
    assert "bfloat16 (native on this CPU)" in text and "Simulated CPU" in text
    # float16 stays a GPU precision, whatever the CPU.
    rep = run(mixed_precision="float16", cpuinfo=write_cpuinfo(tmp_path, flags))
    assert bad_names(rep) == ["mixed precision"] and "sees no GPU" in rep.format()


@pytest.mark.parametrize("flags", ["", "avx512f avx512_vnni"])
def test_bfloat16_without_a_gpu_is_flagged_where_it_would_be_emulated(tmp_path, flags):
    rep = run(mixed_precision="bfloat16", cpuinfo=write_cpuinfo(tmp_path, flags))
    assert bad_names(rep) == ["mixed precision"]
    assert "Simulated CPU" in rep.format() and "no native bfloat16" in rep.format()
    assert run(probe=GPU, mixed_precision="bfloat16",
               cpuinfo=write_cpuinfo(tmp_path, flags)).ok  # a GPU computes it
    # A pipeline.config's use_bfloat16 is read the same way.
    config = tmp_path / "pipeline.config"
    config.write_text("train_config { use_bfloat16: true }\n")
    assert bad_names(run(config=str(config), cpuinfo=write_cpuinfo(tmp_path, flags))) == [
        "mixed precision"]
    assert run(config=str(config), cpuinfo=write_cpuinfo(tmp_path, "avx512_bf16")).ok


def test_cli_exit_status_and_no_traceback(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "probe_tensorflow",
                        lambda: {"ok": False, "error": "Illegal instruction"})
    assert main(["doctor"]) == 1
    out = capsys.readouterr()
    assert "BAD: TensorFlow does not import" in out.out and "Traceback" not in out.err


def test_the_real_probe_of_this_install():
    info = doctor.probe_tensorflow()
    assert info["ok"], info
    assert isinstance(info["gpus"], list)
