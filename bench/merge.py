"""The duplicate review on a large database: how long one page of likely duplicates takes.

    .venv/bin/python -m bench.merge [--rows 100000] [--runs 3] [--keep]

Loads N customers into SQLite with `bench.customer_search`'s generator (company names of city +
brand + industry + legal suffix, people, valid credit codes, mobiles, e-mails, owners; a DB
kept by either benchmark with the same --rows is reused with --keep), then times
`domain.merge.duplicates.find` for an admin, who sees every customer, and prints the groups
found, the largest block of names sharing their first characters and the seconds per run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter

from sqlalchemy import select

from bench.customer_search import _sqlite, load
from domain.access import Actor, Role, Source
from domain.customer import Customer, Kind
from domain.db import create_engine, session_factory
from domain.imports.dedupe import FUZZY_PREFIX
from domain.merge import duplicates
from domain.settings import settings


async def measure(url: str, admin_id: int, runs: int) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    actor = Actor(user_id=admin_id, name="bench", role=Role.admin, source=Source.system)
    async with sessions() as session:
        keys = list(await session.scalars(
            select(Customer.name_key).where(
                Customer.kind == Kind.company.value, Customer.deleted_at.is_(None)
            )
        ))
    blocks = Counter(k[:FUZZY_PREFIX] for k in set(keys))
    print(f"{len(keys):,} live companies, {len(blocks):,} name blocks, largest "
          f"{blocks.most_common(1)[0][1]:,} names")
    seconds = []
    for _ in range(runs):
        async with sessions() as session:
            started = time.perf_counter()
            page = await duplicates.find(
                session, actor=actor, threshold=settings.lead_fuzzy_threshold, page=1, size=20
            )
            seconds.append(time.perf_counter() - started)
    print(f"{page.total:,} groups; first page in {statistics.median(seconds):.2f} s median "
          f"(runs: {', '.join(f'{s:.2f}' for s in seconds)})")
    await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database; reuse a kept one")
    args = parser.parse_args(argv)
    database, target = _sqlite(args.rows, args.keep)
    try:
        if target is not None:
            print(f"loading {args.rows:,} customers …", file=sys.stderr, flush=True)
            load([target], args.rows)
        asyncio.run(measure(database.url, database.probes.admin_id, args.runs))
    finally:
        if target is not None:
            target.close()
        for cleanup in database.cleanup:
            cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
