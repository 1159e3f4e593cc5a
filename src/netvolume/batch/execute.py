"""Where the tasks run: local worker processes (``--jobs N``) or a Dask cluster.

Both executors take a task function and its spec and return futures; the coordinator
waits for any of them to finish (:meth:`Executor.wait_any`). The local one is a
``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (no state
forked from the coordinator: SQLite handles, SimpleITK and numba thread pools), each
worker limited to ``cores // jobs`` threads. A worker that dies (killed, out of memory)
breaks the pool: the executor then starts a new pool, and the coordinator retries the
tasks that were in flight once before recording them as failed.

The Dask one connects to ``--scheduler tcp://HOST:8786`` with ``distributed.Client``; the
workers must have netvolume installed and see the export and output folders at the same
paths (a shared file system).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from netvolume.errors import InputPathError, NetVolumeError

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "WorkerLostError", "default_jobs"]


class WorkerLostError(Exception):
    """The process running a task died (the task may be retried)."""


class Executor(Protocol):
    """What the coordinator needs from an executor."""

    description: str

    def submit(self, fn: Callable[[Any], dict[str, Any]], spec: Any) -> Any:
        """Start ``fn(spec)``; return a future."""

    def wait_any(self, futures: Iterable[Any]) -> tuple[set[Any], set[Any]]:
        """Block until at least one future is done; return (done, not done)."""

    def result(self, future: Any) -> dict[str, Any]:
        """The task's result dict; raises :class:`WorkerLostError` when its worker died."""

    def close(self) -> None:
        """Shut the executor down."""


def default_jobs() -> int:
    """The default ``--jobs``: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """``jobs`` worker processes on this machine."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise NetVolumeError(
                f"--jobs must be at least 1 (got {jobs})", tag="jobs", hint="use --jobs 1 or more"
            )
        self.jobs = jobs
        self.threads = max(1, default_jobs() // jobs)
        self.description = f"local ({jobs} worker process{'es' if jobs > 1 else ''})"
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        from netvolume.batch.tasks import init_worker

        return cf.ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.threads,),
        )

    def submit(self, fn: Callable[[Any], dict[str, Any]], spec: Any) -> cf.Future[dict[str, Any]]:
        """Start ``fn(spec)`` in a worker (a new pool if the last one broke)."""
        try:
            return self._pool.submit(fn, spec)
        except cf.BrokenExecutor:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, spec)

    def wait_any(self, futures: Iterable[Any]) -> tuple[set[Any], set[Any]]:
        """Wait for the first finished future."""
        done, pending = cf.wait(set(futures), return_when=cf.FIRST_COMPLETED)
        return set(done), set(pending)

    def result(self, future: Any) -> dict[str, Any]:
        """The result; :class:`WorkerLostError` when the pool broke under it."""
        try:
            return dict(future.result())
        except cf.BrokenExecutor as exc:
            raise WorkerLostError(str(exc) or "a worker process died") from None

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster."""

    def __init__(self, address: str, *, timeout_s: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise NetVolumeError(
                "--scheduler needs dask.distributed, which is not installed",
                tag="scheduler",
                hint="pip install 'netvolume[cluster]' (or 'dask[distributed]')",
            ) from None
        try:
            self.client = Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise InputPathError(
                f"cannot connect to the Dask scheduler at {address} ({type(exc).__name__}: {exc})",
                tag="scheduler",
                hint="check the address (tcp://HOST:8786) and that the scheduler is running",
            ) from None
        workers = len(self.client.scheduler_info().get("workers", {}))
        self.description = f"dask ({address}, {workers} workers)"

    def submit(self, fn: Callable[[Any], dict[str, Any]], spec: Any) -> Any:
        """Start ``fn(spec)`` on the cluster (never cached: ``pure=False``)."""
        return self.client.submit(fn, spec, pure=False)

    def wait_any(self, futures: Iterable[Any]) -> tuple[set[Any], set[Any]]:
        """Wait for the first finished future."""
        from distributed import wait

        with self.client.as_current():  # not the process's default client
            done, pending = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done), set(pending)

    def result(self, future: Any) -> dict[str, Any]:
        """The result; :class:`WorkerLostError` when the cluster lost the task's workers."""
        from distributed.scheduler import KilledWorker

        try:
            return dict(future.result())
        except KilledWorker as exc:
            raise WorkerLostError(str(exc)) from None

    def close(self) -> None:
        """Disconnect (the cluster keeps running)."""
        self.client.close()
