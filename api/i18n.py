"""Page translations: two JSON catalogs with the same keys, and a tiny `t(key, **kw)`.

Simplified Chinese is the default; English is the other language. A key missing from a
catalog falls back to Chinese, then to the key itself, so a slip shows up as text, never a 500.
Domain errors carry English messages; those listed in the catalog as `error.<message>` are
translated, any other is shown as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

DEFAULT = "zh-CN"
LANGUAGES = ("zh-CN", "en")
ERROR_PREFIX = "error."
PYDANTIC_PREFIX = "pydantic."


@cache
def catalog(lang: str) -> Mapping[str, str]:
    """The catalog of a supported language (read once)."""
    if lang not in LANGUAGES:
        raise KeyError(lang)
    text = resources.files("api").joinpath("locales", f"{lang}.json").read_text("utf-8")
    return json.loads(text)


def language(code: str | None) -> str | None:
    """The supported language a code such as `en`, `en-US`, `zh`, `zh-cn` names, or None."""
    if not code:
        return None
    code = code.strip().lower()
    if code == "en" or code.startswith("en-"):
        return "en"
    if code == "zh" or code in ("zh-cn", "zh-hans", "zh-hans-cn"):
        return "zh-CN"
    return None


def has(key: str, lang: str = DEFAULT) -> bool:
    return key in catalog(lang if lang in LANGUAGES else DEFAULT)


def t(key: str, /, lang: str = DEFAULT, **kw: Any) -> str:
    """The text of `key` in `lang`, formatted with `kw`; `n=1` picks `<key>.one` if it exists."""
    book = catalog(lang if lang in LANGUAGES else DEFAULT)
    if kw.get("n") == 1 and f"{key}.one" in book:
        key = f"{key}.one"
    text = book.get(key)
    if text is None:
        text = catalog(DEFAULT).get(key, key)
    if kw:
        try:
            return text.format(**kw)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def error(message: str, lang: str = DEFAULT) -> str:
    """A domain error's English message in `lang` when the catalog knows it, else as it is.

    Messages with a detail after ": " or ", " (`not a valid email address: …`,
    `must be 18 characters, not 17`) are also looked up by the part before it.
    """
    for candidate in (message, message.split(": ", 1)[0], message.split(", ", 1)[0]):
        key = ERROR_PREFIX + candidate
        if has(key, lang):
            return t(key, lang)
    return message


class Translator:
    """`t` bound to one language, as templates use it: `t("nav.customers")`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT

    def __call__(self, key: str, /, **kw: Any) -> str:
        return t(key, self.lang, **kw)

    def error(self, message: str) -> str:
        return error(message, self.lang)

    def choice(self, group: str, value: Any) -> str:
        """The label of an enum value, e.g. `choice("stage", "lead")`; unknown ones as is."""
        if value is None or value == "":
            return ""
        raw = getattr(value, "value", value)
        key = f"{group}.{raw}"
        return self(key) if has(key, self.lang) else str(raw)
