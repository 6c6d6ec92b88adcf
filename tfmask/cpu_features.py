"""What this CPU can do, read from ``/proc/cpuinfo`` (no TensorFlow import).

``tfmask train --mixed_precision bfloat16`` and ``tfmask export
--mixed_precision bfloat16`` on a machine without a GPU need native bfloat16
arithmetic: on CPUs with ``avx512_bf16`` (or AMX) oneDNN runs bfloat16
convolutions and matrix products at about twice the float32 rate (the issue's
measurement on an AVX-512 machine: 446 vs 257 GFLOP/s); elsewhere they are
emulated, so tfmask refuses them::

    from tfmask.cpu_features import cpu_flags, has_native_bfloat16
    has_native_bfloat16()      # True on e.g. Intel Cooper Lake / Sapphire Rapids, AMD Zen 4
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import FrozenSet

CPUINFO = "/proc/cpuinfo"
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")  # either gives oneDNN native bf16 kernels
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products


@functools.lru_cache(maxsize=4)
def cpu_flags(cpuinfo: str = CPUINFO) -> FrozenSet[str]:
    """The feature flags of the first CPU listed in ``cpuinfo`` (empty where unreadable,
    e.g. not Linux)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def has_native_bfloat16(cpuinfo: str = CPUINFO) -> bool:
    """True when the CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16``)."""
    return any(f in cpu_flags(cpuinfo) for f in BFLOAT16_FLAGS)


def has_vnni(cpuinfo: str = CPUINFO) -> bool:
    """True when the CPU has int8 dot-product instructions (VNNI or AMX)."""
    return any(f in cpu_flags(cpuinfo) for f in VNNI_FLAGS)


def describe(cpuinfo: str = CPUINFO) -> str:
    """One line for messages: the model name and the bf16/VNNI flags it has."""
    name = platform.processor() or "this CPU"
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    have = [f for f in (*BFLOAT16_FLAGS, *VNNI_FLAGS) if f in cpu_flags(cpuinfo)]
    return f"{name} ({', '.join(have) if have else 'no avx512_bf16, amx or vnni flags'})"
