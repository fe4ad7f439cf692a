"""The fast paths of `normalize.phone` and `normalize.email` against their full paths.

Imports call both per row, so common inputs skip `phonenumbers.parse` and a per-domain
`validate_email`. Every input must still get exactly what the full path gives: the same
string, or the same refusal.
"""

from __future__ import annotations

import random
import string

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import normalize
from domain.errors import Invalid

SEED = 20240601


def outcome(func, raw: str, **kwargs) -> tuple[str, ...]:
    """What a normaliser does with `raw`: its result, or the refusal it raises."""
    try:
        return ("ok", func(raw, **kwargs))
    except Invalid as exc:
        return ("invalid", exc.field, exc.message)


def to_fullwidth(value: str) -> str:
    """What a Chinese IME in full-width mode types for ASCII text."""
    return "".join(
        "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in value
    )


# --- phone -------------------------------------------------------------------------------

PHONE_PREFIXES = ["", "+86", "+86 ", "+86-", "0086", "0086 ", "0086-", "(+86)", "(+86) "]
# Prefixes phonenumbers treats specially or does not know: 10x, 11x/12x (carrier codes),
# 140, 1740x (satellite), 1610x, 179xx (IP-call prefixes), 154, 194.
ODD_STARTS = ["10", "11", "12", "140", "1740", "1610", "179", "12593", "17951", "154", "194"]


def mobile_digits(rng: random.Random) -> str:
    """11 digits starting with 1: any second digit, or one of the odd prefixes."""
    start = rng.choice(ODD_STARTS) if rng.random() < 0.3 else "1" + rng.choice(string.digits)
    return start + "".join(rng.choices(string.digits, k=11 - len(start)))


def typed(digits: str, rng: random.Random) -> str:
    """`digits` laid out as people type them: bare, 3-4-4 with spaces or dashes, or any
    single separators between digits."""
    layout = rng.randrange(4)
    if layout == 0:
        return digits
    if layout in (1, 2):
        sep = " " if layout == 1 else "-"
        return sep.join((digits[:3], digits[3:7], digits[7:]))
    return digits[0] + "".join(rng.choice(["", "", " ", "-"]) + d for d in digits[1:])


def generated_phones() -> list[str]:
    rng = random.Random(SEED)
    raws = []
    for _ in range(6000):
        raw = rng.choice(PHONE_PREFIXES) + typed(mobile_digits(rng), rng)
        raws.append(to_fullwidth(raw) if rng.random() < 0.1 else raw)
    for second in string.digits:  # every prefix in every form at least once
        digits = "1" + second + "".join(rng.choices(string.digits, k=9))
        raws += [p + typed(digits, rng) for p in PHONE_PREFIXES]
    return raws


PHONE_EDGE_CASES = [
    "",
    "   ",
    "+86",
    "+86 ",
    "0086",
    "(+86)",
    "138123456789",  # 12 digits
    "1381234567",  # 10 digits
    "+86 138123456789",
    "0086 1381234567",
    "013812345678",  # leading zeros
    "0013812345678",
    "00013812345678",
    "+860 13812345678",
    "086 13812345678",
    "86 13812345678",
    "8613812345678",
    "+8613812345678",
    "+0086 13812345678",
    "00 86 13812345678",
    "+ 86 13812345678",
    "+86  13812345678",
    "+86 - 138 1234 5678",
    "138  1234 5678",
    "138--1234-5678",
    "-13812345678",
    "13812345678-",
    "138 1234 5678 ",
    " +86 138-1234-5678",
    "\t13812345678\n",
    "138\t1234\t5678",
    "138.1234.5678",
    "138/1234/5678",
    "(138) 1234 5678",
    "+86(138)1234-5678",
    "(+86)(138)12345678",
    "(86) 13812345678",
    "+86)13812345678",
    "+852 13812345678",
    "+1 13812345678",
    "13812345678转123",
    "13812345678 转 1",
    "138 1234 5678 分机 8",
    "13812345678 ext 12",
    "13812345678#12",
    "13812345678x1",
    "abc13812345678",
    "13812345678abc",
    "138123456ab",
    "1381234567８",
    "１３８１２３４５６７８",
    "＋８６　１３８－１２３４－５６７８",
    "（＋８６）１３８１２３４５６７８",
    "\u0661\u0663\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic
    "1\u0663\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # same, after a "1"
    "138\u200b1234\u200b5678",  # zero-width space
    "138\u20141234\u20145678",  # em dash
    "138\u22121234\u22125678",  # minus sign
    "12593 13812345678",
    "1259313812345",
    "17951 13812345678",
    "1795113812345",
    "12345006123",
    "11213812345",
    "12000000000",
    "19400000000",
    "15400000000",
    "10086",
    "010-8888 6666",
    "400-800-8888",
    "+86 10 8888 6666",
]


@pytest.mark.parametrize("region", ["CN", "cn"])
def test_phone_fast_path_agrees_with_full_path_on_generated_numbers(region: str) -> None:
    differing = [
        raw
        for raw in generated_phones()
        if outcome(normalize.phone, raw, region=region, field="mobile")
        != outcome(normalize._phone_parsed, raw, region=region, field="mobile")
    ]
    assert differing == []


@pytest.mark.parametrize("raw", PHONE_EDGE_CASES)
@pytest.mark.parametrize("region", ["CN", "US"])
def test_phone_fast_path_agrees_with_full_path_on_edge_cases(raw: str, region: str) -> None:
    assert outcome(normalize.phone, raw, region=region) == outcome(
        normalize._phone_parsed, raw, region=region
    )


@given(st.text(alphabet="0123456789 -+()86１３＋转", max_size=24))
def test_phone_fast_path_agrees_with_full_path_on_any_phone_like_text(raw: str) -> None:
    assert outcome(normalize.phone, raw) == outcome(normalize._phone_parsed, raw)


def test_phone_generated_numbers_cover_valid_and_invalid() -> None:
    """The equivalence test above is only worth something if both outcomes occur often."""
    kinds = [outcome(normalize.phone, raw)[0] for raw in generated_phones()]
    assert kinds.count("ok") > 1000
    assert kinds.count("invalid") > 1000


def test_mainland_validity_agrees_with_phonenumbers_on_every_five_digit_prefix() -> None:
    """The mobile shortcut of `_valid_cn` decides as `is_valid_number` does, for valid and
    invalid 11-digit numbers of every prefix 10000–19999 (three random endings each)."""
    rng = random.Random(SEED)
    differing, valid = [], 0
    for prefix in range(10000, 20000):
        for _ in range(3):
            digits = f"{prefix}{rng.randrange(10**6):06d}"
            number = phonenumbers.PhoneNumber(country_code=86, national_number=int(digits))
            expected = phonenumbers.is_valid_number(number)
            valid += expected
            if normalize._valid_cn(digits) != expected:
                differing.append(digits)
    assert differing == []
    assert 1000 < valid < 29000  # both answers occur


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+8613812345678",
        "+86 138-1234-5678",
        "0086 138 1234 5678",
        "(+86)13812345678",
        "１３８　１２３４　５６７８",
    ],
)
def test_phone_common_forms_skip_parse(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers.parse called on the fast path")

    monkeypatch.setattr(normalize.phonenumbers, "parse", parse)
    assert normalize.phone(raw) == "+8613812345678"
    with pytest.raises(Invalid, match="not a valid phone number"):
        normalize.phone(raw.replace("138", "100", 1).replace("１３８", "１００"))


@pytest.mark.parametrize(
    ("raw", "region"),
    [("12593 13812345678", "CN"), ("17951 138 1234 5678", "CN"), ("13812345678", "US")],
)
def test_phone_carrier_prefixes_and_other_regions_go_through_parse(
    raw: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_parse = normalize.phonenumbers.parse

    def parse(number: str, *args: object, **kwargs: object):
        calls.append(number)
        return real_parse(number, *args, **kwargs)

    monkeypatch.setattr(normalize.phonenumbers, "parse", parse)
    outcome(normalize.phone, raw, region=region)
    assert calls


# --- email -------------------------------------------------------------------------------

EMAIL_DOMAINS = [
    "qq.com",
    "QQ.com",
    "163.com",
    "126.COM",
    "Example.COM",
    "sub.domain.cn",
    "mail.sub.domain.com.cn",
    "a-b.cn",
    "xn--fsqu00a.xn--fiqs8s",  # 例子.中国 as IDNA ASCII
    "XN--FIQS8S.com",
    "a.b",
    "1.2.3.cn",
    # refused
    "qq",
    "localhost",
    "example.local",
    "x.test",
    "host.invalid",
    "a.onion",
    "home.arpa",
    "qq.123",
    "qq.com1",
    "qq.com.",
    ".qq.com",
    "qq..com",
    "-qq.com",
    "qq-.com",
    "a.-qq.com",
    "ab--c.com",
    "xn--zz.com",
    "x" * 63 + ".com",
    "x" * 64 + ".com",
    ".".join(["abcdefghi"] * 25) + ".cn",  # 252 characters
    ".".join(["abcdefghi"] * 26) + ".cn",  # 262 characters
]

EMAIL_LOCALS = [
    "zhang.san",
    "Zhang.San",
    "ZHANG",
    "li_si+crm",
    "wang-wu",
    "a",
    "1",
    "_",
    "a.b.c.d",
    "Info",
    "POSTMASTER",
    "x" * 64,
    "x" * 65,
]


def generated_locals(rng: random.Random) -> list[str]:
    atext = string.ascii_letters + string.digits + "_+-"
    locals_ = []
    for _ in range(400):
        pieces = [
            "".join(rng.choices(atext, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 3))
        ]
        locals_.append(".".join(pieces))
    return locals_


def generated_emails() -> list[str]:
    rng = random.Random(SEED)
    raws = [f"{local}@{domain}" for local in EMAIL_LOCALS for domain in EMAIL_DOMAINS]
    raws += [f"{local}@{rng.choice(EMAIL_DOMAINS)}" for local in generated_locals(rng)]
    # Around the 254-character limit on the whole address, for each way of counting it.
    for domain in (
        ".".join(["abcdefghi"] * 19) + ".com",
        ".".join(["abcdefghi"] * 18) + ".xn--fiqs8s",
        ".".join(["abcdefghi"] * 18) + ".XN--FSQU00A.xn--fiqs8s",
        # 30 Cyrillic "а": longer in UTF-8 (normalised) than as IDNA ASCII
        ".".join(["abcdefghi"] * 13) + ".xn--80" + "a" * 30 + ".com",
    ):
        for length in range(50, 66):
            raws.append("x" * length + "@" + domain)
    return raws


EMAIL_EDGE_CASES = [
    "",
    " ",
    "no-at-sign",
    "@qq.com",
    "a@",
    "a@b",
    "a..b@qq.com",
    ".a@qq.com",
    "a.@qq.com",
    "a@@qq.com",
    "a@b@qq.com",
    "a b@qq.com",
    "a@qq .com",
    '"a b"@qq.com',
    '"zhang"@qq.com',
    "Zhang <zhang@qq.com>",
    "<zhang@qq.com>",
    "zhang@[127.0.0.1]",
    "zhang@localhost",
    "zhang@.local",
    "zhang@qq.com\n",
    "zhang@qq.com\u200b",
    "zhang!#$%&'*/=?^`{|}~@qq.com",
    "张三@例子.中国",
    "zhang@例子.中国",
    "张三@qq.com",
    "zhäng@qq.com",
    "zhang@bücher.de",
    "zhang@BÜCHER.de",
    "zhang＠qq.com",
    "ＺＨＡＮＧ＠ＱＱ．ＣＯＭ",
    "zhang@qq。com",
    "zhang﹫qq.com",
    "  li.si@163.com ",
    "Zhang.San@QQ.com",
]


def test_email_fast_path_agrees_with_full_path_on_generated_addresses() -> None:
    differing = [
        raw
        for raw in generated_emails()
        if outcome(normalize.email, raw, field="contact.email")
        != outcome(normalize._email_validated, raw, field="contact.email")
    ]
    assert differing == []


@pytest.mark.parametrize("raw", EMAIL_EDGE_CASES)
def test_email_fast_path_agrees_with_full_path_on_edge_cases(raw: str) -> None:
    assert outcome(normalize.email, raw) == outcome(normalize._email_validated, raw)


@given(st.text(alphabet="aZ09_+-.@qcomn-x", max_size=30))
def test_email_fast_path_agrees_with_full_path_on_any_address_like_text(raw: str) -> None:
    assert outcome(normalize.email, raw) == outcome(normalize._email_validated, raw)


def test_email_generated_addresses_cover_valid_and_invalid() -> None:
    """Also across the length limit, so the fast path's limit is really compared."""
    kinds = [outcome(normalize.email, raw)[0] for raw in generated_emails()]
    assert kinds.count("ok") > 300
    assert kinds.count("invalid") > 300
    too_long = outcome(normalize.email, "x" * 61 + "@" + ".".join(["abcdefghi"] * 19) + ".com")
    assert too_long[0] == "invalid"
    assert "too long" in too_long[2]
    after_normalization = "x" * 60 + "@" + ".".join(["abcdefghi"] * 13) + ".xn--80" + "a" * 30
    assert outcome(normalize.email, after_normalization + ".com")[2].endswith(
        "too long after normalization (1 byte too many)."
    )


def test_email_validates_each_domain_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_validate = normalize.validate_email

    def validate_email(address: str, **kwargs: object):
        calls.append(address)
        return real_validate(address, **kwargs)

    monkeypatch.setattr(normalize, "validate_email", validate_email)
    normalize._email_domain.cache_clear()
    # A Punycode domain: the plain-domain pre-check leaves it to email_validator.
    results = [
        normalize.email(raw)
        for raw in (
            "Zhang.San@XN--FIQS8S.com",
            "li_si+crm@XN--FIQS8S.com",
            "WANG-WU@XN--FIQS8S.com",
            "zhao@XN--FIQS8S.com",
        )
    ]
    assert results == [
        "zhang.san@中国.com",
        "li_si+crm@中国.com",
        "wang-wu@中国.com",
        "zhao@中国.com",
    ]
    assert calls == ["a@XN--FIQS8S.com"]
    assert normalize._email_domain.cache_info().hits == 3


def test_email_unusual_addresses_go_through_the_full_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real_validate = normalize.validate_email

    def validate_email(address: str, **kwargs: object):
        calls.append(address)
        return real_validate(address, **kwargs)

    monkeypatch.setattr(normalize, "validate_email", validate_email)
    normalize._email_domain.cache_clear()
    assert normalize.email("张三@qq.com") == "张三@qq.com"
    with pytest.raises(Invalid, match="two periods"):
        normalize.email("a..b@qq.com")
    assert calls == ["张三@qq.com", "a..b@qq.com"]


# --- email: plain ASCII domains without email_validator ------------------------------------

SPECIAL_USE = ["localhost", "test", "invalid", "local", "onion", "arpa", "example", "example.com"]
LDH = string.ascii_letters + string.digits + "-"


def random_label(rng: random.Random) -> str:
    """A label of letters, digits and hyphens, mostly short, sometimes around the 63
    limit, sometimes with a hyphen at an edge or "--" in positions 3-4 ("xn--", "ab--")."""
    roll = rng.random()
    if roll < 0.1:
        length = rng.randint(58, 68)
    elif roll < 0.15:
        length = 0
    else:
        length = rng.randint(1, 12)
    alphabet = rng.choice([string.ascii_lowercase, string.ascii_lowercase + string.digits, LDH])
    label = "".join(rng.choices(alphabet, k=length))
    edit = rng.random()
    if edit < 0.05:
        label = "-" + label
    elif edit < 0.1:
        label += "-"
    elif edit < 0.15:
        label = rng.choice(["xn--", "XN--", "ab--", "a--", "xn-", "-xn--"]) + label
    elif edit < 0.2:
        label = label[:2] + "--" + label[2:]
    return label


def random_tld(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 8)))
    if roll < 0.6:
        return "".join(rng.choices(string.digits, k=rng.randint(1, 3)))
    if roll < 0.75:
        return rng.choice(SPECIAL_USE)
    if roll < 0.8:
        return rng.choice(["xn--fiqs8s", "xn--zz", "com1", "c0m", "1com"])
    if roll < 0.85:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(60, 66)))
    return random_label(rng)


def mixed_case(value: str, rng: random.Random) -> str:
    return "".join(ch.upper() if rng.random() < 0.5 else ch for ch in value)


def long_domain(rng: random.Random, total: int) -> str:
    """A domain of about `total` characters (the limits are 252 for "a@" + domain, 253
    for the domain alone), of labels up to 63 characters."""
    labels = []
    length = -1
    while length < total - 5:
        size = min(rng.randint(1, 63), max(1, total - 5 - length - 1))
        labels.append("".join(rng.choices(string.ascii_lowercase + string.digits, k=size)))
        length += size + 1
    tld = "".join(rng.choices(string.ascii_lowercase, k=max(1, total - length - 1)))
    return ".".join([*labels, tld])


def generated_plain_domains() -> list[str]:
    rng = random.Random(SEED + 1)
    domains = []
    for _ in range(3000):
        labels = [random_label(rng) for _ in range(rng.randint(0, 4))]
        domain = ".".join([*labels, random_tld(rng)])
        roll = rng.random()
        if roll < 0.2:
            domain = mixed_case(domain, rng)
        elif roll < 0.25:
            domain = domain.upper()
        elif roll < 0.3:
            domain += "."
        domains.append(domain)
    for total in range(246, 258):
        domains += [long_domain(rng, total) for _ in range(5)]
        domains.append(mixed_case(long_domain(rng, total), rng))
    return domains


@pytest.fixture
def full_domain_path(monkeypatch: pytest.MonkeyPatch):
    """`_email_domain` as it was without the pre-check: always through email_validator."""

    def full(domain: str) -> tuple[str, int] | None:
        with monkeypatch.context() as patch:
            patch.setattr(normalize, "_plain_email_domain", lambda domain: None)
            return normalize._email_domain.__wrapped__(domain)

    return full


def test_plain_domain_precheck_agrees_with_email_validator(full_domain_path) -> None:
    domains = generated_plain_domains()
    answered = {domain: normalize._plain_email_domain(domain) for domain in domains}
    differing = [
        domain
        for domain, plain in answered.items()
        if plain is not None and plain != full_domain_path(domain)
    ]
    assert differing == []
    # The pre-check must answer often, and decline often where email_validator accepts
    # only rarely (letters-only TLD is stricter than email_validator's final-letter rule).
    accepted = [domain for domain, plain in answered.items() if plain is not None]
    assert len(accepted) > 700
    refused = [domain for domain in domains if full_domain_path(domain) is None]
    assert len(refused) > 1000
    assert not set(accepted) & set(refused)


def test_email_with_plain_domain_precheck_agrees_with_full_path() -> None:
    rng = random.Random(SEED + 2)
    locals_ = ["info", "Sales", "li_si+crm", "a", "x" * 64, "x" * 65]
    raws = [f"{rng.choice(locals_)}@{domain}" for domain in generated_plain_domains()]
    # Around the 254-character address limit with the longest domains.
    for total in (200, 240, 250, 252, 253):
        domain = long_domain(rng, total)
        raws += ["x" * length + "@" + domain for length in range(1, 66)]
    normalize._email_domain.cache_clear()
    differing = [
        raw
        for raw in raws
        if outcome(normalize.email, raw, field="contact.email")
        != outcome(normalize._email_validated, raw, field="contact.email")
    ]
    assert differing == []
    kinds = [outcome(normalize.email, raw)[0] for raw in raws]
    assert kinds.count("ok") > 700
    assert kinds.count("invalid") > 1000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("info@qinghe-foods.cn", "info@qinghe-foods.cn"),
        ("Sales@HaiYue-Trade.COM", "sales@haiyue-trade.com"),
        ("zhang.san@mail.sub.domain.com.cn", "zhang.san@mail.sub.domain.com.cn"),
        ("li@163.com", "li@163.com"),
        ("wang@a--b.example", "wang@a--b.example"),
    ],
)
def test_email_plain_domains_skip_email_validator(
    raw: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def validate_email(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate_email called for a plain ASCII domain")

    monkeypatch.setattr(normalize, "validate_email", validate_email)
    normalize._email_domain.cache_clear()
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    "domain",
    ["xn--fiqs8s.com", "ab--c.com", "qq.c0m", "qq.123", "qq.com.", "x.test", "qq", "a.b-c"],
)
def test_plain_domain_precheck_declines_what_it_is_not_sure_of(domain: str) -> None:
    assert normalize._plain_email_domain(domain) is None


def test_plain_domain_precheck_follows_special_use_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """email_validator lets callers extend its list of special-use names."""
    assert normalize._plain_email_domain("qinghe.cn") == ("qinghe.cn", 9)
    monkeypatch.setattr(
        normalize.email_validator,
        "SPECIAL_USE_DOMAIN_NAMES",
        [*normalize.email_validator.SPECIAL_USE_DOMAIN_NAMES, "cn"],
    )
    assert normalize._plain_email_domain("qinghe.cn") is None
    assert normalize._plain_email_domain("qinghe.com") == ("qinghe.com", 10)
