"""The ``netvolume`` command line: one module per command, ``main(argv) -> int``.

Exit codes
----------
0   success
1   data error: the input was read but is not usable (geometry, pixel data, ...)
2   usage error: bad command-line arguments
3   input path error: a path that does not exist or cannot be read
4   selection error: no image series, several and none chosen, unknown UID, unknown ROI
70  internal error: a bug in netvolume (please report it with ``--debug`` output)

Errors are printed to stderr as one ``netvolume: error: ...`` message, never as a
traceback (``--debug`` shows the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from netvolume._version import __version__
from netvolume.errors import (
    EXIT_CODES,
    InputPathError,
    NetVolumeError,
    SeriesSelectionError,
)

__all__ = ["main"]

_EPILOG = """exit codes: 0 ok, 1 data error, 2 usage error, 3 input path error,
4 selection error (series or ROI), 70 internal error"""


def _build_parser() -> argparse.ArgumentParser:
    from netvolume.cli import (
        analyse,
        assess,
        convert,
        demo,
        eligibility,
        mask,
        measure,
        phantom,
        protocols,
        run,
        scan,
    )

    parser = argparse.ArgumentParser(
        prog="netvolume",
        description="Imaging pipeline for neuroendocrine-tumour trials.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"netvolume {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (
        run,
        demo,
        scan,
        convert,
        mask,
        measure,
        assess,
        protocols,
        eligibility,
        analyse,
        phantom,
    ):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help / --version / usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_CODES["usage_error"]
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="netvolume: %(levelname)s: %(message)s",
    )
    if not args.verbose:
        # pydicom logs remarks on the *input's* non-conformant values (an over-long LO...)
        # without naming the file; netvolume checks the values that matter itself
        logging.getLogger("pydicom").setLevel(logging.ERROR)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except InputPathError as exc:
        _error(str(exc))
        return EXIT_CODES["input_path_error"]
    except SeriesSelectionError as exc:
        _error(str(exc))
        return EXIT_CODES["selection_error"]
    except NetVolumeError as exc:
        _error(str(exc))
        return EXIT_CODES["data_error"]
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`netvolume protocols | head`)
        # point stdout at devnull so that the interpreter's final flush does not fail
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        _error(
            f"internal error ({type(exc).__name__}: {exc}); this is a bug in netvolume "
            f"{__version__}: please report it with the output of --debug"
        )
        if args.debug:
            traceback.print_exc()
        return EXIT_CODES["internal_error"]


def _error(message: str) -> None:
    print(f"netvolume: error: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
