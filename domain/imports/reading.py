"""Open an uploaded spreadsheet safely: recognise its format by content, refuse what is not one.

Users send what they have: .xlsx from Excel or WPS, old .xls, CSV saved by Excel in GBK or
UTF-8 with a BOM, sometimes a PDF or a password-protected workbook by mistake. Every refusal is
an `Invalid` naming the file and the problem, raised before anything is stored. Reading uses
python-calamine (Rust) for .xlsx/.xls; the rows are handed out one at a time so a large sheet
is never held as Python objects all at once.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import python_calamine

from domain.errors import Invalid

FIELD = "file"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
ENCRYPTED_OOXML = "EncryptedPackage".encode("utf-16-le")
"""The stream an OLE container has when it wraps a password-protected .xlsx."""
BINARY_MAGICS = {
    b"%PDF": "a PDF",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7z archive",
    b"\x1f\x8b": "a gzip archive",
}
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
"""UTF-8 (Excel adds a BOM) first; GB18030 is a superset of GBK and GB2312, what Excel on a
Chinese Windows writes. UTF-8 text almost never decodes as valid GB18030 by accident the other
way round, so the order matters."""


class Format(StrEnum):
    xlsx = "xlsx"
    xls = "xls"
    csv = "csv"


Cell = str | int | float | bool | date | datetime | time | timedelta | None


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_unpacked_bytes: int
    max_rows: int


def _zip_problem(data: bytes, limit: int) -> str | None:
    """Why this zip is not a workbook we will open, or None. Members are decompressed with a
    running count, so a header that lies about sizes cannot get a bomb past the limit."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return "the file is damaged (not a readable .xlsx)"
    with archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names:
            if "content.xml" in names:
                return "an OpenDocument spreadsheet (.ods): save it as .xlsx first"
            return "a zip archive but not an Excel workbook"
        if sum(info.file_size for info in archive.infolist()) > limit:
            return f"its contents expand beyond {limit:,} bytes"
        total = 0
        try:
            for info in archive.infolist():
                if info.flag_bits & 0x1:
                    return "password-protected: remove the password and upload it again"
                with archive.open(info) as member:
                    while chunk := member.read(1 << 20):
                        total += len(chunk)
                        if total > limit:
                            return f"its contents expand beyond {limit:,} bytes"
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
            return "the file is damaged (not a readable .xlsx)"
    return None


def sniff(data: bytes, limits: Limits) -> Format:
    """The format of these bytes, whatever the file name says, or a clear refusal."""
    if not data:
        raise Invalid("the file is empty", field=FIELD)
    if len(data) > limits.max_bytes:
        raise Invalid(f"the file is larger than {limits.max_bytes:,} bytes", field=FIELD)
    if data.startswith(ZIP_MAGIC):
        problem = _zip_problem(data, limits.max_unpacked_bytes)
        if problem:
            raise Invalid(f"cannot read this file: {problem}", field=FIELD)
        return Format.xlsx
    if data.startswith(OLE_MAGIC):
        if ENCRYPTED_OOXML in data:
            raise Invalid(
                "cannot read this file: it is password-protected; remove the password and "
                "upload it again",
                field=FIELD,
            )
        return Format.xls
    for magic, what in BINARY_MAGICS.items():
        if data.startswith(magic):
            raise Invalid(f"not a spreadsheet: this is {what}; upload .xlsx, .xls or .csv",
                          field=FIELD)
    if b"\x00" in data[:65536]:
        raise Invalid("not a spreadsheet: upload .xlsx, .xls or .csv", field=FIELD)
    return Format.csv


def decode_text(data: bytes) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Invalid("the CSV is neither UTF-8 nor GBK/GB18030 text", field=FIELD)


class Workbook:
    """An opened upload: its sheets, and the rows of one sheet on demand."""

    def __init__(self, data: bytes, limits: Limits) -> None:
        self.format = sniff(data, limits)
        self.limits = limits
        self._data = data
        self._text: str | None = None
        self._book: Any = None
        if self.format is Format.csv:
            self._text = decode_text(data)
            self.sheet_names = ["csv"]
            return
        try:
            self._book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        except python_calamine.PasswordError:
            raise Invalid(
                "cannot read this file: it is password-protected; remove the password and "
                "upload it again",
                field=FIELD,
            ) from None
        except Exception as exc:  # calamine raises several error types for damaged files
            raise Invalid(f"cannot read this file: it is damaged ({type(exc).__name__})",
                          field=FIELD) from None
        self.sheet_names = list(self._book.sheet_names)
        if not self.sheet_names:
            raise Invalid("the workbook has no sheets", field=FIELD)

    def sheet(self, name: str | None) -> str:
        """The chosen sheet's name; the first one when none is chosen."""
        if name is None or name == "":
            return self.sheet_names[0]
        if name not in self.sheet_names:
            raise Invalid(
                f"no sheet named {name}; the workbook has: {', '.join(self.sheet_names)}",
                field="sheet",
            )
        return name

    def rows(self, sheet: str | None = None) -> Iterator[tuple[int, list[Cell]]]:
        """(row number as the user sees it, cells) for every row, blank rows included.

        Stops with a refusal as soon as the sheet has more rows than the limit allows."""
        name = self.sheet(sheet)
        if self._text is not None:
            yield from self._csv_rows()
            return
        try:
            worksheet = self._book.get_sheet_by_name(name)
        except Exception as exc:
            raise Invalid(f"cannot read sheet {name}: it is damaged ({type(exc).__name__})",
                          field="sheet") from None
        first_row = worksheet.start[0] if worksheet.start else 0
        if worksheet.height > self.limits.max_rows + 1:
            raise Invalid(
                f"sheet {name} has {worksheet.height - 1:,} rows; at most "
                f"{self.limits.max_rows:,} can be imported at once",
                field="sheet",
            )
        for offset, cells in enumerate(worksheet.iter_rows()):
            yield first_row + offset + 1, list(cells)

    def _csv_rows(self) -> Iterator[tuple[int, list[Cell]]]:
        assert self._text is not None
        sample = self._text[:8192]
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(io.StringIO(self._text, newline=""), dialect)
        try:
            for number, cells in enumerate(reader, start=1):
                if number > self.limits.max_rows + 1:
                    raise Invalid(
                        f"the CSV has more than {self.limits.max_rows:,} rows; split it",
                        field=FIELD,
                    )
                yield number, list(cells)
        except csv.Error as exc:
            raise Invalid(f"cannot read this CSV: {exc}", field=FIELD) from None

    def close(self) -> None:
        if self._book is not None:
            self._book.close()


def is_blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def open_path(path: Path, limits: Limits) -> Workbook:
    return Workbook(path.read_bytes(), limits)
