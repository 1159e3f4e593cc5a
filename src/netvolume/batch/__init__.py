"""Batch runs over a whole export: discovery, the cohort store, local or Dask execution.

``netvolume run EXPORT_DIR -o OUT`` (:func:`run_batch`): see :mod:`netvolume.batch.run`
for the output layout and the resumption rules, :mod:`netvolume.batch.store` for the
database, and ``docs/batch.md``.
"""

from netvolume.batch.run import BatchResult, BatchSettings, run_batch
from netvolume.batch.store import Store, StoreError

__all__ = ["BatchResult", "BatchSettings", "Store", "StoreError", "run_batch"]
