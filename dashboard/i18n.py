"""The cockpit's words in Chinese (default) and English, and Chinese number and time formatting.

Every formatter here says "—" for a value that is not there: None, NaN or infinity (what a
division by zero gives), never 0. A figure with no data is not a figure of zero.
"""

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.settings import platform_settings
from dashboard.strings import STRINGS

DEFAULT_LANG = "zh"


def language(lang: str | None) -> str:
    """The chosen language: Chinese until the browser has stored a choice."""
    return lang or DEFAULT_LANG


def local_tz() -> ZoneInfo:
    """The schools' time zone: the platform's COCKPIT_TIMEZONE (core.settings), as the API reckons days in."""
    return ZoneInfo(platform_settings().timezone)


def t(key: str, lang: str = DEFAULT_LANG) -> str:
    """The word for a key in the chosen language (the key itself if unknown)."""
    entry = STRINGS.get(key)
    return entry.get(lang, entry[DEFAULT_LANG]) if entry else key


NO_DATA = "—"


def missing(value: object) -> bool:
    """True for a value that is not there: None, NaN or ±infinity (a ratio over nothing)."""
    if value is None:
        return True
    return isinstance(value, float) and not math.isfinite(value)


def ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or the denominator is zero (never 0 for "no data")."""
    if missing(num) or missing(den) or not den:
        return None
    return num / den


def fmt_count(n: int | float | None, lang: str = DEFAULT_LANG) -> str:
    """A count the Chinese way (1.2万 from ten thousand up), or with thousands separators in English."""
    if missing(n):
        return NO_DATA
    if lang == "zh" and abs(n) >= 10_000:
        return f"{n / 10_000:.1f}万" if abs(n) < 100_000_000 else f"{n / 100_000_000:.2f}亿"
    return f"{n:,.0f}"


def fmt_rate(r: float | None) -> str:
    """A rate as a percentage with one decimal."""
    return NO_DATA if missing(r) else f"{r * 100:.1f}%"


def fmt_value(value: float | None, unit: str, lang: str = DEFAULT_LANG) -> str:
    """A figure's value in its unit (ratio as %, count the Chinese way, hours, ms, Mbit/s)."""
    if missing(value):
        return NO_DATA
    if unit == "ratio":
        return fmt_rate(value)
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "count":
        return fmt_count(value, lang)
    suffix = {"hours": t("unit.hours", lang), "ms": " ms", "mbps": " Mbit/s"}.get(unit, "")
    return f"{value:,.2f}{suffix}" if abs(value) < 100 else f"{fmt_count(value, lang)}{suffix}"


def fmt_gap(gap: float | None, unit: str, lang: str = DEFAULT_LANG) -> str:
    """How far a value is from its target (— when met or unknown)."""
    if missing(gap) or gap <= 0:
        return NO_DATA
    return fmt_value(gap, unit, lang)


def fmt_number(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """A plain number with `digits` decimals and an optional unit suffix; "—" when missing."""
    if missing(value):
        return NO_DATA
    return f"{value:,.{digits}f}{suffix}"


def fmt_text(*parts: object) -> str:
    """Words from the API joined by a space; "—" when none is there (never "None")."""
    words = [str(p) for p in parts if not missing(p) and p != ""]
    return " ".join(words) if words else NO_DATA


def fmt_duration(seconds: float | None, lang: str = DEFAULT_LANG) -> str:
    """A duration in minutes (under 90) or hours; "<1 分钟" under a minute, "—" when missing."""
    if missing(seconds) or seconds < 0:
        return NO_DATA
    minutes = seconds / 60
    if minutes < 1:
        return t("unit.under_a_minute", lang)
    if minutes < 90:
        return f"{minutes:.0f}{t('unit.minutes', lang)}"
    return f"{minutes / 60:.1f}{t('unit.hours', lang)}"


def parse_time(iso: str | None) -> datetime | None:
    """An ISO time from the API (UTC, 'Z' or offset) as an aware datetime; naive ones are taken as UTC."""
    if not iso:
        return None
    parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local_time(iso: str | None) -> datetime | None:
    """An API time in the schools' local time (local_tz)."""
    parsed = parse_time(iso)
    return parsed.astimezone(local_tz()) if parsed else None


def fmt_time(iso: str | None, seconds: bool = False) -> str:
    """An API time shown in the schools' local time (local_tz), e.g. 2026-11-25 09:20."""
    local = local_time(iso)
    if local is None:
        return NO_DATA
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def figure_name(info: dict, lang: str = DEFAULT_LANG) -> str:
    """A catalogue figure's name in the chosen language."""
    return info.get(lang) or info.get(DEFAULT_LANG) or info["key"]
