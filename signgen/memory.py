"""Process memory settings for long jobs (batch rendering).

glibc raises its mmap threshold as a process frees large blocks, after which blocks of
tens of MB (frames, meshes, activations of varying length) come from the heap and are
kept by the process when freed: a batch of avatar-only items grew from 997 to 1,113 MB
RSS between items 30 and 180, while Python's own memory stayed at 3 MB. Fixing the
thresholds (what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do) kept it at
697 -> 711 MB (``benchmarks/batch_memory.py``; docs/reliability.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3


def steady_heap(threshold: int = 128 * 1024) -> bool:
    """Fix glibc's mmap and trim thresholds at ``threshold`` bytes, so that freed large
    blocks go back to the system. Returns True when applied; False on other C libraries
    or platforms, or when the user set ``MALLOC_MMAP_THRESHOLD_`` (their choice wins)."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)  # glibc only (musl has none)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, threshold))
