"""Pseudonymous keys and content hashes of a batch run.

- A patient's key is ``P-`` and the first 10 hex digits of HMAC-SHA256(pseudonym key,
  PatientID) (RFC 2104): stable for one pseudonym key, not reversible without it (a plain
  hash of a hospital number could be reversed by trying every number). A study's key is
  its date and 8 hex digits of the HMAC of its StudyInstanceUID, so that folders sort by
  date and carry no UID.
- The pseudonym key is 32 random bytes made when a store is created and kept in it
  (``netvolume.sqlite``), or read from a file (``--pseudonym-key FILE``) so that several
  stores (sites, reruns in a new folder) share the keys. Whoever holds the key and a list
  of PatientIDs can re-identify the keys: share the tables and the report, not the store.
- Work is keyed by content: a study's input hash is SHA-256 over its files' SHA-256
  (sorted), the settings and the package version; a file's SHA-256 is cached in the store
  by (path, size, mtime) so a rerun does not read the export again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from netvolume.errors import InputPathError

__all__ = [
    "combine",
    "file_sha256",
    "hash_json",
    "new_pseudonym_key",
    "patient_key",
    "read_pseudonym_key",
    "study_key",
]

_CHUNK = 1 << 20


def new_pseudonym_key() -> str:
    """A new random pseudonym key (64 hex digits)."""
    return secrets.token_hex(32)


def read_pseudonym_key(path: str | os.PathLike[str]) -> str:
    """Read a pseudonym key file: one line of at least 32 hex digits.

    Raises
    ------
    InputPathError
        If the file is missing or does not hold such a key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputPathError(
            f"pseudonym key file cannot be read: {p} ({type(exc).__name__})",
            files=[p],
            hint="give a text file holding one line of hex digits, e.g. made with "
            "python -c 'import secrets; print(secrets.token_hex(32))'",
        ) from None
    try:
        bytes.fromhex(text)
    except ValueError:
        ok = False
    else:
        ok = len(text) >= 32
    if not ok:
        raise InputPathError(
            f"pseudonym key file {p} does not hold a key of at least 32 hex digits "
            f"(it holds {len(text)} characters)",
            files=[p],
            hint="write one line of hex digits, e.g. python -c 'import secrets; "
            "print(secrets.token_hex(32))'",
        )
    return text.lower()


def _hmac(key: str, text: str) -> str:
    return hmac.new(bytes.fromhex(key), text.encode("utf-8"), hashlib.sha256).hexdigest()


def patient_key(key: str, patient_id: str) -> str:
    """The pseudonymous key of a patient (``P-`` + 10 hex digits)."""
    return "P-" + _hmac(key, "patient:" + patient_id)[:10]


def study_key(key: str, study_instance_uid: str, study_date: str | None) -> str:
    """The key of a study: ``<ISO date>_<8 hex digits>`` (``undated_...`` without date)."""
    return f"{study_date or 'undated'}_{_hmac(key, 'study:' + study_instance_uid)[:8]}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hash_json(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value`` (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def combine(parts: Iterable[str], extra: Mapping[str, Any]) -> str:
    """SHA-256 over sorted part hashes and a settings mapping."""
    return hash_json({"parts": sorted(parts), **extra})
