"""What the key images and the report share: the error class and atomic writers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netvolume.errors import NetVolumeError
from netvolume.io._atomic import atomic_path

__all__ = ["ReportInputError", "atomic_file", "write_bytes_atomic", "write_json_atomic"]

#: Mode of the files written (readable by all, like a web page; mkstemp makes 0600).
FILE_MODE = 0o644


class ReportInputError(NetVolumeError, ValueError):
    """Input the batch report (or a key image) cannot be made from: a table of the batch
    output folder with a missing column or a value that does not parse, a JSON file that
    is not what ``netvolume measure`` / ``assess`` write, a measurement without its
    images. The message names the file, the line and the field, and what to do."""


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it is made
    readable (:data:`FILE_MODE`) and renamed onto ``target``, on failure removed."""
    with atomic_path(target, suffix=target.suffix) as tmp:
        yield tmp
        tmp.chmod(FILE_MODE)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename.

    Parameters
    ----------
    target : Path
        The file to (re)place; its folder is created.
    data : bytes
        The whole content.
    """
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: Path, doc: Any) -> None:
    """Write ``doc`` as indented UTF-8 JSON (no NaN) to ``target``, atomically."""
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    write_bytes_atomic(target, text.encode("utf-8"))
