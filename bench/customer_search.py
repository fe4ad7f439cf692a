"""Customer search on a large database: the service against hand-written SQL, per query kind.

    .venv/bin/python -m bench.customer_search [--rows 1000000] [--db sqlite|postgresql|both]
        [--runs 20] [--warmup 2] [--budget 30] [--keep] [--explain]

For each database it
1. builds a schema with the real migrations (so the real indexes are measured) and loads N
   customers of realistic Chinese data: companies named city + brand + industry + legal suffix
   (杭州青禾食品股份有限公司) with valid unified social credit codes, people with Chinese names,
   E.164 mobiles, e-mails, five tags, fifty sales reps as owners, stages, thirty cities, 1%
   archived, and a single-select custom field `tier`. The rows are generated once and loaded
   into every database asked for: raw executemany on SQLite (values converted by the columns'
   own SQLAlchemy bind processors), COPY on PostgreSQL; secondary indexes are dropped for the
   load and rebuilt from their migrated definitions, then ANALYZE (VACUUM ANALYZE);
2. times `domain.customer.search` for every kind of query the customer list offers (median and
   p95 over --runs after --warmup; a query kind that has used up --budget seconds stops after
   5 runs), and beside it, interleaved, on the same engine, plain SQL
   that returns the same page, tags and total. Service and SQL must return the same ids and
   total, or the run fails. The SQL's count and page are also timed on their own, and a count
   capped at 10,001 rows, because on a million rows the total is usually what costs;
3. prints one table per database, with load time and size.

SQLite lives in a file under /tmp/dossier-bench, PostgreSQL in a schema of its own (the server
from DOSSIER_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test). Both are removed
at the end unless --keep is given; --keep also reuses a database kept by an earlier run with
the same --rows. --explain prints the plan of each statement the service sends (PostgreSQL:
EXPLAIN ANALYZE, BUFFERS), which is how full scans are found.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import sys
import time
import unicodedata
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from psycopg import sql
from sqlalchemy import bindparam, event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from stdnum.cn import uscc

import migrations
from domain import normalize
from domain.access import Actor, Role, Source
from domain.custom_field import CustomField
from domain.customer import Customer, CustomerQuery, Page, search
from domain.db import create_engine, session_factory
from domain.user import User

POSTGRES_DSN = os.environ.get("DOSSIER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SQLITE_DIR = Path("/tmp/dossier-bench")
BATCH = 10_000
COUNT_CAP = 10_000
MIN_RUNS = 5
SEED = 20261123

# --- realistic data ------------------------------------------------------------------------

# city, province, region code of one district (positions 3-8 of a credit code), weight
CITIES = [
    ("上海", "上海", "310115", 9),
    ("北京", "北京", "110105", 9),
    ("深圳", "广东", "440305", 8),
    ("广州", "广东", "440106", 7),
    ("杭州", "浙江", "330106", 6),
    ("成都", "四川", "510107", 5),
    ("苏州", "江苏", "320505", 5),
    ("南京", "江苏", "320102", 4),
    ("武汉", "湖北", "420106", 4),
    ("重庆", "重庆", "500103", 4),
    ("天津", "天津", "120116", 3),
    ("西安", "陕西", "610113", 3),
    ("宁波", "浙江", "330203", 3),
    ("东莞", "广东", "441900", 3),
    ("佛山", "广东", "440604", 3),
    ("青岛", "山东", "370212", 3),
    ("长沙", "湖南", "430104", 3),
    ("郑州", "河南", "410105", 3),
    ("无锡", "江苏", "320214", 2),
    ("厦门", "福建", "350203", 2),
    ("合肥", "安徽", "340104", 2),
    ("济南", "山东", "370102", 2),
    ("福州", "福建", "350102", 2),
    ("昆明", "云南", "530102", 1),
    ("沈阳", "辽宁", "210102", 1),
    ("大连", "辽宁", "210202", 1),
    ("哈尔滨", "黑龙江", "230102", 1),
    ("长春", "吉林", "220102", 1),
    ("南宁", "广西", "450103", 1),
    ("石家庄", "河北", "130102", 1),
]


def _pinyin(chars: str, readings: str) -> list[tuple[str, str]]:
    return list(zip(chars, readings.split(), strict=True))


# Brands are one character of each list (27 x 24 = 648 brands, so one brand is in about 0.1% of
# a table that is 60% companies). 鲲 and 鹏 are in neither: 鲲鹏 is the rare probe.
BRAND_FIRST = _pinyin(
    "青云恒华金瑞嘉博盛鼎宏新正泰联百优创远明佳信诚汇永康启",
    "qing yun heng hua jin rui jia bo sheng ding hong xin zheng tai lian bai you chuang yuan"
    " ming jia xin cheng hui yong kang qi",
)
BRAND_SECOND = _pinyin(
    "禾杉川源达辉通成德丰利邦科宇航星腾景和晟鑫润祥隆",
    "he shan chuan yuan da hui tong cheng de feng li bang ke yu hang xing teng jing he sheng"
    " xin run xiang long",
)
SURNAMES = _pinyin(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董",
    "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng"
    " liang xie song tang xu han feng deng cao peng zeng xiao tian dong",
)
GIVEN = _pinyin(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛超秀霞平刚英玉兰文建晓婷浩欣怡子涵雪琳俊梓萱晨轩思雨",
    "wei fang na min jing li qiang lei jun yang yong yan jie juan tao chao xiu xia ping gang"
    " ying yu lan wen jian xiao ting hao xin yi zi han xue lin jun zi xuan chen xuan si yu",
)
# (word in the name, industry as recorded); no word ends in a legal suffix (厂, 公司, 集团)
INDUSTRIES = [
    ("食品", "食品制造"),
    ("科技", "软件和信息技术服务"),
    ("信息技术", "软件和信息技术服务"),
    ("网络科技", "互联网和相关服务"),
    ("机械", "通用设备制造"),
    ("精密机械", "专用设备制造"),
    ("智能装备", "专用设备制造"),
    ("电子", "计算机、通信和其他电子设备制造"),
    ("光电", "计算机、通信和其他电子设备制造"),
    ("贸易", "批发业"),
    ("物流", "道路运输业"),
    ("供应链管理", "商务服务业"),
    ("医药", "医药制造"),
    ("生物科技", "研究和试验发展"),
    ("建材", "非金属矿物制品"),
    ("纺织", "纺织业"),
    ("服饰", "纺织服装、服饰业"),
    ("家具", "家具制造"),
    ("化工", "化学原料和化学制品制造"),
    ("新能源", "电气机械和器材制造"),
    ("汽车零部件", "汽车制造"),
    ("餐饮管理", "餐饮业"),
    ("酒店管理", "住宿业"),
    ("文化传媒", "文化艺术业"),
    ("教育科技", "教育"),
    ("建筑工程", "土木工程建筑业"),
    ("环保科技", "生态保护和环境治理业"),
    ("包装材料", "造纸和纸制品业"),
    ("农业发展", "农业"),
    ("印刷", "印刷和记录媒介复制业"),
]
SUFFIXES = [("有限公司", 62), ("有限责任公司", 15), ("股份有限公司", 12), ("集团有限公司", 3)]
# Mobile prefixes that phonenumbers accepts as valid Chinese mobiles.
MOBILE_PREFIXES = [str(p) for p in (*range(130, 134), *range(135, 140), 150, 151, 152)] + [
    str(p) for p in (*range(155, 160), 166, 176, 177, *range(180, 184), *range(185, 190), 198, 199)
]
MAIL_DOMAINS = [
    ("qq.com", 40),
    ("163.com", 25),
    ("126.com", 8),
    ("foxmail.com", 8),
    ("sina.com", 5),
    ("outlook.com", 7),
    ("gmail.com", 7),
]
STAGES = [("lead", 25), ("prospect", 35), ("customer", 33), ("churned", 7)]
SOURCES = ["展会", "官网", "转介绍", "电话营销", "百度推广", "抖音", "微信公众号", "地推"]
TAGS = [("重点客户", 0.05), ("VIP", 0.02), ("展会", 0.10), ("转介绍", 0.03), ("需回访", 0.08)]
TIERS = [("A", 10), ("B", 30), ("C", 40), (None, 20)]
MEMBER_LEVELS = ["普通会员", "银卡会员", "金卡会员", "钻石会员"]
SIZES = ["1-9", "10-49", "50-199", "200-999", "1000+"]
ROADS = ["人民路", "中山路", "解放路", "建设路", "文三路", "科技园路", "长江路", "和平路"]
COMPANY_MAILBOXES = ["info", "sales", "service", "hr"]
N_OWNERS = 50
COMMON_BRAND = "青禾"
RARE_BRAND = "鲲鹏"
RARE_EVERY = 100_000
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(region: str, i: int) -> str:
    """A valid unified social credit code: 91 (enterprise), region, MA + 7 characters, check."""
    chars = []
    for _ in range(7):
        i, r = divmod(i, 31)
        chars.append(_USCC_ALPHABET[r])
    body = "91" + region + "MA" + "".join(reversed(chars))
    return body + uscc.calc_check_digit(body)


def _picker(rng: random.Random, pairs: list[tuple[Any, float]]) -> Callable[[], Any]:
    """Weighted choice with precomputed cumulative weights."""
    items = [item for item, _ in pairs]
    cum: list[float] = []
    total = 0.0
    for _, weight in pairs:
        total += weight
        cum.append(total)
    uniform = rng.random
    return lambda: items[bisect_right(cum, uniform() * total)]


@dataclass
class Probes:
    """Values the queries look for, picked from the generated rows; saved with a kept DB."""

    admin_id: int = 0
    owner_ids: list[int] = field(default_factory=list)
    phone: str = ""
    email: str = ""
    credit_code: str = ""
    rows: int = 0
    load: dict[str, float] = field(default_factory=dict)


Batch = tuple[list[dict[str, Any]], list[tuple[int, str]]]


def generate(n: int, owner_ids: list[int], probes: Probes, now: datetime) -> Iterator[Batch]:
    """Batches of (customer rows, (customer_id, tag) rows); the same for the same n."""
    rng = random.Random(SEED)
    uniform, choice, randrange = rng.random, rng.choice, rng.randrange
    city = _picker(rng, [(c, c[3]) for c in CITIES])
    suffix = _picker(rng, SUFFIXES)
    surname = _picker(rng, [(s, 1 / (k + 3)) for k, s in enumerate(SURNAMES)])
    mail_domain = _picker(rng, MAIL_DOMAINS)
    stage = _picker(rng, STAGES)
    tier = _picker(rng, TIERS)
    owner = _picker(rng, [(o, 1 / (k + 4)) for k, o in enumerate(owner_ids)])
    keys: dict[str, str] = {}
    person_keys: dict[str, str] = {}
    five_years = 5 * 365 * 86400
    probe_from = int(n * 0.6)
    customers: list[dict[str, Any]] = []
    tags: list[tuple[int, str]] = []
    for i in range(1, n + 1):
        rare = i % RARE_EVERY == RARE_EVERY // 2
        c_name, c_province, c_region, _ = city()
        created = now - timedelta(seconds=uniform() * five_years)
        updated = created + (now - created) * uniform() ** 3
        row_stage = stage()
        bought = row_stage in ("customer", "churned")
        first = (created + timedelta(days=randrange(60))).date() if bought else None
        count = randrange(1, 40) if bought else 0
        value = tier()
        phone = None
        if uniform() < 0.8:
            prefix = MOBILE_PREFIXES[i % len(MOBILE_PREFIXES)]
            phone = f"+86{prefix}{(i * 48271 + 12345) % 100_000_000:08d}"  # unique per prefix
        row: dict[str, Any] = {
            "id": i,
            "phone": phone,
            "province": c_province,
            "city": c_name,
            "source": choice(SOURCES),
            "owner_id": owner() if uniform() < 0.92 else None,
            "stage": row_stage,
            "notes": "客户关注交期与价格，需每月回访" if uniform() < 0.1 else None,
            "custom": {"tier": value} if value else {},
            "first_purchase_on": first,
            "last_purchase_on": first + timedelta(days=randrange(400)) if first else None,
            "purchase_count": count,
            "total_amount": Decimal(randrange(100_000, 50_000_000) * count) / 100,
            "currency": "CNY",
            "deleted_at": updated if uniform() < 0.01 else None,
            "created_at": created,
            "updated_at": updated,
            "referrer_id": None,
            "service_team_id": None,
            "parent_id": None,
        }
        if rare or uniform() < 0.6:
            (b1, p1), (b2, p2) = choice(BRAND_FIRST), choice(BRAND_SECOND)
            brand, site = (RARE_BRAND, "kunpeng") if rare else (b1 + b2, p1 + p2)
            site += f"{i:x}"
            word, industry = choice(INDUSTRIES)
            stem = c_name + brand + word
            name = stem + suffix()
            key = keys.get(stem)
            if key is None:  # the key does not depend on the legal suffix
                key = keys[stem] = normalize.company_key(name)
            row.update(
                kind="company",
                name=name,
                name_key=key,
                credit_code=credit_code(c_region, i) if uniform() < 0.95 else None,
                industry=industry,
                size=choice(SIZES),
                registered_address=f"{c_province}{c_name}市{choice(ROADS)}{randrange(1, 999)}号",
                website=f"http://www.{site}.com" if uniform() < 0.3 else None,
                email=f"{choice(COMPANY_MAILBOXES)}@{site}.com" if uniform() < 0.7 else None,
                gender=None,
                birthday=None,
                wechat_id=None,
                member_level=None,
            )
        else:
            s, s_pinyin = surname()
            given = [choice(GIVEN) for _ in range(1 if uniform() < 0.35 else 2)]
            name = s + "".join(g for g, _ in given)
            local = f"{s_pinyin}.{''.join(p for _, p in given)}{i:x}"
            row.update(
                kind="person",
                name=name,
                name_key=person_keys.get(name)
                or person_keys.setdefault(name, normalize.person_name(name).lower()),
                credit_code=None,
                industry=None,
                size=None,
                registered_address=None,
                website=None,
                email=f"{local}@{mail_domain()}" if uniform() < 0.6 else None,
                gender="male" if uniform() < 0.5 else "female",
                birthday=date(1960, 1, 1) + timedelta(days=randrange(16000))
                if uniform() < 0.6
                else None,
                wechat_id=f"wxid_{i * 7919:010x}" if uniform() < 0.5 else None,
                member_level=choice(MEMBER_LEVELS) if uniform() < 0.4 else None,
            )
        if i >= probe_from and row["deleted_at"] is None:
            for attr in ("phone", "email", "credit_code"):
                if not getattr(probes, attr) and row[attr]:
                    setattr(probes, attr, row[attr])
        customers.append(row)
        for tag, share in TAGS:
            if uniform() < share:
                tags.append((i, tag))
        if len(customers) >= BATCH:
            yield customers, tags
            customers, tags = [], []
    if customers:
        yield customers, tags


COLUMNS = [c.name for c in Customer.__table__.columns]
# What a column the generator does not know (one added later) gets: its scalar default or NULL.
FILL = {
    c.name: c.default.arg if c.default is not None and c.default.is_scalar else None
    for c in Customer.__table__.columns
}


def _users(now: datetime) -> list[dict[str, Any]]:
    rng = random.Random(SEED + 1)
    rows = [dict(username="bench_admin", display_name="系统管理员", role="admin")]
    for k in range(1, N_OWNERS + 1):
        name = rng.choice(SURNAMES)[0] + rng.choice(GIVEN)[0] + rng.choice(GIVEN)[0]
        rows.append(dict(username=f"sales{k:02d}", display_name=name, role="sales"))
    for row in rows:
        row.update(password_hash="!bench: no sign-in", created_at=now, updated_at=now)
    return rows


TIER_FIELD = dict(
    entity="customer",
    key="tier",
    label="客户等级",
    label_en="Tier",
    type="single_select",
    required=False,
    options=["A", "B", "C"],
    position=0,
)

# --- building --------------------------------------------------------------------------------


@dataclass
class Database:
    dialect: str
    url: str
    probes: Probes = field(default_factory=Probes)
    version: str = ""
    size: str = ""
    cleanup: list[Callable[[], None]] = field(default_factory=list)


class _Clock:
    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - start


class _Target:
    """One database being built: schema and users first, then batches, then indexes."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.clock = _Clock()

    def prepare(self, now: datetime) -> list[tuple[int, str]]:
        """Migrate, add users and the custom field, drop secondary indexes; (id, role) of users."""
        raise NotImplementedError

    def write(self, batch: Batch) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Rebuild the indexes and ANALYZE, timing both."""
        raise NotImplementedError

    def save(self) -> None:
        """Keep the probes and load times with the database, for --keep."""
        raise NotImplementedError

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None and not conn.closed:
            conn.close()


class _SqliteTarget(_Target):
    def __init__(self, path: Path) -> None:
        super().__init__(Database("sqlite", f"sqlite+aiosqlite:///{path}"))
        self.path = path

    def prepare(self, now: datetime) -> list[tuple[int, str]]:
        migrations.upgrade(self.database.url)
        self.engine = sqlalchemy.create_engine(f"sqlite:///{self.path}")
        self.conn = self.engine.connect()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144"):
            self.conn.exec_driver_sql(f"PRAGMA {pragma}")
        users = _add_users(self.conn, now)
        self.indexes = self.conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND tbl_name IN ('customers', 'customer_tags')"
            )
        ).all()
        for index in self.indexes:
            self.conn.exec_driver_sql(f"DROP INDEX {index.name}")
        self.conn.commit()
        # The columns' own bind processors, so values are stored exactly as the app stores them.
        dialect = self.engine.dialect
        processors = [c.type.bind_processor(dialect) for c in Customer.__table__.columns]
        self.processors = [(k, p) for k, p in enumerate(processors) if p is not None]
        marks = ", ".join("?" * len(COLUMNS))
        self.insert_customers = f"INSERT INTO customers ({', '.join(COLUMNS)}) VALUES ({marks})"
        return users

    def write(self, batch: Batch) -> None:
        customers, tags = batch
        rows = []
        for row in customers:
            values = [row.get(c, FILL[c]) for c in COLUMNS]
            for k, process in self.processors:
                values[k] = process(values[k])
            rows.append(tuple(values))
        self.conn.exec_driver_sql(self.insert_customers, rows)
        if tags:
            self.conn.exec_driver_sql(
                "INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)", tags
            )

    def finish(self) -> None:
        self.conn.commit()
        with self.clock.part("index"):
            for index in self.indexes:
                self.conn.exec_driver_sql(index.sql)
            self.conn.commit()
        with self.clock.part("analyze"):
            self.conn.exec_driver_sql("ANALYZE")
            self.conn.commit()
        self.conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        self.conn.close()
        self.engine.dispose()

    def save(self) -> None:
        self.path.with_suffix(".json").write_text(json.dumps(asdict(self.database.probes)))


def _add_users(conn: sqlalchemy.Connection, now: datetime) -> list[tuple[int, str]]:
    conn.execute(insert(User.__table__), _users(now))
    conn.execute(insert(CustomField.__table__), [TIER_FIELD | {"created_at": now}])
    return [tuple(r) for r in conn.execute(text("SELECT id, role FROM users ORDER BY id"))]


def _sqlite(rows: int, keep: bool) -> tuple[Database, _Target | None]:
    SQLITE_DIR.mkdir(parents=True, exist_ok=True)
    path = SQLITE_DIR / f"customers-{rows}.db"
    meta = path.with_suffix(".json")
    if keep and path.exists() and meta.exists():
        print(f"reusing {path}", file=sys.stderr, flush=True)
        database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
        database.probes = Probes(**json.loads(meta.read_text()))
        return database, None
    _remove_sqlite(path)
    target = _SqliteTarget(path)
    if not keep:
        target.database.cleanup.append(lambda: _remove_sqlite(path))
    return target.database, target


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.with_suffix(".json").unlink(missing_ok=True)


def _pg_connect(schema: str | None = None) -> psycopg.Connection[Any]:
    options = f"-csearch_path={schema}" if schema else None
    return psycopg.connect(POSTGRES_DSN, autocommit=True, options=options)


class _PostgresTarget(_Target):
    def __init__(self, schema: str) -> None:
        base = POSTGRES_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
        super().__init__(Database("postgresql", f"{base}?options=-csearch_path%3D{schema}"))
        self.schema = schema

    def prepare(self, now: datetime) -> list[tuple[int, str]]:
        migrations.upgrade(self.database.url)
        engine = sqlalchemy.create_engine(self.database.url)
        with engine.begin() as conn:
            users = _add_users(conn, now)
        engine.dispose()
        self.conn = _pg_connect(self.schema)
        self.indexes = self.conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s"
            " AND tablename IN ('customers', 'customer_tags') AND indexname NOT LIKE '%%_pkey'",
            (self.schema,),
        ).fetchall()
        for name, _ in self.indexes:
            self.conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            # Foreign-key triggers off for the load: the data is consistent by construction.
            self.conn.execute("SET session_replication_role = replica")
        self.conn.execute("SET maintenance_work_mem = '256MB'")
        self.copy_customers = f"COPY customers ({', '.join(COLUMNS)}) FROM STDIN"
        return users

    def write(self, batch: Batch) -> None:
        customers, tags = batch
        custom = COLUMNS.index("custom")
        with self.conn.cursor() as cur:
            with cur.copy(self.copy_customers) as copy:
                for row in customers:
                    values = [row.get(c, FILL[c]) for c in COLUMNS]
                    values[custom] = json.dumps(values[custom])
                    copy.write_row(values)
            with cur.copy("COPY customer_tags (customer_id, tag) FROM STDIN") as copy:
                for tag_row in tags:
                    copy.write_row(tag_row)

    def finish(self) -> None:
        conn = self.conn
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('customers', 'id'), max(id)) FROM customers"
        )
        with self.clock.part("index"):
            for _, definition in self.indexes:
                conn.execute(definition)
        with self.clock.part("analyze"):
            conn.execute("VACUUM ANALYZE customers")
            conn.execute("VACUUM ANALYZE customer_tags")

    def save(self) -> None:
        probes = json.dumps(asdict(self.database.probes))
        comment = sql.SQL("COMMENT ON SCHEMA {} IS {}")
        self.conn.execute(comment.format(sql.Identifier(self.schema), sql.Literal(probes)))
        self.conn.close()


def _postgresql(rows: int, keep: bool) -> tuple[Database, _Target | None]:
    schema = f"dossier_bench_{rows}" if keep else f"dossier_bench_{uuid.uuid4().hex[:10]}"
    with _pg_connect() as conn:
        kept = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            (schema,),
        ).fetchone()
        if keep and kept and kept[0]:
            print(f"reusing schema {schema}", file=sys.stderr, flush=True)
            target = _PostgresTarget(schema)
            target.database.probes = Probes(**json.loads(kept[0]))
            return target.database, None
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    target = _PostgresTarget(schema)
    if not keep:
        target.database.cleanup.append(lambda: _drop_schema(schema))
    return target.database, target


def _drop_schema(schema: str) -> None:
    with _pg_connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def load(targets: list[_Target], rows: int) -> None:
    """Generate the rows once and write every batch to every target."""
    now = datetime.now(UTC)
    users = []
    for target in targets:
        with target.clock.part("migrate"):
            users.append(target.prepare(now))
    assert all(u == users[0] for u in users), "user ids differ between databases"
    probes = Probes(
        admin_id=next(uid for uid, role in users[0] if role == "admin"),
        owner_ids=[uid for uid, role in users[0] if role == "sales"],
        rows=rows,
    )
    generating = _Clock()
    batches = generate(rows, probes.owner_ids, probes, now)
    while True:
        with generating.part("generate"):
            batch = next(batches, None)
        if batch is None:
            break
        for target in targets:
            with target.clock.part("insert"):
                target.write(batch)
    for target in targets:
        target.finish()
        load = {"generate": generating.parts["generate"], **target.clock.parts}
        target.database.probes = Probes(**{**asdict(probes), "load": load})
        target.save()


# --- the queries -----------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    query: CustomerQuery
    where: str
    params: dict[str, Any]
    actor: Actor


def _like(value: str) -> str:
    """What SQLAlchemy's autoescape does to a LIKE operand (escape character '/')."""
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


def cases(dialect: str, probes: Probes) -> list[Case]:
    """Each query kind as the service gets it, and as hand-written SQL (alias c)."""
    admin = Actor(user_id=probes.admin_id, name="bench_admin", role=Role.admin, source=Source.api)
    rep_id = probes.owner_ids[7]
    rep = Actor(user_id=rep_id, name="sales08", role=Role.sales, source=Source.api)
    alive = "c.deleted_at IS NULL"
    name = f"{alive} AND (c.name LIKE :contains ESCAPE '/' OR c.name_key LIKE :prefix ESCAPE '/')"

    def by_name(label: str, q: str) -> Case:
        params = {"contains": f"%{_like(q)}%", "prefix": f"{_like(normalize.company_key(q))}%"}
        return Case(label, CustomerQuery(q=q), name, params, admin)

    def where(label: str, query: CustomerQuery, clause: str, **params: Any) -> Case:
        return Case(label, query, f"{alive} AND {clause}", params, admin)

    phone = probes.phone
    spaced = f"{phone[3:6]} {phone[6:10]} {phone[10:]}"
    tier = "json_extract(c.custom, '$.tier')" if dialect == "sqlite" else "c.custom ->> 'tier'"
    return [
        by_name(f"q name contains {COMMON_BRAND}", COMMON_BRAND),
        by_name(f"q name contains {RARE_BRAND} (rare)", RARE_BRAND),
        by_name(f"q name prefix 杭州{COMMON_BRAND}", "杭州" + COMMON_BRAND),
        where(f"q phone '{spaced}'", CustomerQuery(q=spaced), "c.phone = :p", p=phone),
        where(
            "q email (mixed case)",
            CustomerQuery(q=probes.email.title()),
            "c.email = :e",
            e=probes.email,
        ),
        where(
            "q credit code (lower case)",
            CustomerQuery(q=probes.credit_code.lower()),
            "c.credit_code = :code",
            code=probes.credit_code,
        ),
        where(
            "tag 重点客户",
            CustomerQuery(tag=["重点客户"]),
            "c.id IN (SELECT customer_id FROM customer_tags WHERE tag = :tag)",
            tag="重点客户",
        ),
        Case(
            "owner: a rep's own list",
            CustomerQuery(),
            f"{alive} AND c.owner_id = :owner",
            {"owner": rep_id},
            rep,
        ),
        where(
            "stage=customer, -updated_at",
            CustomerQuery(stage="customer", sort="-updated_at"),
            "c.stage = :stage",
            stage="customer",
        ),
        where(
            "city=杭州, page 50", CustomerQuery(city="杭州", page=50), "c.city = :city", city="杭州"
        ),
        where("custom tier=A", CustomerQuery(custom={"tier": "A"}), f"{tier} = :tier", tier="A"),
        Case("default list, page 1", CustomerQuery(), alive, {}, admin),
    ]


@dataclass
class Result:
    label: str
    total: int
    service: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    raw_count: list[float] = field(default_factory=list)
    raw_page: list[float] = field(default_factory=list)
    capped: list[float] = field(default_factory=list)


Sessions = async_sessionmaker[AsyncSession]
ORDER = "ORDER BY c.updated_at DESC, c.id DESC"
TAGS_SQL = text(
    "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN :ids ORDER BY tag"
).bindparams(bindparam("ids", expanding=True))


async def _service(sessions: Sessions, case: Case) -> tuple[float, Page[Any]]:
    async with sessions() as session:
        start = time.perf_counter()
        page = await search(session, actor=case.actor, query=case.query)
        return (time.perf_counter() - start) * 1000, page


async def _raw(engine: AsyncEngine, case: Case) -> tuple[int, list[int], float, float]:
    """Total and page ids by hand-written SQL, with the count's and the page's ms."""
    params = dict(case.params)
    params.update(limit=case.query.size, offset=(case.query.page - 1) * case.query.size)
    count_sql = text(f"SELECT count(*) FROM customers c WHERE {case.where}")
    page_sql = text(
        f"SELECT c.* FROM customers c WHERE {case.where} {ORDER} LIMIT :limit OFFSET :offset"
    )
    async with engine.connect() as conn:
        start = time.perf_counter()
        total = (await conn.execute(count_sql, params)).scalar_one()
        middle = time.perf_counter()
        ids = [row.id for row in (await conn.execute(page_sql, params)).all()]
        if ids:
            (await conn.execute(TAGS_SQL, {"ids": ids})).all()
        end = time.perf_counter()
    return total, ids, (middle - start) * 1000, (end - middle) * 1000


async def _capped(engine: AsyncEngine, case: Case) -> float:
    """A count that stops at COUNT_CAP + 1 rows, as a list showing '10,000+' would run."""
    capped_sql = text(
        f"SELECT count(*) FROM (SELECT 1 FROM customers c WHERE {case.where} LIMIT :cap) AS t"
    )
    async with engine.connect() as conn:
        start = time.perf_counter()
        await conn.execute(capped_sql, {**case.params, "cap": COUNT_CAP + 1})
        return (time.perf_counter() - start) * 1000


async def measure(
    database: Database, runs: int, warmup: int, budget: float, explain: bool
) -> list[Result]:
    engine = create_engine(database.url)
    sessions = session_factory(engine)
    results = []
    try:
        async with engine.connect() as conn:
            database.version = await _version(conn, database.dialect)
            database.size = await _size(conn, database)
        for case in cases(database.dialect, database.probes):
            result: Result | None = None
            started = time.perf_counter()
            for run in range(warmup + runs):
                measured = run - warmup
                if measured >= MIN_RUNS and time.perf_counter() - started > budget:
                    break  # a slow case: fewer runs, so the whole bench stays within minutes
                # Alternate who goes first, so neither always gets the warmer cache.
                if run % 2 == 0:
                    service_ms, page = await _service(sessions, case)
                    total, ids, count_ms, page_ms = await _raw(engine, case)
                else:
                    total, ids, count_ms, page_ms = await _raw(engine, case)
                    service_ms, page = await _service(sessions, case)
                capped_ms = await _capped(engine, case)
                assert [c.id for c in page.items] == ids, (case.label, page.items, ids)
                assert _same_total(page, total), (case.label, page.total, total)
                result = result or Result(case.label, total)
                if run >= warmup:
                    result.service.append(service_ms)
                    result.raw.append(count_ms + page_ms)
                    result.raw_count.append(count_ms)
                    result.raw_page.append(page_ms)
                    result.capped.append(capped_ms)
            assert result is not None
            results.append(result)
            print(f"  {case.label}: {_ms(result.service)} ms", file=sys.stderr, flush=True)
            if explain:
                await _explain(engine, sessions, case, database.dialect)
    finally:
        await engine.dispose()
    return results


def _same_total(page: Page[Any], total: int) -> bool:
    """Exact; or, if the service marks its total as a lower bound (`total_exact` false), no more
    than the real total."""
    if getattr(page, "total_exact", True):
        return page.total == total
    return page.total <= total


async def _explain(engine: AsyncEngine, sessions: Sessions, case: Case, dialect: str) -> None:
    """The plan of every statement the service sends for this case."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await _service(sessions, case)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    print(f"\n--- {case.label}", file=sys.stderr)
    async with engine.connect() as conn:
        for statement, parameters in captured:
            print("SQL:", " ".join(statement.split())[:400], parameters, file=sys.stderr)
            plan = await conn.exec_driver_sql(prefix + statement, parameters)
            for row in plan.all():
                print("   ", row[-1], file=sys.stderr)


async def _version(conn: Any, dialect: str) -> str:
    if dialect == "sqlite":
        return "SQLite " + (await conn.exec_driver_sql("SELECT sqlite_version()")).scalar_one()
    version = (await conn.exec_driver_sql("SHOW server_version")).scalar_one()
    return f"PostgreSQL {version.split()[0]}"


async def _size(conn: Any, database: Database) -> str:
    if database.dialect == "sqlite":
        path = Path(database.url.split("///", 1)[1])
        return f"{await asyncio.to_thread(_file_size, path) / 2**20:,.0f} MB file"
    sizes = (
        await conn.exec_driver_sql(
            "SELECT pg_table_size('customers'), pg_indexes_size('customers'),"
            " pg_total_relation_size('customer_tags')"
        )
    ).one()
    table, indexes, tags = (s / 2**20 for s in sizes)
    return f"customers {table:,.0f} MB + indexes {indexes:,.0f} MB, customer_tags {tags:,.0f} MB"


def _file_size(path: Path) -> int:
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal")]
    return sum(f.stat().st_size for f in files if f.exists())


# --- report ----------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


def _width(value: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in value)


def _line(cells: list[str], widths: list[int]) -> str:
    out = []
    for k, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        pad = " " * (width - _width(cell))
        out.append(cell + pad if k == 0 else pad + cell)
    return "  ".join(out)


def report(database: Database, results: list[Result], runs: int, budget: float) -> str:
    probes = database.probes
    load = probes.load
    parts = ", ".join(f"{name} {seconds:.0f}" for name, seconds in load.items())
    header = [
        "query",
        "total",
        "n",
        "service",
        "p95",
        "raw",
        "count",
        "page",
        "count≤10k",
        "svc/raw",
    ]
    table = [header]
    for r in results:
        raw = statistics.median(r.raw)
        table.append(
            [
                r.label,
                f"{r.total:,}",
                str(len(r.service)),
                _ms(r.service),
                f"{_p95(r.service):.1f}",
                f"{raw:.1f}",
                _ms(r.raw_count),
                _ms(r.raw_page),
                _ms(r.capped),
                f"{statistics.median(r.service) / raw:.2f}",
            ]
        )
    widths = [max(_width(row[k]) for row in table) for k in range(len(header))]
    return "\n".join(
        [
            f"{database.version}, {probes.rows:,} customers, {database.size}",
            f"load {sum(load.values()):.0f} s ({parts} s)",
            f"ms, median of n runs (up to {runs}; fewer when a case takes over {budget:.0f} s)"
            " and the service's p95; raw = hand-written SQL: count, then page + its tags;"
            " count≤10k = count capped at 10,001 rows",
            *(_line(row, widths) for row in table),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.customer_search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--budget",
        type=float,
        default=30,
        help=f"seconds per query kind (at least {MIN_RUNS} runs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases; reuse kept ones")
    parser.add_argument("--explain", action="store_true", help="print the service's query plans")
    args = parser.parse_args(argv)
    dialects = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    databases: list[Database] = []
    targets: list[_Target] = []
    reports = []
    try:
        for dialect in dialects:
            database, target = (_sqlite if dialect == "sqlite" else _postgresql)(
                args.rows, args.keep
            )
            databases.append(database)
            if target is not None:
                targets.append(target)
        if targets:
            names = " and ".join(t.database.dialect for t in targets)
            print(f"loading {args.rows:,} customers into {names} …", file=sys.stderr, flush=True)
            load(targets, args.rows)
        for database in databases:
            print(f"measuring {database.dialect} …", file=sys.stderr, flush=True)
            results = asyncio.run(
                measure(database, args.runs, args.warmup, args.budget, args.explain)
            )
            reports.append(report(database, results, args.runs, args.budget))
            print(reports[-1] + "\n", flush=True)
    finally:
        for target in targets:
            target.close()
        for database in databases:
            for cleanup in database.cleanup:
                cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
