"""Row-run extraction shared by the kernels (numba).

Every kernel in this package walks an array row by row (a row is the last axis at a fixed
slice and row index) and turns each row into *runs*: maximal half-open intervals
``[start, stop)`` of voxels that are foreground (binary runs) or that carry one label value
(value runs). Zero voxels are skipped eight bytes at a time through a ``uint64`` view of the
row when the array allows it (C-contiguous, row length in bytes a multiple of 8): on lesion
masks, where most of a volume is background, the scan then costs about one read of the
array.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit

__all__ = ["PARALLEL_MIN_VOXELS", "binary_row_runs", "threads_for", "value_row_runs", "word_view"]

#: Arrays smaller than this run numba's parallel kernels on the calling thread alone: the
#: work is then shorter than waking and joining the thread team (and far shorter when the
#: other cores are busy, when a team's barrier waits for a time slice).
PARALLEL_MIN_VOXELS = 1 << 21


@contextmanager
def threads_for(n_voxels: int) -> Iterator[None]:
    """Within the block, numba's parallel kernels use one thread when ``n_voxels`` is below
    :data:`PARALLEL_MIN_VOXELS`, else the threads already set (restored afterwards)."""
    if n_voxels >= PARALLEL_MIN_VOXELS or numba.get_num_threads() == 1:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def word_view(arr: np.ndarray) -> tuple[np.ndarray, int, np.uint64]:
    """Return ``(words, per_word, ones)``: a ``uint64`` view of ``arr``'s rows, the number
    of elements per word and the word whose every element is 1; or a dummy ``(1, 1, 1)``
    array, 0 and 0 when no view is possible.

    ``arr`` must be 3-D. A view exists when ``arr`` is C-contiguous and each row spans a
    whole number of 8-byte words. ``value * ones`` is the word of ``per_word`` copies of
    ``value``: inside a region a whole word is then skipped with one comparison.
    """
    item = arr.dtype.itemsize
    if arr.flags.c_contiguous and arr.size > 0 and 8 % item == 0 and (arr.shape[2] * item) % 8 == 0:
        ones = sum(1 << (8 * item * k) for k in range(8 // item))
        return arr.view(np.uint64), 8 // item, np.uint64(ones)
    return np.zeros((1, 1, 1), np.uint64), 0, np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def binary_row_runs(arr, words, per_word, ones, z, y, starts, stops):  # type: ignore[no-untyped-def]
    """Write the foreground runs of row ``arr[z, y]`` into ``starts`` / ``stops``.

    Returns the number of runs. ``per_word`` = 0 means no word view (element loop).
    """
    nx = arr.shape[2]
    n = 0
    inside = False
    if per_word > 0:
        nw = nx // per_word
        for w in range(nw):
            word = words[z, y, w]
            if word == 0:
                if inside:
                    stops[n] = w * per_word
                    n += 1
                    inside = False
                continue
            base = w * per_word
            if word == ones:  # every element 1 (bool True)
                if not inside:
                    starts[n] = base
                    inside = True
                continue
            for k in range(per_word):
                x = base + k
                if arr[z, y, x] != 0:
                    if not inside:
                        starts[n] = x
                        inside = True
                elif inside:
                    stops[n] = x
                    n += 1
                    inside = False
    else:
        for x in range(nx):
            if arr[z, y, x] != 0:
                if not inside:
                    starts[n] = x
                    inside = True
            elif inside:
                stops[n] = x
                n += 1
                inside = False
    if inside:
        stops[n] = nx
        n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def value_row_runs(arr, words, per_word, ones, z, y, starts, stops, vals):  # type: ignore[no-untyped-def]
    """Write the runs of constant nonzero value of row ``arr[z, y]``.

    Returns the number of runs; ``vals[i]`` is the value of run ``i`` (as int64).
    """
    nx = arr.shape[2]
    n = 0
    cur = 0
    curword = np.uint64(0)
    if per_word > 0:
        nw = nx // per_word
        for w in range(nw):
            word = words[z, y, w]
            if word == 0:
                if cur != 0:
                    stops[n] = w * per_word
                    n += 1
                    cur = 0
                    curword = np.uint64(0)
                continue
            if cur != 0 and word == curword:  # the current run goes on through the word
                continue
            base = w * per_word
            for k in range(per_word):
                x = base + k
                v = np.int64(arr[z, y, x])
                if v != cur:
                    if cur != 0:
                        stops[n] = x
                        n += 1
                    if v != 0:
                        starts[n] = x
                        vals[n] = v
                    cur = v
                    curword = np.uint64(v) * ones if v > 0 else np.uint64(0)
    else:
        for x in range(nx):
            v = np.int64(arr[z, y, x])
            if v != cur:
                if cur != 0:
                    stops[n] = x
                    n += 1
                if v != 0:
                    starts[n] = x
                    vals[n] = v
                cur = v
    if cur != 0:
        stops[n] = nx
        n += 1
    return n
