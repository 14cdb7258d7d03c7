"""What a PostgreSQL column can store: the one check for text and JSON values.

PostgreSQL refuses U+0000 in `text` and `jsonb`, text that is not UTF-8 (a lone
surrogate), and NaN or infinities in JSON. The device contract and the API's inputs both
refuse such values with these checks before they reach a write.
"""

import json
import math
from typing import Any

MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 64 * 1024


def check_text(text: str) -> str:
    """The text if a `text` column can store it; ValueError naming the problem otherwise."""
    if "\x00" in text:
        raise ValueError("must not contain the NUL character (U+0000)")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 (no lone surrogates)") from None
    return text


def storable(text: str) -> str:
    """Text made storable by dropping what a `text` column refuses (for what the platform records, not input)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode()


def _check_json(value: Any, where: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{where}: nests more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        try:
            check_text(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        return  # jsonb keeps any integer JSON can carry
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be strings")
            try:
                check_text(key)
            except ValueError as exc:
                raise ValueError(f"{where}: key {exc}") from None
            _check_json(item, f"{where}.{key}" if where else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
    else:
        raise ValueError(f"{where}: not a JSON value")


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """The object if a `jsonb` column can store it; ValueError naming the offending path otherwise."""
    _check_json(value, "", 0)
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    if size > MAX_JSON_BYTES:
        raise ValueError(f"is {size} bytes; at most {MAX_JSON_BYTES} are stored")
    return value
