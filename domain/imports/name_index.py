"""Folded company names, indexed so that similar ones are found without comparing them all.

Two names are similar when rapidfuzz's ratio — 100 × (1 − d / (l1 + l2)), d the insertions and
deletions turning one into the other — reaches the threshold. Comparing each row's name with
every stored one grows with the square of an import; here only names that share a two-character
piece with it are compared, and that filter loses no match: each insertion or deletion breaks at
most two of a name's pieces, so a name within d edits still holds one of any 2d + 1 of them.
The 2d + 1 rarest are looked up.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz, process

RecordId = int


def _digits(value: str) -> str:
    return "".join(filter(str.isdigit, value))


def similar(
    name_key: str, names: Sequence[str], threshold: float, *, limit: int | None = 5
) -> list[tuple[int, float]]:
    """Positions in `names` of folded company names nearly `name_key`, best first, with their
    rapidfuzz ratio. Names that differ in their numbers (3号店 and 5号店, 第一 and 第二 aside)
    are different companies, never similar. Imports and the duplicate review share this rule."""
    digits = _digits(name_key)
    return [
        (position, score)
        for _name, score, position in process.extract(
            name_key, names, scorer=fuzz.ratio, score_cutoff=threshold, limit=limit
        )
        if _digits(names[position]) == digits
    ]


def _pieces(name: str) -> set[str]:
    return {name[i : i + 2] for i in range(len(name) - 1)}


def longest_similar(length: int, threshold: float) -> int:
    """The longest name whose ratio to one of `length` characters can reach `threshold`: the
    ratio is at most 200·a/(a+b) for lengths a ≤ b."""
    return int(length * (200 / threshold - 1) + 1e-9)


def most_edits(length: int, threshold: float) -> int:
    """The most insertions and deletions a name of `length` characters can be from one whose
    ratio to it reaches `threshold` (0 < threshold ≤ 100)."""
    longest = longest_similar(length, threshold)
    return int((1 - threshold / 100) * (length + longest) + 1e-9)


class NameIndex:
    """Names and the records they belong to, with the positions holding each two-character
    piece."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.ids: list[RecordId] = []
        self.pieces: dict[str, list[int]] = {}

    def add(self, name_key: str, record_id: RecordId) -> int:
        """Index a name; its position (to `rebind` it later)."""
        position = len(self.keys)
        self.keys.append(name_key)
        self.ids.append(record_id)
        for piece in _pieces(name_key):
            self.pieces.setdefault(piece, []).append(position)
        return position

    def _candidates(self, name_key: str, threshold: float) -> list[int] | None:
        """Positions of the names that can be similar; None when every name can."""
        if threshold <= 0:
            return None
        wanted = 2 * most_edits(len(name_key), threshold) + 1
        pieces = _pieces(name_key)
        if len(pieces) < wanted:
            return None
        rarest = sorted(pieces, key=lambda p: len(self.pieces.get(p, ())))[:wanted]
        return sorted({p for piece in rarest for p in self.pieces.get(piece, ())})

    def best(self, name_key: str, threshold: float) -> tuple[RecordId, float] | None:
        """The record of the name most similar to `name_key` (by `similar`), with its score."""
        positions = self._candidates(name_key, threshold)
        if positions is None:
            for position, score in similar(name_key, self.keys, threshold):
                return self.ids[position], score
            return None
        names = [self.keys[p] for p in positions]
        for found, score in similar(name_key, names, threshold):
            return self.ids[positions[found]], score
        return None
