"""Normalisation of customer data: examples per function, then properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc

from domain import normalize
from domain.errors import Invalid

# A real-format code; stdnum.cn.uscc.validate accepts it (checked in test below).
VALID_USCC = "91110108551385082Q"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def to_fullwidth(value: str) -> str:
    """What a Chinese IME in full-width mode types for ASCII text."""
    return "".join(
        "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in value
    )


def invalid(func, *args, **kwargs) -> Invalid:
    with pytest.raises(Invalid) as info:
        func(*args, **kwargs)
    return info.value


# --- phone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "138 0013 8000",
        "+86 13800138000",
        "0086-138-0013-8000",
        "13800138000",
        "+86 138-0013-8000",
        "８６１３８００１３８０００",
        "＋８６　１３８－００１３－８０００",
        " 13800138000 ",
    ],
)
def test_phone_chinese_mobile_formats_give_e164(raw: str) -> None:
    assert normalize.phone(raw) == "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-8888 6666", "+861088886666"),
        ("(0755) 8888-6666", "+8675588886666"),
        ("400-800-8888", "+864008008888"),
    ],
)
def test_phone_landlines_and_400_numbers_give_e164(raw: str, expected: str) -> None:
    assert normalize.phone(raw) == expected


def test_phone_with_country_code_ignores_region() -> None:
    assert normalize.phone("+1 650 253 0000") == "+16502530000"


def test_phone_region_reads_national_numbers() -> None:
    assert normalize.phone("(650) 253-0000", region="US") == "+16502530000"


@pytest.mark.parametrize(
    "raw",
    ["13800138000 ext 12", "13800138000#12", "010-88886666转123", "010-8888 6666 分机 8"],
)
def test_phone_rejects_extensions_instead_of_dropping_them(raw: str) -> None:
    exc = invalid(normalize.phone, raw)
    assert exc.field == "phone"
    assert exc.message == "extensions are not supported"


@pytest.mark.parametrize(
    "raw",
    ["12345", "138001380000", "1380013800", "abc13800138000", "13800138000 (微信同号)", "hello"],
)
def test_phone_rejects_invalid_numbers(raw: str) -> None:
    exc = invalid(normalize.phone, raw, field="contacts.0.mobile")
    assert exc.field == "contacts.0.mobile"
    assert exc.message == "not a valid phone number"


def test_phone_rejects_blank() -> None:
    exc = invalid(normalize.phone, "   ")
    assert (exc.field, exc.message) == ("phone", "must not be empty")


@pytest.mark.parametrize("raw", [None, "", "  ", "\u3000"])
def test_phone_or_none_maps_missing_or_blank_to_none(raw: str | None) -> None:
    assert normalize.phone_or_none(raw) is None


def test_phone_or_none_normalises_and_validates() -> None:
    assert normalize.phone_or_none("138 0013 8000") == "+8613800138000"
    exc = invalid(normalize.phone_or_none, "12345", field="mobile")
    assert (exc.field, exc.message) == ("mobile", "not a valid phone number")


# phonenumbers knows no 154 or 194 numbers, so those prefixes are left out.
MOBILE_PREFIXES = [
    *(f"13{d}" for d in range(10)),
    *(f"15{d}" for d in range(10) if d != 4),
    *(f"18{d}" for d in range(10)),
    *(f"19{d}" for d in range(10) if d != 4),
]


@st.composite
def formatted_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(national digits, the same number as a user might type it)."""
    digits = draw(st.sampled_from(MOBILE_PREFIXES)) + draw(
        st.text(alphabet=string.digits, min_size=8, max_size=8)
    )
    country = draw(st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "0086-", "0086 "]))
    separators = draw(st.lists(st.sampled_from(["", "", " ", "-"]), min_size=10, max_size=10))
    body = digits[0] + "".join(sep + d for sep, d in zip(separators, digits[1:], strict=True))
    raw = country + body
    if draw(st.booleans()):
        raw = to_fullwidth(raw)
    return digits, raw


@given(formatted_mobiles())
def test_phone_mobile_normalisation_is_e164_and_idempotent(case: tuple[str, str]) -> None:
    digits, raw = case
    e164 = normalize.phone(raw)
    assert e164 == "+86" + digits
    assert normalize.phone(e164) == e164


# --- email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zhang.San@Example.COM", "zhang.san@example.com"),
        ("zhang＠qq.com", "zhang@qq.com"),
        ("ＡＢＣ＠ＱＱ．ＣＯＭ", "abc@qq.com"),
        ("  li.si@163.com ", "li.si@163.com"),
        ("张三@例子.中国", "张三@例子.中国"),
    ],
)
def test_email_is_lowercased_and_half_width(raw: str, expected: str) -> None:
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("no-at-sign", "@-sign"),
        ("a@b", "period"),
        ("a..b@qq.com", "two periods"),
        ("Zhang <z@qq.com>", "display name"),
    ],
)
def test_email_rejects_malformed_with_reason(raw: str, detail: str) -> None:
    exc = invalid(normalize.email, raw, field="contacts.0.email")
    assert exc.field == "contacts.0.email"
    assert exc.message.startswith("not a valid email address: ")
    assert detail in exc.message


def test_email_rejects_blank() -> None:
    exc = invalid(normalize.email, " ")
    assert (exc.field, exc.message) == ("email", "must not be empty")


# --- credit code -------------------------------------------------------------------------


def test_credit_code_literal_agrees_with_stdnum() -> None:
    assert uscc.validate(VALID_USCC) == VALID_USCC
    assert normalize.credit_code(VALID_USCC) == VALID_USCC


@pytest.mark.parametrize(
    "raw",
    [
        "91110108551385082q",
        " 9111 0108 5513 8508 2Q ",
        "911101-085513-85082Q",
        "９１１１０１０８５５１３８５０８２Ｑ",
    ],
)
def test_credit_code_is_compacted_and_uppercased(raw: str) -> None:
    assert normalize.credit_code(raw) == VALID_USCC


def test_credit_code_accepts_letter_registration_authority() -> None:
    # N = agriculture (village collectives); stdnum's validate() would reject this.
    body = "N2330100MA2AB1234"
    code = body + uscc.calc_check_digit(body)
    assert not uscc.is_valid(code)
    assert normalize.credit_code(code) == code


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("9111010855138508", "must be 18 characters, not 16"),
        ("91110108551385082QQ", "must be 18 characters, not 19"),
        ("91110108551385082I", "character 'I' at position 18 is not allowed"),
        ("9111010855138O082Q", "character 'O' at position 14 is not allowed"),
        ("91110108551385082.", "character '.' at position 18 is not allowed"),
        ("911A0108551385082Q", "positions 3-8 (the region code) must be digits"),
        ("91110108551385082R", "check character does not match"),
        ("", "must not be empty"),
    ],
)
def test_credit_code_rejects_with_specific_message(raw: str, message: str) -> None:
    exc = invalid(normalize.credit_code, raw)
    assert (exc.field, exc.message) == ("credit_code", message)


@st.composite
def uscc_bodies(draw: st.DrawFn) -> str:
    """17 characters in GB 32100 layout: authority and type, 6-digit region, 9-char org code."""
    head = draw(st.text(alphabet=USCC_ALPHABET, min_size=2, max_size=2))
    region = draw(st.text(alphabet=string.digits, min_size=6, max_size=6))
    org = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    return head + region + org


@given(uscc_bodies(), st.data())
def test_credit_code_accepts_right_check_char_and_rejects_any_other(
    body: str, data: st.DataObject
) -> None:
    check = uscc.calc_check_digit(body)
    assert normalize.credit_code(body + check) == body + check
    wrong = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != check]))
    exc = invalid(normalize.credit_code, body + wrong)
    assert (exc.field, exc.message) == ("credit_code", "check character does not match")


@given(uscc_bodies(), st.data())
def test_credit_code_detects_any_single_substitution(body: str, data: st.DataObject) -> None:
    code = body + uscc.calc_check_digit(body)
    i = data.draw(st.integers(0, 16))
    allowed = string.digits if 2 <= i < 8 else USCC_ALPHABET
    replacement = data.draw(st.sampled_from([c for c in allowed if c != code[i]]))
    exc = invalid(normalize.credit_code, code[:i] + replacement + code[i + 1 :])
    assert exc.message == "check character does not match"


@given(
    st.text(alphabet=string.digits, min_size=8, max_size=8),
    st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9),
    st.one_of(st.none(), st.sampled_from(USCC_ALPHABET)),
)
def test_credit_code_agrees_with_stdnum_for_digit_prefixed_codes(
    prefix: str, org: str, last: str | None
) -> None:
    body = prefix + org
    code = body + (last if last is not None else uscc.calc_check_digit(body))
    try:
        result: str | None = normalize.credit_code(code)
    except Invalid:
        result = None
    assert (result is not None) == uscc.is_valid(code)


# --- display names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 腾讯科技（深圳）有限公司 ", "腾讯科技(深圳)有限公司"),
        ("ACME\u3000 Co.,\tLtd.", "ACME Co., Ltd."),
        ("华为\u200b技术有限公司", "华为技术有限公司"),
        ("ＡＢＣ　Ｔｒａｄｉｎｇ", "ABC Trading"),
    ],
)
def test_company_display_name_is_half_width_single_spaced(raw: str, expected: str) -> None:
    assert normalize.company_display_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  张三 ", "张三"),
        ("阿沛·阿旺晋美", "阿沛·阿旺晋美"),
        ("John   Smith", "John Smith"),
        ("Ｌｉ　Ｌｅｉ", "Li Lei"),
    ],
)
def test_person_name_is_half_width_single_spaced(raw: str, expected: str) -> None:
    assert normalize.person_name(raw) == expected


@pytest.mark.parametrize("func", [normalize.company_display_name, normalize.person_name])
@pytest.mark.parametrize("raw", ["", "   ", "\u3000\t", "\u200b"])
def test_names_reject_blank(func, raw: str) -> None:
    exc = invalid(func, raw)
    assert (exc.field, exc.message) == ("name", "must not be empty")


# --- company key -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ["深圳市腾讯计算机系统有限公司", "深圳市腾讯计算机系统有限公司 ", "深圳市腾讯计算机系统"],
        ["腾讯科技（深圳）有限公司", "腾讯科技(深圳)有限公司", "腾讯科技 （深圳） 有限公司"],
        ["ACME Co., Ltd.", "acme ltd", "ACME", "Acme Company Limited", "ACME Inc."],
        ["某某集团股份有限公司", "某某集团", "某某股份有限公司", "某某有限责任公司"],
        ["Müller GmbH", "MULLER"],
        ["McDonald's Corporation", "mcdonalds corp"],
    ],
)
def test_company_key_matches_variants(names: list[str]) -> None:
    keys = {normalize.company_key(name) for name in names}
    assert len(keys) == 1, keys


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("腾讯科技（深圳）有限公司", "腾讯科技深圳"),
        ("ACME Co., Ltd.", "acme"),
        ("Costco", "costco"),  # "co" is only a suffix as a whole word
        ("Zinc Inc", "zinc"),
        ("某某电子厂", "某某电子"),
        ("某某设计工作室", "某某设计"),
        ("有限公司", "有限公司"),  # never emptied
        ("Co., Ltd.", "co"),
        ("---", "---"),  # punctuation only: keyed on itself, not empty
    ],
)
def test_company_key_examples(name: str, expected: str) -> None:
    assert normalize.company_key(name) == expected


def test_company_key_keeps_branches_apart_from_parent() -> None:
    parent = normalize.company_key("腾讯科技（深圳）有限公司")
    branch = normalize.company_key("腾讯科技（深圳）有限公司北京分公司")
    assert branch == "腾讯科技深圳有限公司北京分公司"
    assert branch != parent
    assert normalize.company_key("腾讯科技(深圳)有限公司 北京分公司") == branch


def test_company_key_rejects_blank() -> None:
    exc = invalid(normalize.company_key, " \u3000 ")
    assert (exc.field, exc.message) == ("name", "must not be empty")


CJK_PARTS = [
    "腾讯",
    "科技",
    "深圳",
    "华为",
    "北京",
    "电子",
    "集团",
    "股份",
    "有限",
    "公司",
    "有限公司",
    "有限责任公司",
    "分公司",
    "工作室",
    "厂",
    "市",
]
LATIN_PARTS = [
    "ACME",
    "Trading",
    "Co",
    "Ltd",
    "Inc",
    "Limited",
    "Corp",
    "GmbH",
    "LLC",
    "Company",
    "3M",
    "Costco",
]
PUNCTUATION = list("()（）【】[]《》<>·.,，。-_&'\"")
WHITESPACE_RUNS = [" ", "  ", "\t", "\u3000", "\u00a0", " \u3000 "]

cjk_words = st.one_of(
    st.sampled_from(CJK_PARTS), st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
)
words = st.one_of(
    cjk_words,
    st.sampled_from(LATIN_PARTS),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=6),
    st.sampled_from(PUNCTUATION),
)


@given(st.one_of(st.lists(words, min_size=1, max_size=8).map("".join), st.text(min_size=1)))
def test_company_key_is_idempotent(name: str) -> None:
    try:
        key = normalize.company_key(name)
    except Invalid:
        assert not name.strip()
        return
    assert key
    assert normalize.company_key(key) == key


@given(st.lists(st.one_of(words, st.just(" ")), min_size=1, max_size=10).map("".join))
def test_company_key_ignores_full_width_vs_half_width(name: str) -> None:
    if not name.strip():
        return
    assert normalize.company_key(to_fullwidth(name)) == normalize.company_key(name)


@given(
    st.lists(words, min_size=1, max_size=8),
    st.lists(st.sampled_from(WHITESPACE_RUNS), min_size=9, max_size=9),
    st.lists(st.sampled_from(WHITESPACE_RUNS), min_size=9, max_size=9),
)
def test_company_key_ignores_kind_and_amount_of_whitespace(
    parts: list[str], first: list[str], second: list[str]
) -> None:
    """Same words, each gap and both ends filled with different whitespace runs."""

    def spaced(runs: list[str]) -> str:
        return runs[0] + "".join(
            part + run for part, run in zip(parts, runs[1 : len(parts) + 1], strict=True)
        )

    assert normalize.company_key(spaced(first)) == normalize.company_key(spaced(second))


@given(
    st.lists(st.one_of(cjk_words, st.sampled_from(PUNCTUATION)), min_size=1, max_size=8).map(
        "".join
    ),
    st.data(),
)
def test_company_key_ignores_whitespace_inserted_into_chinese_names(
    name: str, data: st.DataObject
) -> None:
    """Chinese is written without spaces, so a space anywhere in a Chinese name is noise."""
    if not any("\u4e00" <= ch <= "\u9fff" for ch in name):
        return
    runs = data.draw(
        st.lists(
            st.sampled_from(["", "", *WHITESPACE_RUNS]),
            min_size=len(name) + 1,
            max_size=len(name) + 1,
        )
    )
    spaced = runs[0] + "".join(ch + run for ch, run in zip(name, runs[1:], strict=True))
    assert normalize.company_key(spaced) == normalize.company_key(name)


# --- WeChat ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zhang_san-1", "zhang_san-1"),
        ("  LiLei2024 ", "LiLei2024"),
        ("abcdef", "abcdef"),
        ("a" * 20, "a" * 20),
        ("ｗｘ＿ｚｈａｎｇ", "wx_zhang"),
        ("138 0013 8000", "13800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
    ],
)
def test_wechat_id_accepts_ids_and_phone_numbers(raw: str, expected: str) -> None:
    assert normalize.wechat_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["abcde", "a" * 21, "1abcdef", "_abcdef", "zhang san", "zhang.san", "12345", "张三微信号"],
)
def test_wechat_id_rejects_other_values(raw: str) -> None:
    exc = invalid(normalize.wechat_id, raw)
    assert exc.field == "wechat_id"
    assert exc.message.startswith("not a WeChat ID")


def test_wechat_id_rejects_blank() -> None:
    exc = invalid(normalize.wechat_id, "  ", field="contacts.0.wechat")
    assert (exc.field, exc.message) == ("contacts.0.wechat", "must not be empty")


# --- free text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        (" \n\t\u3000", None),
        ("  第一行\n第二行  ", "第一行\n第二行"),
        ("全角ＡＢＣ，保留", "全角ＡＢＣ，保留"),  # NFC, not NFKC: the user's text survives
        ("Cafe\u0301", "Café"),
        ("a\x00b", "ab"),
    ],
)
def test_text(raw: str | None, expected: str | None) -> None:
    assert normalize.text(raw) == expected


class TestUrl:
    def test_scheme_and_host_are_lower_cased_path_is_kept(self) -> None:
        assert normalize.url("HTTPS://Example.CN/Path?q=1") == "https://example.cn/Path?q=1"

    def test_a_bare_host_gets_the_assumed_scheme(self) -> None:
        assert normalize.url("www.example.cn", assume_scheme="http") == "http://www.example.cn"

    @pytest.mark.parametrize("bad", ["ftp://example.cn", "https://", "not a url", "www.x.cn"])
    def test_refused_without_an_http_scheme_and_host(self, bad: str) -> None:
        with pytest.raises(Invalid) as exc:
            normalize.url(bad, field="website")
        assert exc.value.field == "website"
