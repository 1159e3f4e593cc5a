"""The thread pool of one study's segmentation and measurement.

Work handed to it reads only the study's arrays (scipy.ndimage, numpy, SimpleITK and the
numba kernels release the GIL); its results are gathered in a fixed order by the caller,
so what is found does not depend on the number of threads (tested).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numba

from netvolume.errors import NetVolumeError

_T = TypeVar("_T")


def workers() -> int:
    """Threads for one study: ``NETVOLUME_THREADS``, else numba's thread count (the CPUs,
    or a batch worker's share; at most 4). 1 unless numba's threading layer may be entered
    from several threads at once (OpenMP or TBB; its ``workqueue`` layer may not)."""
    text = os.environ.get("NETVOLUME_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise NetVolumeError(
                f"NETVOLUME_THREADS = {text!r}: expected a whole number of threads, 1 or more",
                hint="unset it to use the CPUs, or set e.g. NETVOLUME_THREADS=1",
            )
        n = int(text)
    else:
        # numba's threads of the calling thread: the cores, or what a batch worker was
        # given (``netvolume run --jobs``)
        n = min(4, numba.get_num_threads())
    if n == 1:
        return 1
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return 1
    return n if layer in ("omp", "tbb") else 1


@contextmanager
def worker_pool() -> Iterator[ThreadPoolExecutor | None]:
    """A pool of :func:`workers` threads (None for one: work runs on the calling thread),
    shut down on leaving, its queued work cancelled."""
    n = workers()
    pool = ThreadPoolExecutor(n) if n > 1 else None
    try:
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def submit(pool: ThreadPoolExecutor | None, fn: Callable[..., _T], *args: Any) -> Future[_T]:
    """``fn(*args)`` on ``pool``, or here and now without one (its exception raised here)."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future[_T] = Future()
    done.set_result(fn(*args))
    return done
