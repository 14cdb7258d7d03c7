"""A device's readings in words a manager reads: each reading key's name (dashboard.strings) and unit.

The keys are the fields of the device contract (core.contract: BoardTelemetry,
RecorderTelemetry, GatewayTelemetry) as the API returns them in a device's `last_values` and
its history, plus the columns the telemetry tables add (cameras_total, cameras_online,
clock_skewed). A key the cockpit does not know yet is shown by its own name rather than hidden.
"""

from typing import NamedTuple

from dashboard.i18n import DEFAULT_LANG, NO_DATA, fmt_count, fmt_number, missing, t
from dashboard.strings import STRINGS


class Reading(NamedTuple):
    """How a reading is shown: `form` is number, ratio (0–1 shown as %), count, bool, seconds (as hours),
    text, list or cameras; `unit` is a symbol or a strings key (unit.*); `digits` for numbers."""

    form: str
    unit: str = ""
    digits: int = 1


# In the order the device page lists them (the API's order is the database's).
READINGS: dict[str, Reading] = {
    # touch boards
    "power_on": Reading("bool"),
    "screen_on": Reading("bool"),
    "active_use_s": Reading("seconds", "unit.hours"),
    "cpu_temp_c": Reading("number", "℃"),
    "cpu_load": Reading("ratio", "%"),
    "mem_load": Reading("ratio", "%"),
    "disk_used_pct": Reading("number", "%"),
    "foreground_app": Reading("text"),
    "os_version": Reading("text"),
    "error_codes": Reading("list"),
    # recording classrooms
    "recording": Reading("bool"),
    "streaming": Reading("bool"),
    "bitrate_kbps": Reading("number", "kbps", 0),
    "dropped_frames": Reading("count", "unit.frames"),
    "cameras": Reading("cameras"),
    "cameras_total": Reading("count"),
    "cameras_online": Reading("count"),
    "storage_free_gb": Reading("number", "GB"),
    "lesson_id": Reading("text"),
    # gateways
    "uplink_mbps": Reading("number", "Mbit/s", 0),
    "rx_mbps": Reading("number", "Mbit/s"),
    "tx_mbps": Reading("number", "Mbit/s"),
    "latency_ms": Reading("number", "ms"),
    "loss_pct": Reading("number", "%", 2),
    "aps_total": Reading("count"),
    "aps_online": Reading("count"),
    "wifi_clients": Reading("count"),
    # added by the platform
    "clock_skewed": Reading("bool"),
}

NOT_SHOWN = frozenset({"kind", "seq", "time", "v", "ts"})  # said elsewhere on the page, or bookkeeping


def unit(key: str, lang: str = DEFAULT_LANG) -> str:
    """The reading's unit in the chosen language ("" for yes/no, text and plain counts)."""
    spec = READINGS.get(key)
    if spec is None or not spec.unit:
        return ""
    return t(spec.unit, lang).strip() if spec.unit.startswith("unit.") else spec.unit


def label(key: str, lang: str = DEFAULT_LANG, with_unit: bool = False) -> str:
    """The reading's name in the chosen language, e.g. CPU温度, with its unit as CPU温度(℃) if asked;
    an unknown key is shown as itself (never as reading.<key>)."""
    name = t(f"reading.{key}", lang) if f"reading.{key}" in STRINGS else key
    symbol = unit(key, lang) if with_unit else ""
    return f"{name}({symbol})" if symbol and lang == "zh" else f"{name} ({symbol})" if symbol else name


def _suffix(symbol: str) -> str:
    return symbol if symbol in ("%", "℃") else f" {symbol}" if symbol else ""


def fmt_reading(key: str, value: object, lang: str = DEFAULT_LANG) -> str:
    """A reading's value with its unit, in the chosen language; "—" when there is none."""
    spec = READINGS.get(key, Reading("text"))
    if missing(value):
        return NO_DATA
    form, symbol = spec.form, unit(key, lang)
    if form == "bool" or isinstance(value, bool):
        return t("yes" if value else "no", lang)
    if form == "list":
        items = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        return ", ".join(items) if items else t("reading.none", lang)
    if form == "cameras":
        cameras = value if isinstance(value, list) else []
        online = sum(1 for c in cameras if isinstance(c, dict) and c.get("online"))
        return t("reading.cameras_online_of", lang).format(online=online, total=len(cameras)) if cameras \
            else t("reading.none", lang)
    if not isinstance(value, int | float):
        return str(value)
    if form == "ratio":
        return fmt_number(value * 100, spec.digits, "%")
    if form == "seconds":
        return fmt_number(value / 3600, spec.digits, _suffix(symbol))
    if form == "count":
        return fmt_count(value, lang) + _suffix(symbol)
    return fmt_number(value, spec.digits, _suffix(symbol))


def shown(values: dict) -> list[tuple[str, object]]:
    """The readings the device page lists: known keys in READINGS order, then any others by name."""
    known = [(k, values[k]) for k in READINGS if k in values]
    others = sorted((k, v) for k, v in values.items() if k not in READINGS and k not in NOT_SHOWN)
    return known + others
