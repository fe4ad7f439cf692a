"""Customer import of a large spreadsheet: dry run and write, against python-calamine's bare read.

    .venv/bin/python -m bench.import [--rows 100000] [--db sqlite|postgresql|both] [--keep]
        [--profile DIR]

It generates, in a temporary directory, one .xlsx of N customers with realistic Chinese data:
companies named city + brand + industry + legal suffix with valid unified social credit codes,
people with Chinese names, mobiles typed as people type them (bare, spaced, dashed, +86),
e-mails, provinces and cities, industries, sizes, tags, owners by login or by name, sources.
5% of the rows are invalid (a phone too short, an e-mail without a domain, a credit code with
a wrong check digit, an unknown owner, a birthday that is no date) and 10% are duplicates of
other rows, written differently (the phone in another format, the e-mail in capitals, the
credit code in lower case, the company name with brackets and spaces).

Each measurement runs in a fresh child process, so its peak RSS is its own:
1. the baseline: python-calamine alone opens the file and hands out every row, as the import's
   reader does (`Workbook.rows`), nothing else;
2. per database, the real import path with a real database (a SQLite file in the temporary
   directory, or a schema of its own in PostgreSQL: the server of DOSSIER_TEST_POSTGRES, default
   postgresql://postgres@127.0.0.1:5432/test), migrated, with an admin and four sales reps:
   `service.upload` and `configure` as `POST /api/imports` and `/check` call them, then
   `service.check` (the dry run) and `service.write` until done and `service.finish`, exactly
   the functions the import workflow's activities call, timed separately. The counts must
   come out as generated (invalid rows, duplicates matched) or the run fails.

It prints rows/s for the dry run and the write, the total (upload + dry run + write) against
the target of 30 s, the peak RSS against 300 MB, the calamine read time and each phase's ratio
to it, and the machine's load average. --profile DIR writes a pyinstrument profile (HTML) of
each import child there, as HTML and text (pyinstrument is a dev tool: `pip install pyinstrument`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from openpyxl import Workbook
from pydantic import SecretStr

from bench.customer_search import (
    BRAND_FIRST,
    BRAND_SECOND,
    CITIES,
    GIVEN,
    INDUSTRIES,
    MAIL_DOMAINS,
    MOBILE_PREFIXES,
    POSTGRES_DSN,
    ROADS,
    SIZES,
    SOURCES,
    SUFFIXES,
    SURNAMES,
    credit_code,
)

SEED = 20261125
INVALID_SHARE = 0.05
DUPLICATE_SHARE = 0.10
TARGET_SECONDS = 30.0
TARGET_MB = 300.0
HEADER = ["客户名称", "客户类型", "统一社会信用代码", "手机号", "邮箱", "省份", "城市", "行业",
          "规模", "注册地址", "标签", "负责人", "来源", "生日"]
REPS = [("bench-rep1", "李明"), ("bench-rep2", "张静"), ("bench-rep3", "王磊"),
        ("bench-rep4", "陈婷")]
TAG_CHOICES = ["重点客户", "VIP", "展会", "转介绍", "需回访", "华东", "老客户"]


# --- the file --------------------------------------------------------------------------------


def _typed_phone(rng: random.Random, digits: str) -> str:
    return rng.choice([digits, f"{digits[:3]} {digits[3:7]} {digits[7:]}",
                       f"{digits[:3]}-{digits[3:7]}-{digits[7:]}", f"+86 {digits}",
                       f"+86-{digits}", f"(+86){digits}"])


def _retyped_name(rng: random.Random, name: str) -> str:
    """The same company as another person types it: spaces, full-width brackets, a suffix."""
    if name.endswith("有限公司"):
        stem = name.removesuffix("有限公司")
        return rng.choice([f" {stem} 有限公司", f"{stem}（有限公司）", f"{stem}有限责任公司"])
    return f" {name} "


@dataclass
class Plan:
    """What the generated file holds, to check the import's counts against."""

    rows: int = 0
    unique: int = 0
    duplicates: int = 0
    invalid: int = 0


def _unique_rows(rng: random.Random, count: int) -> Iterator[list[Any]]:
    """`count` distinct customers: 70% companies, 30% people; every key is unique."""
    numbers = rng.sample(range(100_000_000), count)
    stems: set[str] = set()
    for i, number in enumerate(numbers):
        city, province, region, _ = rng.choices(CITIES, weights=[c[3] for c in CITIES])[0]
        digits = MOBILE_PREFIXES[number % len(MOBILE_PREFIXES)] + f"{number:08d}"
        owner = rng.choice(REPS)[rng.randrange(2)] if rng.random() < 0.9 else None
        tags = "、".join(rng.sample(TAG_CHOICES, rng.randrange(3))) or None
        source = rng.choice(SOURCES)
        phone = _typed_phone(rng, digits) if rng.random() < 0.9 else None
        if rng.random() < 0.7:
            word, industry = rng.choice(INDUSTRIES)
            while True:  # a brand of two or three characters, once per city and industry
                brand = rng.choice(BRAND_FIRST)[0] + rng.choice(BRAND_SECOND)[0]
                if rng.random() < 0.5:
                    brand += rng.choice(BRAND_SECOND)[0]
                if (stem := city + brand + word) not in stems:
                    stems.add(stem)
                    break
            suffix = rng.choices([s for s, _ in SUFFIXES], weights=[w for _, w in SUFFIXES])[0]
            site = f"c{i:x}"
            yield [stem + suffix, "企业", credit_code(region, i + 1) if rng.random() < 0.9
                   else None, phone, f"info@{site}.com.cn" if rng.random() < 0.6 else None,
                   province, city, industry, rng.choice(SIZES),
                   f"{province}{city}市{rng.choice(ROADS)}{rng.randrange(1, 999)}号",
                   tags, owner, source, None]
        else:
            surname, surname_py = rng.choice(SURNAMES)
            given = [rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))]
            domain = rng.choice(MAIL_DOMAINS)[0]
            birthday = (f"{rng.randrange(1960, 2004)}年{rng.randrange(1, 13)}月"
                        f"{rng.randrange(1, 29)}日" if rng.random() < 0.3 else None)
            yield [surname + "".join(g for g, _ in given), "个人", None, _typed_phone(rng, digits),
                   f"{surname_py}{''.join(p for _, p in given)}.{i:x}@{domain}"
                   if rng.random() < 0.5 else None, province, city, None, None, None, tags,
                   owner, source, birthday]


def _duplicate(rng: random.Random, row: list[Any]) -> list[Any]:
    """The same customer written differently: keys reformatted, some cells left out."""
    twin = list(row)
    if twin[1] == "企业":
        twin[0] = _retyped_name(rng, twin[0])
        if twin[2]:
            twin[2] = twin[2].lower()
    if twin[3]:
        digits = "".join(ch for ch in twin[3] if ch.isdigit()).removeprefix("86")
        twin[3] = _typed_phone(rng, digits)
    if twin[4]:
        twin[4] = twin[4].upper()
    if not (twin[2] or twin[3] or twin[4]) and twin[1] == "个人":
        return twin  # a person without keys is matched by nothing: the plain copy
    for k in (9, 10, 13):
        if rng.random() < 0.5:
            twin[k] = None
    return twin


def _invalid(rng: random.Random, row: list[Any], k: int) -> list[Any]:
    """A row with one mistake people make, never a copy of another row's keys."""
    bad = list(row)
    mistake = k % 5
    if mistake == 0:
        bad[3] = "12345"
    elif mistake == 1:
        bad[4] = f"kefu{k}@"
    elif mistake == 2 and bad[1] == "企业":
        good = credit_code("310115", 90_000_000 + k)
        bad[2] = good[:-1] + ("0" if good[-1] != "0" else "1")  # a wrong check digit
    elif mistake == 3:
        bad[11] = "不存在的销售"
    else:
        bad[13] = "1990年2月30日"
    if mistake == 2 and bad[1] != "企业":
        bad[3] = "12345"
    return bad


def generate(path: Path, rows: int) -> Plan:
    """Write the workbook (openpyxl write-only); the rows are shuffled once made."""
    rng = random.Random(SEED)
    n_invalid = round(rows * INVALID_SHARE)
    n_duplicates = round(rows * DUPLICATE_SHARE)
    n_unique = rows - n_invalid - n_duplicates
    unique = list(_unique_rows(rng, n_unique + n_invalid))
    valid, spoilt = unique[:n_unique], unique[n_unique:]
    body = valid + [_duplicate(rng, rng.choice(valid)) for _ in range(n_duplicates)]
    body += [_invalid(rng, row, k) for k, row in enumerate(spoilt)]
    rng.shuffle(body)
    # A duplicate before its original is fine: the original then matches the duplicate.
    book = Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    sheet.append(HEADER)
    for row in body:
        sheet.append(row)
    book.save(path)
    return Plan(rows=rows, unique=n_unique, duplicates=n_duplicates, invalid=n_invalid)


# --- the children ----------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> float:
    """CPU seconds of this process, all threads (the SQLite driver's included): unlike wall
    time, hardly moved by other work on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_calamine(path: Path) -> dict[str, Any]:
    """The baseline: python-calamine opens the file and hands out every row, nothing more."""
    import python_calamine

    start_mb = _rss_mb()
    started = time.perf_counter()
    book = python_calamine.CalamineWorkbook.from_filelike(open(path, "rb"))  # noqa: SIM115
    rows = sum(1 for _ in book.get_sheet_by_index(0).iter_rows())
    book.close()
    return {"seconds": time.perf_counter() - started, "rows": rows, "start_mb": start_mb,
            "peak_mb": _peak_mb()}


@dataclass
class Database:
    url: str
    schema: str | None = None

    def drop(self) -> None:
        if self.schema is not None:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as db:
                db.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def _database(dialect: str, work: Path) -> Database:
    if dialect == "sqlite":
        return Database(f"sqlite+aiosqlite:///{work / f'import-{uuid.uuid4().hex[:6]}.db'}")
    schema = f"bench_import_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5) as db:
            db.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        sys.exit(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}")
    base = POSTGRES_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
    return Database(f"{base}?options=-csearch_path%3D{schema}", schema=schema)


async def _import(url: str, path: Path, work: Path, profile: Path | None) -> dict[str, Any]:
    from domain import user
    from domain.access import SYSTEM, Role, Source
    from domain.db import create_engine, session_factory, transaction
    from domain.imports import Entity, service
    from domain.imports.models import Import, Status
    from domain.imports.schemas import ImportOptions
    from domain.settings import Settings

    settings = Settings(database_url=url, var_dir=work / f"var-{uuid.uuid4().hex[:6]}",
                        secret_key=SecretStr("bench-" + "x" * 40))
    engine = create_engine(url)
    sessions = session_factory(engine)
    password = SecretStr(uuid.uuid4().hex)
    async with transaction(sessions) as session:
        admin = await user.create(session, actor=SYSTEM, data=user.UserCreate(
            username="bench-admin", display_name="管理员", password=password, role=Role.admin))
        for username, name in REPS:
            await user.create(session, actor=SYSTEM, data=user.UserCreate(
                username=username, display_name=name, password=password, role=Role.sales))
        actor = await user.actor_for(session, user=admin, source=Source.page)
    start_mb = _rss_mb()
    profiler = _profiler(profile)
    times: dict[str, float] = {}

    def noop(_done: int) -> None:
        return None

    cpu: dict[str, float] = {}
    with profiler:
        started, used = time.perf_counter(), _cpu()
        data = await asyncio.to_thread(path.read_bytes)
        async with transaction(sessions) as session:
            imp = await service.upload(session, actor=actor, settings=settings,
                                       entity=Entity.customers, filename=path.name, data=data)
            await service.configure(session, actor=actor, settings=settings, import_id=imp.id,
                                    options=ImportOptions())
            import_id = imp.id
        del data
        times["upload"], cpu["upload"] = time.perf_counter() - started, _cpu() - used

        started, used = time.perf_counter(), _cpu()
        summary = await service.check(sessions, settings, import_id=import_id, heartbeat=noop)
        times["check"], cpu["check"] = time.perf_counter() - started, _cpu() - used

        started, used = time.perf_counter(), _cpu()
        activities = 0
        while True:
            activities += 1
            if (await service.write(sessions, settings, import_id=import_id,
                                    heartbeat=noop)).done:
                break
        await service.finish(sessions, settings, import_id=import_id, status=Status.done,
                             error=None)
        times["write"], cpu["write"] = time.perf_counter() - started, _cpu() - used
    if profile is not None:
        target = profile / f"import-{engine.dialect.name}"
        target.with_suffix(".html").write_text(profiler.output_html())
        target.with_suffix(".txt").write_text(profiler.output_text(show_all=False))
    async with sessions() as session:
        final = await session.get(Import, import_id)
        assert final is not None
        counts = {"new": summary.new_rows, "matched": summary.matched_rows,
                  "invalid": summary.invalid_rows, "created": final.created_count,
                  "skipped": final.skipped_count, "errors": final.error_count,
                  "status": final.status, "write_activities": activities}
    await engine.dispose()
    return {"times": times, "cpu": cpu, "counts": counts, "start_mb": start_mb,
            "peak_mb": _peak_mb()}


def _profiler(profile: Path | None) -> AbstractContextManager[Any]:
    if profile is None:
        return nullcontext()
    from pyinstrument import Profiler  # a dev tool, not a dependency

    return Profiler(async_mode="enabled")


def child_import(dialect: str, path: Path, work: Path, profile: Path | None,
                 keep: bool) -> dict[str, Any]:
    import migrations

    database = _database(dialect, work)
    try:
        migrations.upgrade(database.url)
        return asyncio.run(_import(database.url, path, work, profile))
    finally:
        if not keep:
            database.drop()


# --- the parent ------------------------------------------------------------------------------


def _run_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.import", *args], check=False,
                          stdout=subprocess.PIPE)
    if done.returncode != 0:
        sys.exit(f"the measuring process {args[:2]} failed with exit code {done.returncode}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _check(plan: Plan, counts: dict[str, Any]) -> list[str]:
    """What differs from the generated file: the import must find what was put in."""
    problems = []
    if counts["invalid"] != plan.invalid:
        problems.append(f"{counts['invalid']} invalid rows, {plan.invalid} generated")
    if counts["matched"] < plan.duplicates:
        problems.append(f"{counts['matched']} rows matched, {plan.duplicates} duplicates made")
    if counts["created"] != counts["new"]:
        problems.append(f"{counts['created']} created after a dry run that found {counts['new']}")
    if counts["status"] != "done":
        problems.append(f"the import ended {counts['status']}")
    return problems


def report(plan: Plan, size: int, bare: dict[str, Any], results: dict[str, dict[str, Any]],
           load: tuple[float, float]) -> tuple[str, bool]:
    lines = [
        f"{plan.rows:,} rows ({size / 1e6:.1f} MB .xlsx): {plan.unique:,} distinct customers, "
        f"{plan.duplicates:,} duplicates written differently, {plan.invalid:,} invalid; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} before, {load[1]:.1f} after",
        f"baseline: python-calamine reads every row in {bare['seconds']:.2f} s "
        f"({plan.rows / bare['seconds']:,.0f} rows/s), peak RSS {bare['peak_mb']:.0f} MB",
        "database    upload s  dry run s  rows/s  ×calamine  write s  rows/s  ×calamine  "
        "total s  peak MB  target",
    ]
    passed = True
    for dialect, result in results.items():
        t = result["times"]
        total = t["upload"] + t["check"] + t["write"]
        ok = total <= TARGET_SECONDS and result["peak_mb"] <= TARGET_MB
        passed = passed and ok
        lines.append(
            f"{dialect:<10} {t['upload']:>9.1f} {t['check']:>10.1f} "
            f"{plan.rows / t['check']:>7,.0f} {t['check'] / bare['seconds']:>10.0f} "
            f"{t['write']:>8.1f} {plan.rows / t['write']:>7,.0f} "
            f"{t['write'] / bare['seconds']:>10.0f} {total:>8.1f} {result['peak_mb']:>8.0f}  "
            + ("PASS" if ok else "FAIL"))
    for dialect, result in results.items():
        c, cpu = result["counts"], result["cpu"]
        lines.append(
            f"{dialect}: CPU seconds upload {cpu['upload']:.1f}, dry run {cpu['check']:.1f} "
            f"({1000 * cpu['check'] / plan.rows:.2f} ms/row), write {cpu['write']:.1f} "
            f"({1000 * cpu['write'] / plan.rows:.2f} ms/row)")
        lines.append(
            f"{dialect}: dry run new {c['new']:,}, matched {c['matched']:,}, invalid "
            f"{c['invalid']:,}; written: created {c['created']:,}, skipped {c['skipped']:,}, "
            f"errors {c['errors']:,} in {c['write_activities']} write activities; RSS "
            f"{result['start_mb']:.0f} MB before the upload")
    lines.append(f"targets: upload + dry run + write <= {TARGET_SECONDS:.0f} s and peak RSS <= "
                 f"{TARGET_MB:.0f} MB per process")
    return "\n".join(lines), passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory, the databases and the file")
    parser.add_argument("--profile", type=Path, help="write pyinstrument profiles here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.child:
        what, file = args.child
        path = Path(file)
        result = (child_calamine(path) if what == "calamine"
                  else child_import(what, path, path.parent, args.profile, args.keep))
        print(json.dumps(result))
        return 0
    if args.rows < 100:
        parser.error("--rows must be at least 100")
    work = Path(tempfile.mkdtemp(prefix="dossier-import-bench-"))
    try:
        load = os.getloadavg()[0]
        path = work / "客户.xlsx"
        started = time.perf_counter()
        plan = generate(path, args.rows)
        print(f"generated {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        extra = [*(["--profile", str(args.profile)] if args.profile else []),
                 *(["--keep"] if args.keep else [])]
        bare = _run_child(["--child", "calamine", str(path)])
        results: dict[str, dict[str, Any]] = {}
        dialects = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        failures: list[str] = []
        for dialect in dialects:
            print(f"{dialect}: importing …", file=sys.stderr, flush=True)
            results[dialect] = _run_child(["--child", dialect, str(path), *extra])
            print(f"{dialect}: {json.dumps(results[dialect])}", file=sys.stderr, flush=True)
            failures += [f"{dialect}: {p}" for p in _check(plan, results[dialect]["counts"])]
        text, passed = report(plan, path.stat().st_size, bare, results,
                              (load, os.getloadavg()[0]))
        print(text)
        for failure in failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        if not passed:
            print("targets not met", file=sys.stderr)
        return 1 if failures else 0
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            _remove(work)


def _remove(work: Path) -> None:
    for item in sorted(work.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()
    work.rmdir()


if __name__ == "__main__":
    sys.exit(main())
