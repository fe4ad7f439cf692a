"""Normalise customer data on every write, so that stored values compare and deduplicate.

Users paste from WeChat, Excel and business-card scanners: full-width digits, Chinese
brackets, stray spaces and zero-width characters are the norm, not the exception. Every
function here is pure (no I/O) and either returns the canonical form or raises
`Invalid(message, field=...)` — nothing is dropped silently.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.cn import uscc

from domain.errors import Invalid

__all__ = [
    "company_display_name",
    "company_key",
    "credit_code",
    "email",
    "person_name",
    "phone",
    "phone_or_none",
    "text",
    "url",
    "wechat_id",
]

_EMPTY = "must not be empty"


def _nfkc(value: str) -> str:
    """Full-width → half-width (１３８, ＠, （）, ideographic space), as typed by Chinese IMEs."""
    return unicodedata.normalize("NFKC", value)


def _collapse(value: str) -> str:
    """Drop invisible control/format characters (zero-width spaces from chat apps) and
    collapse every whitespace run to one space, trimmed."""
    visible = "".join(
        ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf") or ch.isspace()
    )
    return " ".join(visible.split())


# --- phone -------------------------------------------------------------------------------

# "转" and "分机" mark an extension in Chinese ("010-8888 6666 转 123"); phonenumbers
# does not know them and would fail with a confusing parse error.
_CHINESE_EXTENSION_MARKERS = ("转", "分机")
_PHONE_PUNCTUATION = frozenset("+()./")


def _looks_like_phone(value: str) -> bool:
    """Only digits, whitespace, dashes and + ( ) . / — phonenumbers would otherwise skip
    leading letters ("abc13800138000") and we would keep a number the user never typed."""
    return all(
        unicodedata.category(ch) in ("Nd", "Pd") or ch.isspace() or ch in _PHONE_PUNCTUATION
        for ch in value
    )


# The forms a spreadsheet import mostly holds ("13812345678", "138 1234 5678",
# "+86 138-1234-5678", "0086…", "(+86)…"): for these the number is known without
# `phonenumbers.parse`, which is most of `phone`'s cost.
_CN_MOBILE = re.compile(r"(?:(?:\+86|0086|\(\+86\))[ -]?)?(1(?:[ -]?[0-9]){10})")
_CN_METADATA = phonenumbers.PhoneMetadata.metadata_for_region("CN")
# Digits that `parse` may read as a carrier-selection or international prefix
# ("12593…", "17951…") rather than as the number itself: those go the full way.
_CN_PREFIXES = tuple(
    re.compile(pattern)
    for pattern in (_CN_METADATA.national_prefix_for_parsing, _CN_METADATA.international_prefix)
    if pattern
)


def _desc_matcher(desc: phonenumbers.PhoneNumberDesc) -> Callable[[str], bool]:
    """Whether a national number fits one of the metadata's descriptions, as phonenumbers
    itself decides it (its possible lengths, then its pattern)."""
    pattern = re.compile(desc.national_number_pattern or r"(?!)")
    lengths = frozenset(desc.possible_length)
    return lambda digits: (not lengths or len(digits) in lengths) and bool(
        pattern.fullmatch(digits))


_CN_GENERAL = _desc_matcher(_CN_METADATA.general_desc)
_CN_MOBILE_DESC = _desc_matcher(_CN_METADATA.mobile)


def _valid_cn(digits: str) -> bool:
    """`is_valid_number` for a mainland national number: a mobile by the metadata's own mobile
    description is valid outright (what `is_valid_number` ends up deciding after trying every
    other type first); anything else asks phonenumbers."""
    if _CN_GENERAL(digits) and _CN_MOBILE_DESC(digits):
        return True
    number = phonenumbers.PhoneNumber(country_code=86, national_number=int(digits))
    return phonenumbers.is_valid_number(number)


def phone(value: str, *, region: str = "CN", field: str = "phone") -> str:
    """A phone number in E.164 ("+8613800138000"), so one number has one stored form.

    Numbers without a country code are read as `region` numbers. Extensions are rejected
    rather than dropped: the stored number must reach the person it names. Plainly typed
    mainland mobiles skip `phonenumbers.parse` (imports call this per row); the result
    is the same as `_phone_parsed`'s.
    """
    if region.upper() == "CN":
        match = _CN_MOBILE.fullmatch(_nfkc(value).strip())
        if match:
            digits = match.group(1).replace(" ", "").replace("-", "")
            if not any(prefix.match(digits) for prefix in _CN_PREFIXES):
                if not _valid_cn(digits):
                    raise Invalid("not a valid phone number", field=field)
                return "+86" + digits
    return _phone_parsed(value, region=region, field=field)


def _phone_parsed(value: str, *, region: str = "CN", field: str = "phone") -> str:
    """`phone` for any input, through `phonenumbers.parse`."""
    s = _nfkc(value).strip()
    if not s:
        raise Invalid(_EMPTY, field=field)
    if any(marker in s for marker in _CHINESE_EXTENSION_MARKERS):
        raise Invalid("extensions are not supported", field=field)
    try:
        number = phonenumbers.parse(s, region.upper())
    except phonenumbers.NumberParseException:
        raise Invalid("not a valid phone number", field=field) from None
    if number.extension:
        raise Invalid("extensions are not supported", field=field)
    if not _looks_like_phone(s) or not phonenumbers.is_valid_number(number):
        raise Invalid("not a valid phone number", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_or_none(value: str | None, *, region: str = "CN", field: str = "phone") -> str | None:
    """Like `phone`, for optional fields: a missing or blank number is None, not an error."""
    if value is None or not value.strip():
        return None
    return phone(value, region=region, field=field)


# --- email -------------------------------------------------------------------------------


# A plain ASCII dot-atom local part, which email_validator keeps as typed, and an ASCII
# domain. Such an address is valid exactly when its domain is and it is short enough, so
# the domain's verdict can be cached (an import repeats a few domains in every row).
_PLAIN_EMAIL = re.compile(r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@([A-Za-z0-9.-]+)")
_LOCAL_MAX = 64  # RFC 5321; longer local parts go the full way
_EMAIL_MAX = 254  # email_validator's limit on the whole address, in UTF-8 bytes


# An ASCII letters-digits-hyphens domain that email_validator certainly accepts, once
# lower-cased: two or more labels of 1-63 characters not starting or ending with a hyphen
# and without "--" in positions 3-4 (which email_validator refuses as R-LDH, or, for
# "xn--", takes through IDNA), and a top-level label of letters only (email_validator
# demands a final letter).
_PLAIN_LABEL = r"(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_DOMAIN = re.compile(rf"(?:{_PLAIN_LABEL}\.)+[a-z]{{1,63}}")
# "a@" + domain must fit in the address limit; email_validator's own domain limit (253)
# is then met too.
_PLAIN_DOMAIN_MAX = _EMAIL_MAX - 2


def _plain_email_domain(domain: str) -> tuple[str, int] | None:
    """`_email_domain`'s answer for a plain ASCII domain that email_validator certainly
    accepts, without calling it (its IDNA checks are most of an import's cost, and an
    import's domains are mostly distinct); None means "not certain, ask email_validator".

    For such a domain email_validator's UTS-46 mapping only lower-cases, and the domain,
    its normalised form and its IDNA ASCII form are the same lower-cased string. Its
    special-use names (localhost, *.test, *.onion, ...) are read at each call, as callers
    may change the list."""
    if len(domain) > _PLAIN_DOMAIN_MAX or not domain.isascii():
        return None
    lowered = domain.lower()
    if "xn--" in lowered or not _PLAIN_DOMAIN.fullmatch(lowered):
        return None
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if lowered == special or lowered.endswith("." + special):
            return None
    return lowered, len(domain)


@functools.lru_cache(maxsize=4096)
def _email_domain(domain: str) -> tuple[str, int] | None:
    """The lower-cased normalised domain and its longest length in bytes (as typed,
    normalised or IDNA ASCII, which email_validator each length-checks), or None if
    email_validator refuses an address there."""
    plain = _plain_email_domain(domain)
    if plain:
        return plain
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    normalized = result.normalized.rpartition("@")[2]
    width = max(len(domain), len(normalized.encode()), len(result.ascii_domain))
    return normalized.lower(), width


def email(value: str, *, field: str = "email") -> str:
    """A syntactically valid address, entirely lower-cased.

    RFC 5321 lets the local part be case-sensitive, but no mail system our users meet
    treats it so, and CRM matching must find "Zhang.San@QQ.com" under "zhang.san@qq.com".
    Deliverability (DNS) is not checked: this runs on every write and must stay pure.
    Plain ASCII addresses reuse a cached verdict on their domain; the result is the
    same as `_email_validated`'s.
    """
    match = _PLAIN_EMAIL.fullmatch(_nfkc(value).strip())
    if match and len(match.group(1)) <= _LOCAL_MAX:
        local, domain = match.groups()
        known = _email_domain(domain)
        if known and len(local) + 1 + known[1] <= _EMAIL_MAX:
            return f"{local.lower()}@{known[0]}"
    return _email_validated(value, field=field)


def _email_validated(value: str, *, field: str = "email") -> str:
    """`email` for any input, through `email_validator.validate_email`."""
    s = _nfkc(value).strip()
    if not s:
        raise Invalid(_EMPTY, field=field)
    try:
        result = validate_email(s, check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(f"not a valid email address: {exc}", field=field) from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local.lower()}@{domain.lower()}"


# --- unified social credit code ----------------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z


def credit_code(value: str, *, field: str = "credit_code") -> str:
    """A China unified social credit code (GB 32100-2015): 18 upper-case characters.

    Structure and check character are verified here, with stdnum's check-character
    calculation. We do not call `stdnum.cn.uscc.validate` itself: it demands digits in
    positions 1-8, but the standard also assigns letters to position 1 (A 军队, N 农业
    collectives, Y other), so it would reject real village-collective codes ("N2…").
    """
    s = "".join(
        ch for ch in _nfkc(value) if not ch.isspace() and unicodedata.category(ch) != "Pd"
    ).upper()
    if not s:
        raise Invalid(_EMPTY, field=field)
    if len(s) != 18:
        raise Invalid(f"must be 18 characters, not {len(s)}", field=field)
    for position, ch in enumerate(s, start=1):
        if ch not in _USCC_ALPHABET:
            raise Invalid(f"character {ch!r} at position {position} is not allowed", field=field)
    if not s[2:8].isdigit():
        raise Invalid("positions 3-8 (the region code) must be digits", field=field)
    if s[-1] != uscc.calc_check_digit(s[:17]):
        raise Invalid("check character does not match", field=field)
    return s


# --- names -------------------------------------------------------------------------------


def company_display_name(value: str, *, field: str = "name") -> str:
    """The name as shown: half-width (NFKC, so "（深圳）" becomes "(深圳)"), single-spaced."""
    s = _collapse(_nfkc(value))
    if not s:
        raise Invalid(_EMPTY, field=field)
    return s


def person_name(value: str, *, field: str = "name") -> str:
    """A person's name as shown: half-width, single-spaced; "·" in 阿沛·阿旺晋美 is kept."""
    s = _collapse(_nfkc(value))
    if not s:
        raise Invalid(_EMPTY, field=field)
    return s


# Longest first where one ends another ("股份有限公司" before "有限公司"). They are removed
# repeatedly, so "集团有限公司" also falls to "有限公司" then "集团".
_CJK_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "股份公司",
    "集团",
    "公司",
    "工作室",
    "厂",
)
# Whole words only ("Costco" keeps its "co"); removed repeatedly, so "Co., Ltd." and
# "Company Limited" go as two words.
_LATIN_SUFFIXES = (
    "corporation",
    "incorporated",
    "company",
    "limited",
    "corp",
    "gmbh",
    "llc",
    "ltd",
    "inc",
    "co",
)
# A branch (分公司, 支公司, 分厂) is its own legal entity with its own credit code and usually
# its own customer record: its key keeps the marker, so "X有限公司北京分公司" never matches
# "X有限公司" and "北京分公司" is not cut to "北京分" by the "公司" rule.
_BRANCH_MARKERS = ("分公司", "支公司", "分厂")


def _wide(ch: str) -> bool:
    """CJK-like scripts are written without spaces, so a word boundary is implied."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _key_tokens(value: str) -> list[str]:
    """Case- and accent-folded runs of letters and digits; everything else separates."""
    s = unicodedata.normalize("NFKD", _nfkc(value).casefold())
    s = "".join(
        ch if unicodedata.category(ch)[0] in "LN" else " "
        for ch in s
        if unicodedata.category(ch)[0] != "M"
    )
    return _nfkc(s).split()


def _join_words(tokens: list[str]) -> str:
    """Join tokens, keeping a space only between two non-CJK tokens ("acme co"), so a
    space typed between Chinese characters cannot change the key."""
    out = ""
    for token in tokens:
        if out and not _wide(out[-1]) and not _wide(token[0]):
            out += " "
        out += token
    return out


def _strip_suffix(s: str) -> str | None:
    """`s` without one trailing legal suffix, or None if it has none."""
    for suffix in _CJK_SUFFIXES:
        if s.endswith(suffix):
            return s[: -len(suffix)].rstrip()
    for suffix in _LATIN_SUFFIXES:
        if s.endswith(suffix):
            rest = s[: -len(suffix)]
            if not rest or rest[-1] == " " or _wide(rest[-1]):
                return rest.rstrip()
    return None


def company_key(value: str, *, field: str = "name") -> str:
    """A folded key for finding duplicate companies; never shown to users.

    NFKC, case- and accent-folded, with all whitespace, punctuation and brackets removed
    (their content stays: "腾讯科技（深圳）有限公司" → "腾讯科技深圳"), and legal-form
    suffixes removed from the end repeatedly ("ACME Co., Ltd." → "acme"). Branch names
    keep their 分公司 so they stay apart from the parent. A non-empty name never gives
    an empty key: suffix stripping stops before it would empty the key ("有限公司" stays),
    and a name of only punctuation keys on its folded self.
    """
    tokens = _key_tokens(value)
    if not tokens:
        fallback = "".join(_nfkc(_nfkc(value).casefold()).split())
        if not fallback:
            raise Invalid(_EMPTY, field=field)
        return fallback
    s = _join_words(tokens)
    while not s.endswith(_BRANCH_MARKERS):
        shorter = _strip_suffix(s)
        if not shorter:
            break
        s = shorter
    return _nfkc(s.replace(" ", ""))


# --- WeChat ------------------------------------------------------------------------------

_WECHAT_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{5,19}")


def wechat_id(value: str, *, field: str = "wechat_id") -> str:
    """A WeChat ID (6-20 letters, digits, _ or -, starting with a letter) as typed.

    Many people use their phone number to be found on WeChat, and users paste that
    instead; a valid phone number is kept as its digits (with a leading + if given),
    separators removed, since that is what one types into WeChat's search.
    """
    s = _nfkc(value).strip()
    if not s:
        raise Invalid(_EMPTY, field=field)
    if _WECHAT_ID.fullmatch(s):
        return s
    try:
        phone(s, field=field)
    except Invalid:
        raise Invalid(
            "not a WeChat ID (6-20 letters, digits, _ or -, starting with a letter) "
            "or a phone number",
            field=field,
        ) from None
    digits = "".join(ch for ch in s if ch.isdigit())
    return f"+{digits}" if s.startswith("+") else digits


# --- free text ---------------------------------------------------------------------------


def text(value: str | None) -> str | None:
    """Free text (notes, addresses): NFC only, so full-width text the user chose survives;
    trimmed, blank → None. NUL is removed because PostgreSQL cannot store it."""
    if value is None:
        return None
    s = unicodedata.normalize("NFC", value.replace("\x00", "")).strip()
    return s or None


# --- web addresses -----------------------------------------------------------------------

MAX_URL = 2000


def url(value: str, *, field: str = "url", assume_scheme: str | None = None) -> str:
    """An http(s) address with a host; scheme and host lower-cased so equal sites compare equal.

    `assume_scheme` lets a form field take "www.example.cn" the way people type it.
    """
    text_ = value.strip() if isinstance(value, str) else ""
    if not text_ or len(text_) > MAX_URL or re.search(r"\s", text_):
        raise Invalid("must be a web address", field=field)
    if assume_scheme and "://" not in text_:
        text_ = f"{assume_scheme}://{text_}"
    try:
        parts = urlsplit(text_)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise Invalid("must be a web address", field=field) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid(
            "must be an http(s) address with a host, like https://example.cn", field=field
        )
    netloc = parts.netloc if "@" in parts.netloc else parts.netloc.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))
