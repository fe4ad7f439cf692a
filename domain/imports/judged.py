"""The dry run's judgement of every row, kept beside the upload for the write.

Judging a row (cells converted, schemas, normalisers, custom-field rules) is most of an import's
CPU time; the write reads the judged rows back instead of judging the sheet a second time. What
the rows match is not kept: the database may change between the dry run and the write, so the
write matches again. The file names the options it was judged under (sheet, header, mapping);
when they differ — or the file is gone — the write judges the sheet itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from domain.imports.models import Import
from domain.imports.rows import Checked, Problem

TYPES = {"date": date.fromisoformat, "datetime": datetime.fromisoformat, "decimal": Decimal}


def path_of(upload: Path) -> Path:
    return upload.with_suffix(".judged")


def fingerprint(imp: Import) -> str:
    """What a judgement depends on besides the rules: which cells feed which fields."""
    basis = json.dumps([imp.entity, imp.sheet, imp.header_row, imp.headers, imp.mapping],
                       ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(basis.encode()).hexdigest()


def _typed(value: Any) -> Any:
    """JSON of the values records hold that JSON has no type for."""
    if isinstance(value, datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$": "decimal", "v": str(value)}
    raise TypeError(f"cannot keep a {type(value).__name__} in a judged row")


def _untyped(obj: dict[str, Any]) -> Any:
    kind = obj.get("$")
    return TYPES[kind](obj["v"]) if kind in TYPES and len(obj) == 2 else obj


def _line(checked: Checked) -> str:
    return json.dumps(
        [checked.row, checked.record, checked.custom, checked.tags, checked.keys,
         checked.customer_ref,
         [[p.column, p.value, p.message] for p in checked.problems]],
        ensure_ascii=False, default=_typed, separators=(",", ":"),
    )


def _checked(line: str) -> Checked:
    row, record, custom, tags, keys, ref, problems = json.loads(line, object_hook=_untyped)
    return Checked(
        row, record=record, custom=custom, tags=tags, keys=[tuple(k) for k in keys],
        customer_ref=tuple(ref) if ref else None,
        problems=[Problem(row, column, value, message) for column, value, message in problems],
    )


class Recorder:
    """Writes the judged rows of one dry run; they replace the last one's only when complete."""

    def __init__(self, upload: Path, imp: Import) -> None:
        self.target = path_of(upload)
        self.partial = self.target.with_suffix(".judging")
        self.file: IO[str] = self.partial.open("w", encoding="utf-8")
        self.file.write(fingerprint(imp) + "\n")

    def add(self, rows: list[Checked]) -> None:
        self.file.write("".join(_line(c) + "\n" for c in rows))

    def complete(self) -> None:
        self.file.close()
        os.replace(self.partial, self.target)

    def abandon(self) -> None:
        self.file.close()
        self.partial.unlink(missing_ok=True)


def rows_after(upload: Path, imp: Import, after_row: int) -> Iterator[Checked] | None:
    """The judged rows after `after_row`, or None when there is no judgement for these
    options."""
    target = path_of(upload)
    try:
        file = target.open(encoding="utf-8")
    except FileNotFoundError:
        return None
    if file.readline().strip() != fingerprint(imp):
        file.close()
        return None
    return _read(file, after_row)


def _read(file: IO[str], after_row: int) -> Iterator[Checked]:
    with file:
        for line in file:
            checked = _checked(line)
            if checked.row > after_row:
                yield checked


def forget(upload: Path) -> None:
    path_of(upload).unlink(missing_ok=True)
