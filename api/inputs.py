"""Input types of the API: every value a client sends is checked against what its column can hold.

PostgreSQL refuses U+0000 in `text` and `jsonb`, text that is not UTF-8 (a lone surrogate),
integers beyond their column type, NaN and infinities in JSON, and a foreign key or check
constraint it cannot meet. Each of these used to reach the database and come back as a 500.
The types here refuse them at the door instead, with a 422 that names the field, and each one
also says so in the OpenAPI document (a pattern, a bound, a JSON value schema), so what the
document allows is what the API accepts.

Use them for request bodies, query and form parameters alike:

- `DbText`: a string a `text` column stores (no NUL, valid UTF-8); add length limits with `Field`.
- `DbInt`, `DbBigInt`, `DbReal`, `DbDouble`: numbers within `integer`, `bigint`, `real` and
  `double precision`; the floating ones finite. In JSON bodies add `Strict()`, so "5" and true
  are refused as the document says rather than read as 5 and 1.
- `DbDate`, `DbDateTime`: dates and aware date-times in the years 1900–2999, so arithmetic on
  them (a week before, a time zone away) stays within Python's and PostgreSQL's ranges.
- `JsonObject`: a free-form JSON object a `jsonb` column stores: no NUL in any key or string at
  any depth, finite numbers, at most `MAX_JSON_DEPTH` levels and `MAX_JSON_BYTES` bytes.

A field whose own pattern already excludes U+0000 (codes, ids, enums) needs no `DbText`.

Rules that no type can express (an end after a start, a rule that exists) are checked in the
route with a 422 or 404 and a reason. What still slips through meets `api.errors`' last line of
defence, which answers 409/422 and logs it as the bug it is.
"""

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, WithJsonSchema

from core.storable import MAX_JSON_BYTES, MAX_JSON_DEPTH, check_json_object, check_text

NO_NUL_PATTERN = r"^[^\x00]*$"
YEAR_PATTERN = r"^(19|2[0-9])[0-9]{2}-"  # the year of a date or date-time: 1900–2999
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
REAL_MAX = 3.4e38
MIN_YEAR, MAX_YEAR = 1900, 2999
JSON_VALUE_REF = "#/components/schemas/JsonValue"

# The OpenAPI schema of one value inside a JsonObject (added to the document's components).
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "a JSON value without U+0000 in any string or key",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
        {"type": "object", "patternProperties": {NO_NUL_PATTERN: {"$ref": JSON_VALUE_REF}},
         "additionalProperties": False},
    ],
}


class _Documented:
    """Adds keywords to a type's JSON schema (unless the field sets its own), so the document says the rule."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        for key, value in self.keywords.items():
            schema.setdefault(key, value)
        return schema


_ISO_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _written(value: Any) -> Any:
    # JSON carries dates as text; a number or a boolean is not one (lax parsing would take 0 for 1970).
    if isinstance(value, bool | int | float):
        raise ValueError("must be an ISO 8601 string")
    if isinstance(value, str) and not _ISO_START.match(value):  # a query's "0" is text, and lax parsing reads it as 1970
        raise ValueError("must be an ISO 8601 date, YYYY-MM-DD…")
    return value


def _check_year(value: date) -> date:
    # The year as written (a date-time keeps its offset): a day or an offset away stays in range.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must be in the years {MIN_YEAR}–{MAX_YEAR}")
    return value


DbText = Annotated[str, AfterValidator(check_text), _Documented(pattern=NO_NUL_PATTERN)]
DbInt = Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]
DbBigInt = Annotated[int, Field(ge=BIGINT_MIN, le=BIGINT_MAX)]
DbReal = Annotated[float, Field(ge=-REAL_MAX, le=REAL_MAX, allow_inf_nan=False)]
DbDouble = Annotated[float, Field(allow_inf_nan=False)]
DbDate = Annotated[date, BeforeValidator(_written), AfterValidator(_check_year),
                   _Documented(pattern=YEAR_PATTERN, description=f"a date in the years {MIN_YEAR}–{MAX_YEAR}")]
DbDateTime = Annotated[AwareDatetime, BeforeValidator(_written), AfterValidator(_check_year),
                       _Documented(pattern=YEAR_PATTERN,
                                   description="a date-time with its UTC offset, in the years 1900–2999")]
JsonObject = Annotated[
    dict[str, Any], AfterValidator(check_json_object),
    WithJsonSchema({"type": "object", "patternProperties": {NO_NUL_PATTERN: {"$ref": JSON_VALUE_REF}},
                    "additionalProperties": False,
                    "description": f"a JSON object: no U+0000 in any key or string, finite numbers, at most "
                                   f"{MAX_JSON_DEPTH} levels and {MAX_JSON_BYTES} bytes"}),
]
