"""Shared fixtures: synthetic DICOM series and a command-line runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@dataclass
class CliResult:
    """What one ``netvolume.cli.main`` call returned and printed."""

    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[Sequence[str]], CliResult]:
    """Call ``netvolume.cli.main(argv)`` in-process; return exit code, stdout, stderr.

    A ``SystemExit`` (argparse) is turned into its code. No call may print a traceback.
    """
    from netvolume.cli import main

    def _run(argv: Sequence[str]) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse --help / usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        assert "Traceback" not in captured.out, captured.out
        return CliResult(int(code), captured.out, captured.err)

    return _run


@pytest.fixture
def ct_stack() -> Callable[..., tuple[np.ndarray, list[Path]]]:
    """Write a small seeded CT series and return ``(stored_array, paths_in_slice_order)``.

    Usage: ``arr, paths = ct_stack(folder, shape=(6, 8, 10), seed=0, **write_series_kwargs)``.
    Stored values are in ``[0, 3000)``; with the default intercept -1024 the loaded values
    are ``stored - 1024``.
    """
    from netvolume.io.dicom_write import write_series

    def _make(
        folder: Path,
        shape: tuple[int, int, int] = (6, 8, 10),
        seed: int = 0,
        **kwargs: Any,
    ) -> tuple[np.ndarray, list[Path]]:
        rng = np.random.default_rng(seed)
        arr = rng.integers(0, 3000, size=shape).astype(np.int16)
        kwargs.setdefault("spacing_mm", (2.5, 0.75, 0.8))
        kwargs.setdefault("origin_lps", (-100.0, -120.0, 30.0))
        paths = write_series(folder, arr, seed=seed, **kwargs)
        return arr, paths

    return _make
