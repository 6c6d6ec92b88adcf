"""``--mixed_precision`` without a GPU: bfloat16 only on CPUs with native bfloat16."""

from __future__ import annotations

import pytest

from tfmask import cpu_features
from tfmask.config import experiment
from tfmask.errors import ConfigError

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8380H
flags\t\t: fpu sse2 avx2 avx512f {extra}

processor\t: 1
flags\t\t: fpu
"""


def write_cpuinfo(tmp_path, extra):
    path = tmp_path / f"cpuinfo_{abs(hash(extra))}"
    path.write_text(CPUINFO.format(extra=extra))
    return str(path)


def test_flags_of_the_first_cpu_decide(tmp_path):
    with_bf16 = write_cpuinfo(tmp_path, "avx512_bf16 avx512_vnni")
    assert cpu_features.has_native_bfloat16(with_bf16) and cpu_features.has_vnni(with_bf16)
    assert "avx512_bf16" in cpu_features.describe(with_bf16)
    assert "Xeon" in cpu_features.describe(with_bf16)
    plain = write_cpuinfo(tmp_path, "avx512_vnni")
    assert not cpu_features.has_native_bfloat16(plain) and cpu_features.has_vnni(plain)
    assert "amx" not in cpu_features.cpu_flags(plain)
    assert not cpu_features.has_native_bfloat16(str(tmp_path / "missing"))


@pytest.fixture
def config(tmp_path_factory):
    import export_testlib

    return export_testlib.dataset(tmp_path_factory) / "pipeline.config"


@pytest.fixture
def exp(config):
    return experiment.from_pipeline_config(config)


def no_gpu(monkeypatch, native_bf16: bool):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(cpu_features, "has_native_bfloat16", lambda *a: native_bf16)


def test_bfloat16_on_a_cpu_with_avx512_bf16_reaches_model_garden(exp, monkeypatch):
    no_gpu(monkeypatch, True)
    experiment.apply_options(exp, experiment.RunOptions(num_train_steps=2,
                                                        mixed_precision="bfloat16"))
    assert exp.params.runtime.mixed_precision_dtype == "bfloat16"


def test_bfloat16_without_native_support_is_refused_naming_the_flag(exp, monkeypatch):
    no_gpu(monkeypatch, False)
    with pytest.raises(ConfigError, match=r"^mixed_precision bfloat16 needs a GPU or a CPU "
                                          r"with native bfloat16 \(the avx512_bf16") as err:
        experiment.apply_options(exp, experiment.RunOptions(mixed_precision="bfloat16"))
    assert err.value.params == ("mixed_precision",)  # the CLI shows --mixed_precision


def test_float16_and_xla_stay_gpu_options(exp, monkeypatch):
    no_gpu(monkeypatch, True)
    with pytest.raises(ConfigError, match="float16 is a GPU option"):
        experiment.apply_options(exp, experiment.RunOptions(mixed_precision="float16"))
    with pytest.raises(ConfigError, match="^xla is a GPU option"):
        experiment.apply_options(exp, experiment.RunOptions(xla=True))
    experiment.apply_options(exp, experiment.RunOptions(num_train_steps=2))
    assert exp.params.runtime.mixed_precision_dtype == "float32"


def test_train_command_refuses_bfloat16_here_with_one_line(tmp_path, config):
    """The real CLI on this machine: refused unless the CPU has native bfloat16."""
    import subprocess
    import sys

    if cpu_features.has_native_bfloat16():
        pytest.skip("this CPU has native bfloat16: the flag is accepted")
    res = subprocess.run([sys.executable, "-m", "tfmask", "train", "--pipeline_config_path",
                          str(config), "--model_dir", str(tmp_path / "m"),
                          "--mixed_precision", "bfloat16"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "avx512_bf16" in errors[0], res.stderr
    assert errors[0].startswith("error: --mixed-precision bfloat16 needs a GPU")
    assert "Traceback" not in res.stderr and not (tmp_path / "m" / "checkpoint").exists()
