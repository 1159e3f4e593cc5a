"""How a batch run shows its progress: a live display, plain lines, JSON lines, or nothing.

Every reporter is a callable taking the run's events (see :func:`netvolume.batch.run_batch`):

- :class:`RichProgress` (a terminal): one bar per stage with counts, elapsed time and
  ETA (rich), and a line above the bars for each failure as it happens;
- :class:`PlainProgress` (stderr not a terminal): one line per finished task;
- :class:`JsonLines`: every event as one JSON object per line on stdout, for scripts;
- ``quiet``: nothing but the final summary's failures (the CLI prints those).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

__all__ = ["JsonLines", "PlainProgress", "RichProgress", "make_reporter"]

Event = dict[str, Any]

_STAGE_TEXT = {"study": "studies measured", "patient": "patients assessed"}


class JsonLines:
    """Each event as one line of JSON on ``stream`` (flushed at once)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event, sort_keys=True, default=str) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing to release."""


class PlainProgress:
    """One line per finished task on ``stream`` (stderr)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "discovered":
            line = (
                f"found {event['patients']} patients, {event['studies']} studies "
                f"({event['files']} files, {event['unused_files']} not usable)"
            )
        elif kind == "task":
            seconds = event.get("seconds")
            took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) and seconds else ""
            line = (
                f"[{event['finished']}/{event['total']}] {event['stage']} {event['item']}: "
                f"{event['status']}{took}"
            )
            if event["status"] == "failed":
                line += f" ({event.get('error_type')}: {event.get('message')})"
        elif kind == "cohort":
            line = f"cohort tables and report: {event['status']}"
        else:
            return
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing to release."""


class RichProgress:
    """A live display on a terminal (rich): bars with counts and ETA per stage."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}
        self.failed: dict[str, int] = {}
        self.progress.start()

    def __call__(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "discovered":
            self.console.print(
                f"found {event['patients']} patients, {event['studies']} studies "
                f"({event['files']} files, {event['unused_files']} not usable)"
            )
            for stage, total in (("study", event["studies"]), ("patient", event["patients"])):
                self.failed[stage] = 0
                self.tasks[stage] = self.progress.add_task(
                    _STAGE_TEXT[stage], total=total, failed=0
                )
        elif kind == "task" and event["stage"] in self.tasks:
            stage = event["stage"]
            if event["status"] == "failed":
                self.failed[stage] += 1
                self.console.print(
                    f"[red]failed[/red] {stage} {event['item']}: {event.get('error_type')}: "
                    f"{event.get('message')}",
                    markup=True,
                    highlight=False,
                )
            self.progress.update(self.tasks[stage], advance=1, failed=self.failed[stage])
        elif kind == "cohort":
            self.console.print(f"cohort tables and report: {event['status']}")

    def close(self) -> None:
        """Stop the live display."""
        self.progress.stop()


def make_reporter(*, quiet: bool, json_lines: bool) -> Callable[[Event], None]:
    """The reporter for the command line's options and the terminal."""
    if json_lines:
        return JsonLines()
    if quiet:
        return lambda event: None
    if sys.stderr.isatty():
        return RichProgress()
    return PlainProgress()
