"""Reading CSV files for imports: rows as they are read, each with the line it starts on, and the
reader's own problems (bad bytes, NUL, the wrong number of values) as rows of their own.

No database here: `csv_import` runs imports from these rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from campaigns.errors import InputError

MAX_FIELD = 1 << 20
_NOT_WORD = re.compile(r"[^0-9a-z]+")

csv.field_size_limit(MAX_FIELD)


class Row:
    """A row of the file: the line where it starts (the header is line 1) and its cells in header
    order; `values` maps the columns to them (made on first use: the contact import reads cells)."""

    __slots__ = ("_values", "cells", "columns", "number")

    def __init__(self, number: int, cells: list[str], columns: list[str]) -> None:
        self.number = number
        self.cells = cells
        self.columns = columns
        self._values: dict[str, str] | None = None

    @property
    def values(self) -> dict[str, str]:
        if self._values is None:
            self._values = dict(zip(self.columns, self.cells, strict=True))
        return self._values


def normalize_header(name: str) -> str:
    """ "E-mail Address " -> "e_mail_address": what attribute keys and column lookups use."""
    return _NOT_WORD.sub("_", name.strip().lower()).strip("_")


def open_binary(path: str | Path) -> IO[bytes]:
    """A file, transparently gunzipped when it starts with the gzip magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def count_lines(path: str | Path) -> int:
    """Lines in the file (gunzipped): a quick upper bound of the rows, for progress bars."""
    lines = 0
    last = b"\n"
    with open_binary(path) as stream:
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (0 if last == b"\n" else 1)


class CsvRows:
    """Rows of a CSV stream as dicts keyed by normalized, aliased header names."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        aliases: Mapping[str, str] | None = None,
        encoding: str = "utf-8",
        delimiter: str | None = None,
    ) -> None:
        self.encoding = encoding
        self._text = io.TextIOWrapper(
            stream, encoding=_bom_aware(encoding), errors="surrogateescape", newline=""
        )
        try:
            first = self._text.readline()
        except UnicodeError as exc:  # utf-16 without a byte order mark, odd bytes...
            raise InputError(f"the file is not valid {encoding}: {exc}", where="header") from exc
        if not first.strip():
            raise InputError("the file is empty (no header line)", where="header")
        self.delimiter = delimiter or _sniff(first)
        header_line = next(csv.reader([first], delimiter=self.delimiter))
        if _bad_bytes(header_line):
            raise InputError(
                "the header line is not valid UTF-8; save the file as UTF-8 or name its encoding",
                where="header",
            )
        if any("\x00" in c for c in header_line):
            raise InputError("the header line holds a NUL byte: is the encoding right?", where="header")
        aliases = aliases or {}
        self.raw_columns = [c.strip() for c in header_line]
        self.columns: list[str] = []
        for i, raw in enumerate(self.raw_columns):
            name = normalize_header(raw) or f"column_{i + 1}"
            name = aliases.get(name, name)
            if name in self.columns:
                raise InputError(f"column {raw!r} appears twice in the header", where="header")
            self.columns.append(name)
        self._reader = csv.reader(self._text, delimiter=self.delimiter)
        self._line = 1

    def __iter__(self) -> Iterator[Row | RowProblem]:
        width = len(self.columns)
        while True:
            start = self._line + 1
            try:
                values = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self._line = self._reader.line_num + 1
                yield RowProblem(start, "", f"unreadable CSV row: {exc}")
                continue
            except UnicodeError as exc:  # the decoder cannot go on: the rest of the file is lost
                yield RowProblem(start, "", f"the file is not valid {self.encoding} from here on: {exc}")
                return
            self._line = self._reader.line_num + 1
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line
            joined = "\x1f".join(values)  # one look at the whole row for the rare bad cell
            bad = None if joined.isascii() else _bad_bytes(values)
            if bad is not None:
                name = self.columns[bad] if bad < width else f"column {bad + 1}"
                yield RowProblem(start, name, _encoding_message(values[bad]))
                continue
            if "\x00" in joined:
                nul = next(i for i, v in enumerate(values) if "\x00" in v)
                name = self.columns[nul] if nul < width else f"column {nul + 1}"
                yield RowProblem(start, name, "holds a NUL byte, which cannot be stored")
                continue
            if len(values) != width:
                if len(values) < width:
                    missing = ", ".join(self.columns[len(values) :])
                    message = f"the row has {len(values)} values, the header has {width} columns (missing: {missing})"
                    yield RowProblem(start, self.columns[len(values)], message)
                else:
                    message = f"the row has {len(values)} values, the header has {width} columns"
                    yield RowProblem(start, "", message)
                continue
            yield Row(start, values, self.columns)


@dataclass(frozen=True)
class RowProblem:
    """A row the reader itself could not turn into values."""

    number: int
    field: str
    message: str


def _bom_aware(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _sniff(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _bad_bytes(values: Sequence[str]) -> int | None:
    """Index of the first value holding undecodable bytes (surrogate escapes), if any."""
    try:
        "\x1f".join(values).encode("utf-8")
    except UnicodeEncodeError:
        for i, value in enumerate(values):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return i
    return None


def _encoding_message(value: str) -> str:
    raw = value.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        return f"not valid UTF-8 (byte 0x{byte:02x} at position {exc.start + 1}); save the file as UTF-8"
    return "not valid UTF-8"
