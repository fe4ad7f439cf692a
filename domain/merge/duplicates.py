"""Likely duplicates already in the database, as groups a person reviews before merging.

The evidence is the duplicate guard's: the same credit code, phone or email, or the same folded
company name; plus, for companies, folded names at least `threshold` alike by the rule imports
use (`dedupe.similar`) among names sharing their first characters, as lead intake and imports
compare them. Only names that could reach the threshold are compared (see `similar_pairs`), so
100,000 customers cost seconds, not the 5·10⁹ comparisons of all pairs (bench/merge.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import customer
from domain.access import Actor, Scope
from domain.customer import Customer, Kind
from domain.imports.dedupe import FUZZY_PREFIX
from domain.imports.name_index import longest_similar, most_edits, similar
from domain.merge.models import DuplicateGroup, DuplicatePage, Key, Member, Reason

RANK = {key: rank for rank, key in enumerate(Key)}


class _Groups:
    """Union-find over customer ids: evidence joins customers into one group."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def join(self, ids: list[int]) -> None:
        first = self.find(ids[0])
        for other in ids[1:]:
            root = self.find(other)
            if root != first:
                self.parent[root] = first


def _bigrams(key: str) -> list[str]:
    """Its character pairs, a repeated pair numbered (a multiset as a set)."""
    pairs = [key[i : i + 2] for i in range(len(key) - 1)]
    if len(set(pairs)) == len(pairs):
        return pairs
    seen: Counter[str] = Counter()
    out = []
    for pair in pairs:
        out.append(f"{pair}{seen[pair]}" if seen[pair] else pair)
        seen[pair] += 1
    return out


def similar_pairs(keys: list[str], threshold: float) -> Iterator[tuple[str, str, float]]:
    """Pairs of distinct folded names sharing their first FUZZY_PREFIX characters and at least
    `threshold` alike (`dedupe.similar`), each pair once.

    Not all pairs of a block: names that close are a few insertions or deletions apart, and
    each edit breaks at most two character pairs, so two such names share all but a few pairs.
    Any name they share enough pairs with shares one of their rarest few, so only the names
    found under those are compared (the q-gram count filter with prefix filtering)."""
    threshold = max(threshold, 1.0)
    ordered = sorted(set(keys), key=lambda k: (len(k), k))
    lengths = [len(k) for k in ordered]
    grams = [_bigrams(k) for k in ordered]
    postings: dict[tuple[str, str], list[int]] = defaultdict(list)
    blocks: dict[str, list[int]] = defaultdict(list)
    for me, key in enumerate(ordered):
        blocks[key[:FUZZY_PREFIX]].append(me)
        for pair in grams[me]:
            postings[key[:FUZZY_PREFIX], pair].append(me)
    for me, key in enumerate(ordered):
        block, pairs = key[:FUZZY_PREFIX], grams[me]
        end = bisect_right(lengths, longest_similar(len(key), threshold))
        edits = most_edits(len(key), threshold)
        shared = len(pairs) - 2 * edits
        if shared > 0:
            rarest = sorted(pairs, key=lambda p: len(postings[block, p]))
            pool: set[int] | list[int] = {
                i for p in rarest[: len(pairs) - shared + 1] for i in postings[block, p]
            }
        else:
            pool = blocks[block]
        candidates = [ordered[i] for i in pool if me < i < end]
        for position, score in similar(key, candidates, threshold, limit=None):
            yield key, candidates[position], score

async def find(
    session: AsyncSession,
    *,
    actor: Actor,
    threshold: float,
    page: int = 1,
    size: int = 20,
) -> DuplicatePage:
    """Groups of customers the actor may see that look like one, strongest evidence first."""
    actor.require_scope(Scope.customers_read)
    rows = (
        await session.execute(
            select(
                Customer.id,
                Customer.kind,
                Customer.name_key,
                Customer.credit_code,
                Customer.phone,
                Customer.email,
            ).where(customer.visible(actor))
        )
    ).all()
    groups = _Groups()
    reasons: list[Reason] = []
    by_key: dict[Key, dict[str, list[int]]] = {k: defaultdict(list) for k in Key}
    company = Kind.company.value
    for customer_id, kind, name_key, credit_code, phone, email in rows:
        for key, value in ((Key.credit_code, credit_code), (Key.phone, phone),
                           (Key.email, email)):
            if value:
                by_key[key][value].append(customer_id)
        if kind == company:
            by_key[Key.name][name_key].append(customer_id)
    for key in (Key.credit_code, Key.phone, Key.email):
        for value, ids in by_key[key].items():
            if len(ids) > 1:
                reasons.append(Reason(key=key, customer_ids=sorted(ids), value=value))
                groups.join(ids)
    by_name = by_key[Key.name]
    for ids in by_name.values():
        if len(ids) > 1:
            reasons.append(Reason(key=Key.name, customer_ids=sorted(ids), score=100.0))
            groups.join(ids)
    for first, second, score in similar_pairs(list(by_name), threshold):
        ids = sorted(by_name[first] + by_name[second])
        reasons.append(Reason(key=Key.name, customer_ids=ids, score=round(score, 1)))
        groups.join(ids)

    found: dict[int, list[Reason]] = defaultdict(list)
    for reason in reasons:
        found[groups.find(reason.customer_ids[0])].append(reason)
    members: dict[int, set[int]] = defaultdict(set)
    for item in groups.parent:
        members[groups.find(item)].add(item)
    ordered = sorted(
        found,
        key=lambda root: (min(RANK[r.key] for r in found[root]), min(members[root])),
    )
    chosen = ordered[(page - 1) * size : page * size]
    wanted = sorted({i for root in chosen for i in members[root]})
    loaded = {
        c.id: Member.model_validate(c)
        for c in await session.scalars(select(Customer).where(Customer.id.in_(wanted)))
    } if wanted else {}
    return DuplicatePage(
        items=[
            DuplicateGroup(
                customers=[loaded[i] for i in sorted(members[root])],
                reasons=sorted(found[root], key=lambda r: (RANK[r.key], r.customer_ids)),
            )
            for root in chosen
        ],
        total=len(ordered),
        page=page,
        size=size,
    )
