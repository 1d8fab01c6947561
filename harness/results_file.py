"""``results.csv`` on disk: appended row by row so that a crash loses no finished row, and taken up again by
``--resume``, which keeps the finished rows of the same format and measures the rest.

Every row carries the format it was written in (``results.FORMAT_VERSION``): a file is one format, so that a
reader of any row knows what its columns mean, and resume refuses to append to a file of another format.
"""

from __future__ import annotations

import csv
import io
import os
import signal
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results import CODEC, ERROR, FORMAT_VERSION, POINT, RESULTS_FORMAT_VERSION, TILE_ID

NO_FORMAT_VERSION = "none (written before results.csv had a format version)"


class ResultsWriter:
    """Appends rows and flushes each one, so the file on disk is always complete up to the last row. Each row is
    stamped with ``RESULTS_FORMAT_VERSION``."""

    def __init__(self, path: Path, columns: list[str]):
        existing = _existing_header(path)
        if existing is not None and existing != columns:
            raise UserError(f"{path}: its columns differ from this run's ({', '.join(sorted(set(existing) ^ set(columns)))}); "
                            "resume with the same plugins, or --overwrite")
        self.path, self.columns, self.rows = path, columns, 0
        self.handle = path.open("a", newline="", encoding="utf-8")
        if existing is None:
            csv.DictWriter(self.handle, fieldnames=columns).writeheader()
            self.handle.flush()

    def write(self, row: dict[str, Any]) -> None:
        self.rows += 1
        try:
            line = io.StringIO()
            csv.DictWriter(line, fieldnames=self.columns).writerow({FORMAT_VERSION: RESULTS_FORMAT_VERSION, **row})
            text = line.getvalue()
            if _at_kill_point(f"row:{self.rows}"):
                _die_after(self.handle, text[: len(text) // 2])  # killed in the middle of the row
            self.handle.write(text)
            self.handle.flush()
        except OSError as exc:  # a full disk: the rows written so far stay, and resume drops the one cut short
            raise UserError(f"{self.path}: cannot write a result row ({exc.strerror or exc}); make room, then "
                            "rerun with --resume") from exc

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.handle.close()


def check_format_version(results_path: Path) -> None:
    """Refuse to resume results of another format, or of none (a run from before formats had versions): rows of
    two formats in one file would not mean the same, and nothing in the file would tell them apart."""
    header, rows = _finished_rows(results_path)
    if not header:
        return  # a header cut short: the run starts again
    found = {row[FORMAT_VERSION] for row in rows} if FORMAT_VERSION in header else {NO_FORMAT_VERSION}
    other = sorted(found - {str(RESULTS_FORMAT_VERSION)})
    if other:
        raise UserError(f"{results_path} holds results of format version {other[0]}; this harness writes version "
                        f"{RESULTS_FORMAT_VERSION} and cannot add to them: rerun without --resume, with --output "
                        "for a new folder (or --overwrite to replace this run)")


def drop_error_rows(results_path: Path) -> set[tuple[str, str, str]]:
    """Keep the good rows of an earlier run and forget its error rows, so resuming retries them.

    A row cut short (the process killed, or the disk full, in the middle of writing it) is dropped too,
    and measured again. A header cut short leaves no row at all. The kept rows go to a temporary file that then
    replaces the results in one step: rewriting the file in place lost most finished rows when the process was
    killed during the rewrite. Returns the finished (codec, point, tile id) keys.
    """
    fieldnames, rows = _finished_rows(results_path)
    if not fieldnames:
        results_path.unlink()
        return set()
    good = [row for row in rows if not row.get(ERROR)]
    rewritten = results_path.with_name(results_path.name + ".tmp")
    with rewritten.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        if _at_kill_point("rewrite"):
            writer.writerows(good[: len(good) // 2])
            _die_after(handle, "")
        writer.writerows(good)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(rewritten, results_path)
    return {(row[CODEC], row[POINT], row[TILE_ID]) for row in good}


def _finished_rows(results_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the finished rows: only lines that end in a newline and hold every column count, the others
    were cut short (the process killed, or the disk full, while writing them). No header: it was cut short."""
    text = results_path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1], newline=""))
    header = list(reader.fieldnames or [])
    return header, [row for row in reader if None not in row and None not in row.values()]


KILL_POINT_VARIABLE = "HARNESS_TEST_KILL_AT"
"""For the crash tests only: ``row:N`` kills the process (SIGKILL) halfway through writing result row N,
``rewrite`` halfway through the rewrite that drops error rows on resume; so that "no finished row is ever
lost" is tested with real kills at the worst moments, not argued."""


def _at_kill_point(name: str) -> bool:
    return os.environ.get(KILL_POINT_VARIABLE) == name


def _die_after(handle: Any, partial: str) -> None:
    handle.write(partial)
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _existing_header(path: Path) -> list[str] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), None)
