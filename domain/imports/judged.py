"""The dry run's judgement of every row, kept beside the upload for the write.

Judging a row (cells converted, schemas, normalisers, custom-field rules) is most of an import's
CPU time; the write reads the judged rows back instead of judging the sheet a second time. What
the rows match is not kept: the database may change between the dry run and the write, so the
write matches again — except when the customers are as the dry run saw them (the `stamp` the
file keeps): then the database's answers to the rows' keys, kept beside the rows
(`<id>.answers`), stand, and a company row the dry run found no similar name for is not looked
for among similar names again. The file names what it was judged under (sheet, header, mapping,
and the users and custom fields the rows were checked against); when that differs — or the file
is gone — the write judges the sheet itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from domain.imports.models import Import
from domain.imports.rows import Checked, Context, Problem

FORMAT = 2
"""Bumped when a judged row's shape changes: a file of another format is not read."""


def path_of(upload: Path) -> Path:
    return upload.with_suffix(".judged")


def fingerprint(imp: Import, ctx: Context) -> str:
    """What a judgement depends on besides the code: which cells feed which fields, and what
    the rows were checked against — the active users (owners by login or name), the custom
    fields as last changed, the time zone, the lead policy's reasons."""
    fields = sorted((d.id, d.updated_at.isoformat()) for d in ctx.definitions)
    basis = json.dumps([FORMAT, imp.entity, imp.sheet, imp.header_row, imp.headers,
                        imp.mapping, sorted(ctx.users.items()), fields, str(ctx.zone),
                        list(ctx.disqualify_reasons)],
                       ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(basis.encode()).hexdigest()


def _judged(checked: Checked) -> tuple[Any, ...]:
    """A row as judged: before matching, which may add problems that hold only for the
    database of the moment (a company not imported yet)."""
    return (checked.row, checked.record, checked.custom, checked.tags, checked.keys,
            checked.customer_ref, [(p.column, p.value, p.message) for p in checked.problems])


def _checked(kept: tuple[Any, ...]) -> Checked:
    row, record, custom, tags, keys, ref, problems, no_similar_name = kept
    return Checked(
        row, record=record, custom=custom, tags=tags, keys=keys, customer_ref=ref,
        problems=[Problem(row, column, value, message) for column, value, message in problems],
        no_similar_name=no_similar_name,
    )


class Recorder:
    """Writes the judged rows of one dry run; they replace the last one's only when complete.

    The file is a pickle stream: the fingerprint and the stamp of the customers the rows were
    matched against, then a list of plain tuples per chunk. Only this server writes and reads
    it, under its own `var/` beside the upload (never a file a user sent); reading it back
    costs a fifth of JSON's."""

    def __init__(self, upload: Path, imp: Import, ctx: Context, stamp: Any) -> None:
        self.target = path_of(upload)
        self.partial = self.target.with_suffix(".judging")
        self.file: IO[bytes] = self.partial.open("wb")
        self.stamp = stamp
        pickle.dump((fingerprint(imp, ctx), stamp), self.file,
                    protocol=pickle.HIGHEST_PROTOCOL)

    def add(self, rows: list[Checked]) -> Callable[[], None]:
        """Take a chunk's rows as judged; the function returned keeps them, with whether
        matching found no similar name for each, once the chunk is matched."""
        judged = [_judged(c) for c in rows]

        def keep() -> None:
            pickle.dump([(*kept, c.no_similar_name) for kept, c in zip(judged, rows, strict=True)],
                        self.file, protocol=pickle.HIGHEST_PROTOCOL)

        return keep

    def complete(self, answered: dict[tuple[str, str], int]) -> None:
        """Keep the rows, and what the database answered to their keys (`Index.answered`) when
        a write can reuse it: only with a stamp to tell whether it still holds."""
        self.file.close()
        if self.stamp is not None:
            answers = answers_of(self.target)
            partial = answers.with_suffix(".answering")
            with partial.open("wb") as file:
                pickle.dump(answered, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(partial, answers)
        os.replace(self.partial, self.target)

    def abandon(self) -> None:
        self.file.close()
        self.partial.unlink(missing_ok=True)


def answers_of(judged: Path) -> Path:
    return judged.with_suffix(".answers")


@dataclass
class Kept:
    """A dry run's judgement: the stamp of the customers it matched against, and its rows."""

    stamp: Any
    rows: Iterator[Checked]
    path: Path

    def answered(self) -> dict[tuple[str, str], int] | None:
        """What the database answered the dry run's key lookups, if it was kept."""
        try:
            with answers_of(self.path).open("rb") as file:
                found: dict[tuple[str, str], int] = pickle.load(file)
        except Exception:  # gone, or not this version's: ask the database again
            return None
        return found


def rows_after(upload: Path, imp: Import, ctx: Context, after_row: int) -> Kept | None:
    """The judged rows after `after_row`, or None when there is no judgement for these
    options."""
    target = path_of(upload)
    try:
        file = target.open("rb")
    except FileNotFoundError:
        return None
    try:
        kept_for, stamp = pickle.load(file)
        same = kept_for == fingerprint(imp, ctx)
    except Exception:  # not a judgement this version wrote, whatever it is: judge again
        same = False
    if not same:
        file.close()
        return None
    return Kept(stamp, _read(file, after_row), target)


def _read(file: IO[bytes], after_row: int) -> Iterator[Checked]:
    with file:
        while True:
            try:
                chunk = pickle.load(file)
            except EOFError:
                return
            for kept in chunk:
                if kept[0] > after_row:
                    yield _checked(kept)


def forget(upload: Path) -> None:
    path_of(upload).unlink(missing_ok=True)
    answers_of(path_of(upload)).unlink(missing_ok=True)
