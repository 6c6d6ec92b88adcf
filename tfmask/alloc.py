"""Memory-allocator settings for processes that convert images.

Converting one image allocates and frees a dozen buffers of 0.2-0.6 MB (the
inflated mask, PIL images, instance masks, PNG rows). With glibc's defaults
each such buffer is a fresh ``mmap`` (or heap that is trimmed back to the
system as soon as it is freed), so every image pays page faults to zero
those pages again: ~1 ms per 512x384 image, as much as decoding its mask.
:func:`keep_freed_memory` makes glibc serve allocations below 32 MiB from the
heap and keep up to 128 MiB of freed heap for reuse. Peak memory is
unchanged (the converter streams; what is kept was in use a moment before).

It changes a process-wide setting, so the library never calls it on a
caller's behalf: the ``tfmask`` command calls it, and so do the converter's
worker processes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Applies the settings above; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
