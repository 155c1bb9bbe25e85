"""The donor pages' words, one small dict per language (``zh_cn.TEXT``, ``en.TEXT``).

Chinese is the default; ``?lang=en`` switches and a cookie remembers the choice.
Both dicts have the same keys (a test checks it)."""

from __future__ import annotations

from . import en, zh_cn

DEFAULT = "zh-CN"
TEXTS: dict[str, dict] = {"zh-CN": zh_cn.TEXT, "en": en.TEXT}
COOKIE = "lang"


def pick(asked: str | None, remembered: str | None) -> str:
    """The language to answer in: the one asked for in the query, else the remembered one, else Chinese."""
    for lang in (asked, remembered):
        if lang in TEXTS:
            return lang
    return DEFAULT
