"""The two catalogs have the same keys, every key a page uses exists, and helpers behave."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources

import pytest

from api import i18n
from api.pages.base import due_text, money, safe_next, split_tags


def test_catalogs_have_the_same_keys() -> None:
    zh, en = set(i18n.catalog("zh-CN")), set(i18n.catalog("en"))
    assert zh == en, {"only in zh-CN": sorted(zh - en), "only in en": sorted(en - zh)}


def test_catalogs_agree_on_placeholders() -> None:
    def names(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    zh, en = i18n.catalog("zh-CN"), i18n.catalog("en")
    assert {k: names(zh[k]) for k in zh} == {k: names(en[k]) for k in zh}


def _used_keys() -> set[str]:
    used: set[str] = set()
    pattern = re.compile(r"""\bt\(\s*["']([a-z_]+\.[A-Za-z0-9_.]+)["']""")
    for package, suffix in (("api", ".html"), ("api.pages", ".py")):
        root = resources.files(package)
        folder = root.joinpath("templates") if package == "api" else root
        stack = [folder]
        while stack:
            entry = stack.pop()
            if entry.is_dir():
                stack.extend(entry.iterdir())
            elif entry.name.endswith(suffix):
                used |= set(pattern.findall(entry.read_text("utf-8")))
    return used


def test_every_key_the_pages_use_is_in_the_catalog() -> None:
    used = _used_keys()
    assert len(used) > 100
    assert sorted(used - set(i18n.catalog("zh-CN"))) == []


def test_t_formats_falls_back_and_picks_singular() -> None:
    assert i18n.t("span.hours", "zh-CN", n=2) == "2 小时"
    assert i18n.t("span.hours", "en", n=1) == "1 hour"
    assert i18n.t("span.hours", "en", n=3) == "3 hours"
    assert i18n.t("no.such.key", "en") == "no.such.key"
    assert i18n.t("nav.customers", "fr") == "客户"


def test_domain_messages_are_translated_when_known() -> None:
    assert i18n.error("must not be empty", "zh-CN") == "不能为空"
    assert i18n.error("not a valid email address: bad", "zh-CN") == "不是有效的电子邮箱"
    assert i18n.error("something new", "zh-CN") == "something new"
    assert i18n.error("must not be empty", "en") == "must not be empty"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/customers/3?tl=2", "/customers/3?tl=2"),
        ("/tasks", "/tasks"),
        ("//evil.example", "/customers"),
        ("/\\evil.example", "/customers"),
        ("/\t/evil.example", "/customers"),
        ("https://evil.example/", "/customers"),
        ("javascript:alert(1)", "/customers"),
        ("customers", "/customers"),
        ("/login?next=/x", "/customers"),
        ("", "/customers"),
        (None, "/customers"),
    ],
)
def test_next_is_only_ever_a_local_path(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_money_and_tags_and_countdown() -> None:
    assert money(Decimal("1234.5")) == "¥1,234.50"
    assert money(Decimal("-3")) == "-¥3.00"
    assert money(None) == "—"
    assert split_tags("重点, VIP，华东、 VIP") == ["重点", "VIP", "华东"]
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    zh, en = i18n.Translator("zh-CN"), i18n.Translator("en")
    assert due_text(now + timedelta(hours=2, seconds=-5), now, zh) == "还剩 2 小时"
    assert due_text(now - timedelta(hours=3), now, zh) == "已逾期 3 小时"
    assert due_text(now + timedelta(minutes=20), now, en) == "20 minutes left"
    assert due_text(now - timedelta(days=3), now, en) == "3 days overdue"
    assert due_text(None, now, zh) == "无截止时间"
