"""NameIndex: the two-character-piece filter finds exactly what comparing every name finds.

The claim in domain/imports/name_index.py is that looking only at names sharing one of the
2d + 1 rarest pieces loses no match. Checked here against the brute force (`similar` over all
names) on a few thousand folded company names of the kind imports see: city + brand +
industry, branches and numbered shops, with one or two characters typed differently.
"""

from __future__ import annotations

import random

import pytest
from rapidfuzz import fuzz

from domain.imports.name_index import NameIndex, similar

SEED = 20261125
CITIES = ["杭州", "宁波", "温州", "上海", "苏州", "深圳"]
BRAND_FIRST = ["青", "海", "华", "金", "天", "恒", "新", "盛", "鑫", "瑞", "宏", "永"]
BRAND_SECOND = ["禾", "岳", "信", "达", "源", "泰", "丰", "隆", "通", "安", "祥", "和"]
INDUSTRIES = ["食品", "贸易", "科技", "电子", "机械", "物流", "建材", "服饰", "医药", "化工",
              "信息技术", "供应链管理", "新能源科技发展", "国际货运代理"]
TAILS = ["", "", "", "", "分公司", "滨江分公司", "3号店", "5号店", "12号店", "第一分店",
         "二期", "b座"]
TYPED = "青海华金天恒新盛鑫瑞宏永禾岳信达源泰丰隆通安祥和食品贸易科技电子机械物流的有限"


def _base(rng: random.Random) -> str:
    brand = rng.choice(BRAND_FIRST) + rng.choice(BRAND_SECOND)
    if rng.random() < 0.3:
        brand += rng.choice(BRAND_SECOND)
    return rng.choice(CITIES) + brand + rng.choice(INDUSTRIES) + rng.choice(TAILS)


def _edited(rng: random.Random, name: str) -> str:
    """The name with one or two characters inserted, left out, changed or swapped."""
    chars = list(name)
    for _ in range(rng.choice([1, 1, 2])):
        at = rng.randrange(len(chars))
        edit = rng.choice(["insert", "delete", "replace", "swap"])
        if edit == "insert":
            chars.insert(at, rng.choice(TYPED))
        elif edit == "delete" and len(chars) > 3:
            del chars[at]
        elif edit == "replace":
            chars[at] = rng.choice(TYPED)
        elif at + 1 < len(chars):
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
    return "".join(chars)


def _names(rng: random.Random, count: int) -> list[str]:
    """`count` names: distinct ones, near-copies of earlier ones and a few exact repeats."""
    names: list[str] = []
    while len(names) < count:
        roll = rng.random()
        if names and roll < 0.45:
            names.append(_edited(rng, rng.choice(names)))
        elif names and roll < 0.5:
            names.append(rng.choice(names))
        else:
            names.append(_base(rng))
    return names


def _brute(name: str, index: NameIndex, threshold: float) -> tuple[int, float] | None:
    """What comparing the name with every indexed name finds."""
    for position, score in similar(name, index.keys, threshold):
        return index.ids[position], score
    return None


@pytest.mark.parametrize("threshold", [80, 90, 95])
def test_best_finds_what_comparing_every_name_finds(threshold: float) -> None:
    rng = random.Random(SEED + threshold)
    names = _names(rng, 3_000)
    index = NameIndex()
    found = filtered = 0
    # Asked before each name is added, as an import asks before it remembers a new record.
    for record_id, name in enumerate(names, start=1):
        expected = _brute(name, index, threshold)
        assert index.best(name, threshold) == expected, (name, threshold)
        found += expected is not None
        filtered += index._candidates(name, threshold) is not None
        index.add(name, record_id)
    # And names never added, against the full index.
    for name in (_edited(rng, _base(rng)) for _ in range(500)):
        expected = _brute(name, index, threshold)
        assert index.best(name, threshold) == expected, (name, threshold)
        found += expected is not None
    assert found > 300  # the property is not vacuous: many names have a similar one
    if threshold >= 90:  # at 80 a name's pieces never reach 2d + 1: every name is compared
        assert filtered > len(names) // 2


def test_a_name_one_insertion_away_is_found_and_one_with_other_digits_is_not() -> None:
    rng = random.Random(SEED)
    index = NameIndex()
    for record_id, name in enumerate(_names(rng, 500), start=100):
        index.add(name, record_id)
    index.add("杭州青禾食品科技发展3号店", 7)

    one_insertion = "杭州青禾绿食品科技发展3号店"
    score = index.best(one_insertion, 90)
    assert score is not None and score[0] == 7
    assert score[1] == pytest.approx(100 * (1 - 1 / 27))

    other_shop = "杭州青禾食品科技发展5号店"
    assert fuzz.ratio(other_shop, "杭州青禾食品科技发展3号店") >= 90  # similar but for the digit
    assert index.best(other_shop, 90) is None


def test_a_threshold_of_zero_finds_what_similar_finds() -> None:
    index = NameIndex()
    for record_id, name in enumerate(_names(random.Random(SEED), 50), start=1):
        index.add(name, record_id)
    name = "杭州青禾食品科技发展"
    assert index.best(name, 0) == _brute(name, index, 0)
