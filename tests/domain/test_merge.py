"""The duplicate review's name filter finds exactly the pairs comparing all pairs would find."""

from __future__ import annotations

import random

import pytest

from domain.imports.dedupe import FUZZY_PREFIX
from domain.imports.name_index import similar
from domain.merge.duplicates import similar_pairs


def _all_pairs(keys: list[str], threshold: float) -> set[tuple[str, str]]:
    found = set()
    for i, key in enumerate(keys):
        rest = [k for k in keys[i + 1 :] if k[:FUZZY_PREFIX] == key[:FUZZY_PREFIX]]
        for position, _score in similar(key, rest, threshold, limit=None):
            found.add(tuple(sorted((key, rest[position]))))
    return found


@pytest.mark.parametrize("threshold", [95, 90, 80, 70])
@pytest.mark.parametrize("alphabet", ["云杉信息科技网络贸易电子机械食品医药3", "哈哈云云杉ab"])
def test_filter_misses_no_pair_and_invents_none(threshold: float, alphabet: str) -> None:
    """Random names and near copies of them (an insertion, a deletion, a substitution); the
    small alphabet repeats character pairs within one name."""
    rng = random.Random(threshold)
    base = [
        rng.choice(["上海", "北京"]) + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 14))
        )
        for _ in range(600)
    ]
    keys = set(base)
    for name in base[:300]:
        chars, at = list(name), rng.randrange(len(name) + 1)
        edit = rng.random()
        if edit < 0.4:
            chars.insert(at, rng.choice(alphabet))
        elif len(chars) > 3:
            chars[min(at, len(chars) - 1)] = rng.choice(alphabet) if edit < 0.7 else ""
        keys.add("".join(chars))
    ordered = sorted(keys)
    found = {tuple(sorted((a, b))) for a, b, _ in similar_pairs(ordered, threshold)}
    assert found == _all_pairs(ordered, threshold)
    assert found  # the data has near copies to find


def test_names_differing_in_numbers_are_never_similar() -> None:
    assert list(similar_pairs(["上海百味餐饮3号店", "上海百味餐饮5号店"], 80)) == []
