"""Keep freed host memory in the process, so that a training step does not page-fault.

A step on the CPU allocates and frees the same few hundred MB every time (tensors of tens of
MB each). glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap``
calls and unmaps them on free, so every step faults each page back in, and the kernel zeroes
it: on the 2-core development machine that made a fresh ``x * 2`` of 45 MB ten times slower
than writing into an existing tensor, and a lego step about 8% slower end to end. With mmap
off and trimming off, freed blocks stay in the heap and are reused. The cost: the process
keeps its peak memory until it exits. PyTorch's own CPU guide reaches the same end by
preloading jemalloc or tcmalloc; this needs nothing installed.

Command-line tools call :func:`keep_freed_memory` once at start; ``TF_SYSTEM_MALLOC=1`` keeps
the C library's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameters from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Tell glibc to serve every block from its heap and never give freed memory back to the
    OS; True when that took effect (Linux with glibc, ``TF_SYSTEM_MALLOC`` unset)."""
    if os.environ.get("TF_SYSTEM_MALLOC") or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 64 << 20))
    return all(mallopt(param, value) == 1 for param, value in settings)
