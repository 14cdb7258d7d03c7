"""The checks a sheet passes before anything touches the database, column by column with pandas.

Each column's cells are converted to what its database column stores (text, an integer, a
double, a date, a code's stored value) and every cell that cannot be is reported: a blank
required cell, NUL and other control characters, invisible ones (zero-width and text-direction
controls, which make two names look alike or a name read backwards: a name of nothing else is
blank), a text longer than its limit, a number that is not one, not whole, negative or beyond
2^31-1, a date outside 1900–2999, coordinates outside China, a code not matching its pattern.
Then the rules between rows of one sheet: a natural key twice in the file (or twice but for
case: `TD-1` and `td-1` are one device to whoever reads them), a community with no lead or two,
rows of one community that disagree about its name.

The result keeps every row (typed, blanks as None) with a flag saying whether it passed, and
the keys written correctly even on failing rows, so the database checks that follow can tell
"not in the file" from "in the file, but wrong". A cell holding a character the database or a
reader cannot take (NUL, control, invisible) is kept as None, so it reaches neither.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from api.auth import policy
from api.registry.import_read import RawSheet, Workbook, normalise
from api.registry.import_spec import INT_MAX, MAX_YEAR, MIN_YEAR, Column, Issue, Sheet

CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")  # zero-width, direction controls
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


@dataclass
class Checked:
    """One sheet after the checks: typed rows (index = spreadsheet row), headers as written, and
    which rows passed."""

    raw: RawSheet
    frame: pd.DataFrame
    headers: dict[str, str]  # column key -> header as written in the file
    ok: pd.Series  # bool per row
    issues: list[Issue] = field(default_factory=list)

    @property
    def spec(self) -> Sheet:
        return self.raw.spec

    def header(self, key: str) -> str:
        """The column as the file heads it (or its Chinese name when the file has no such column)."""
        return self.headers.get(key) or self.spec.column(key).zh

    def valid(self) -> pd.DataFrame:
        return self.frame[self.ok]

    def refuse(self, rows, key: str | None, zh: str, en: str) -> None:
        """Report rows (spreadsheet numbers) as wrong in a column, and mark them failed."""
        rows = list(rows)
        if not rows:
            return
        column = self.header(key) if key else None
        self.issues.extend(Issue(self.raw.name, int(r), column, zh, en) for r in rows)
        self.ok.loc[rows] = False


# -- cells to values ------------------------------------------------------------------------


def _text(value: object) -> str:
    """A cell as the text a person sees in it ('' for blank); whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _date(value: object) -> object:
    """A cell as a date; 'bad' if it is none, 'range' if outside MIN_YEAR–MAX_YEAR, None if blank."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value if MIN_YEAR <= value.year <= MAX_YEAR else "range"
    text = _text(value)
    if not text:
        return None
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not match:
        return "bad"
    year, month, day = (int(g) for g in match.groups())
    if not MIN_YEAR <= year <= MAX_YEAR:
        return "range"
    try:
        return date(year, month, day)
    except ValueError:
        return "bad"


def _check_text(sheet: Checked, col: Column, text: pd.Series) -> pd.Series:
    blank = text == ""
    hidden = text.str.contains(INVISIBLE)
    if hidden.any():  # a text of invisible characters only is blank
        blank |= (text[hidden].str.replace(INVISIBLE, "", regex=True).str.strip() == "").reindex(text.index,
                                                                                               fill_value=False)
    if not col.blank_ok:
        sheet.refuse(text.index[blank], col.key, "必填", "required")
    nul = text.str.contains("\x00", regex=False)
    sheet.refuse(text.index[nul], col.key, "含有 NUL 字符 (U+0000)", "contains the NUL character (U+0000)")
    control = ~nul & text.str.contains(CONTROL)
    sheet.refuse(text.index[control], col.key, "含有控制字符或无效字符", "contains control characters or invalid text")
    invisible = ~blank & ~nul & ~control & hidden
    sheet.refuse(text.index[invisible], col.key, "含有不可见字符（零宽字符或文字方向控制符）",
                 "contains invisible characters (zero-width or text-direction controls)")
    control |= nul | invisible
    if col.max_len:
        long = text.str.len() > col.max_len
        sheet.refuse(text.index[long], col.key, f"超过 {col.max_len} 个字符", f"longer than {col.max_len} characters")
    if col.pattern:
        wrong = ~blank & ~control & ~text.str.fullmatch(col.pattern)
        sheet.refuse(text.index[wrong], col.key, f"格式不对（{col.note_zh or col.pattern}）",
                     f"does not match the pattern {col.pattern}" + (f" ({col.note_en})" if col.note_en else ""))
    return text.where(~blank & ~control, None)


def _check_choice(sheet: Checked, col: Column, text: pd.Series) -> pd.Series:
    accepts = {**col.accepts(), **{v.lower(): v for v in col.choices.values()}}
    value = text.map(lambda t: accepts.get(t, accepts.get(t.lower())))
    blank = text == ""
    if not col.blank_ok:
        sheet.refuse(text.index[blank], col.key, "必填", "required")
    wrong = ~blank & value.isna()
    labels = "、".join(col.choices)
    sheet.refuse(text.index[wrong], col.key, f"应为以下之一：{labels}",
                 f"must be one of {', '.join(col.choices)} ({', '.join(col.choices.values())})")
    return value.where(~blank, None)


def _check_number(sheet: Checked, col: Column, text: pd.Series) -> pd.Series:
    blank = text == ""
    number = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    if not col.blank_ok:
        sheet.refuse(text.index[blank], col.key, "必填", "required")
    bad = ~blank & ~np.isfinite(number)
    sheet.refuse(text.index[bad], col.key, "不是数字", "not a number")
    fine = ~blank & ~bad
    if col.kind == "int":
        fraction = fine & (number != np.floor(number))
        sheet.refuse(text.index[fraction], col.key, "应为整数", "must be a whole number")
        fine &= ~fraction
    if col.low is not None:
        low = fine & ((number < col.low) if col.low_inclusive else (number <= col.low))
        zh = "不能为负数" if col.low == 0 and col.low_inclusive else (
            "应大于 0" if col.low == 0 else f"应在 {col.low} 与 {col.high} 之间")
        en = "must not be negative" if col.low == 0 and col.low_inclusive else (
            "must be more than 0" if col.low == 0 else f"must lie between {col.low} and {col.high}")
        sheet.refuse(text.index[low], col.key, zh, en)
        fine &= ~low
    if col.high is not None:
        high = fine & (number > col.high)
        zh = f"超过上限 {INT_MAX}" if col.high == INT_MAX else f"应在 {col.low} 与 {col.high} 之间"
        en = f"exceeds the limit of {INT_MAX}" if col.high == INT_MAX else f"must lie between {col.low} and {col.high}"
        sheet.refuse(text.index[high], col.key, zh, en)
    if col.kind == "int":
        return number.where(fine & (number <= INT_MAX)).astype("Int64")
    return number.where(fine)


def _check_date(sheet: Checked, col: Column, cells: pd.Series) -> pd.Series:
    value = cells.map(_date)
    blank = value.isna()
    if not col.blank_ok:
        sheet.refuse(cells.index[blank], col.key, "必填", "required")
    bad = value.map(lambda v: v == "bad" if isinstance(v, str) else False).astype(bool)
    sheet.refuse(cells.index[bad], col.key, "不是日期（应为 YYYY-MM-DD）", "not a date (YYYY-MM-DD)")
    out = value.map(lambda v: v == "range" if isinstance(v, str) else False).astype(bool)
    sheet.refuse(cells.index[out], col.key, f"日期应在 {MIN_YEAR} 至 {MAX_YEAR} 年之间",
                 f"must be a date in the years {MIN_YEAR}–{MAX_YEAR}")
    return value.where(~bad & ~out, None)


# -- password policy ---------------------------------------------------------------------------


def password_problem(password: str, username: str) -> tuple[str, str] | None:
    """Why a password given in the file may not be set (Chinese, English), or None: the platform's
    password policy (api/auth/policy.py), the same as for a password an administrator sets."""
    try:
        policy.check(password, username)
    except policy.PolicyError as exc:
        return exc.zh, exc.en
    return None


# -- one sheet -------------------------------------------------------------------------------


def _columns(raw: RawSheet, issues: list[Issue]) -> dict[str, int] | None:
    """Column key -> position in the sheet; None (with issues) when a required column is missing."""
    spec = raw.spec
    names = {normalise(n): c.key for c in spec.columns for n in (c.zh, c.key)}
    found: dict[str, int] = {}
    for position, header in enumerate(raw.headers):
        key = names.get(normalise(header))
        if key is None:
            continue
        if key in found:
            issues.append(Issue(raw.name, raw.header_row, header, f"列重复（与“{raw.headers[found[key]]}”相同）",
                                f"the same column as {raw.headers[found[key]]!r}"))
            continue
        found[key] = position
    missing = [c for c in spec.columns if c.required and c.key not in found]
    for c in missing:
        issues.append(Issue(raw.name, raw.header_row, c.zh, f"缺少列“{c.zh}”（或“{c.key}”）",
                            f"missing column {c.key!r} ({c.zh})"))
    return None if missing or any(i.row == raw.header_row for i in issues if i.sheet == raw.name) else found


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + ("…" if len(rows) > 5 else "")


def _duplicates(sheet: Checked, keys: tuple[str, ...]) -> None:
    """A natural key twice in the file, or twice but for case (compared as lower case)."""
    frame = sheet.frame.loc[sheet.frame[list(keys)].notna().all(axis=1), list(keys)]
    folded = frame.map(lambda v: v.lower() if isinstance(v, str) else v)
    groups: dict[tuple, list[int]] = {}
    for row, key in zip(folded.index, folded.itertuples(index=False, name=None), strict=True):
        groups.setdefault(key, []).append(row)
    label_zh = "、".join(sheet.header(k) for k in keys)
    for rows in (rows for rows in groups.values() if len(rows) > 1):
        for r in rows:
            same = [x for x in rows if x != r and frame.loc[x].tolist() == frame.loc[r].tolist()]
            other = [x for x in rows if x != r and x not in same]
            if same:
                sheet.refuse([r], keys[-1], f"{label_zh}在文件中重复（另见第 {_rows_text(same)} 行）",
                             f"{'/'.join(keys)} appears more than once in the file (also row {_rows_text(same)})")
            if other:
                sheet.refuse([r], keys[-1], f"{label_zh}与第 {_rows_text(other)} 行仅大小写不同",
                             f"{'/'.join(keys)} differs only by case from row {_rows_text(other)}")


def _communities(sheet: Checked) -> None:
    """One lead per community; a community's name, kind and founding day the same on all its rows."""
    frame = sheet.frame[sheet.frame["code"].notna()]
    leads = frame[frame["role"] == "lead"].groupby("code").size()
    for code, rows in frame.groupby("code", sort=False).groups.items():
        rows = list(rows)
        n = int(leads.get(code, 0))
        if n == 0:
            sheet.refuse(rows[:1], "role", f"教联体 {code} 没有牵头学校（须恰有一所）",
                         f"community {code} has no lead school (exactly one is needed)")
        elif n > 1:
            lead_rows = [r for r in rows if frame.at[r, "role"] == "lead"]
            sheet.refuse(lead_rows, "role", f"教联体 {code} 有 {n} 所牵头学校（须恰有一所）",
                         f"community {code} has {n} lead schools (exactly one is allowed)")
        for key in ("name", "kind", "founded_on"):
            if key not in frame.columns:
                continue
            values = frame.loc[rows, key]
            first = values.iloc[0]
            differ = [r for r in rows[1:] if not _same(values.at[r], first)]
            sheet.refuse(differ, key, f"与同一教联体第 {rows[0]} 行不一致", f"differs from row {rows[0]} of the same community")


def _same(a: object, b: object) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def check_sheet(raw: RawSheet, issues: list[Issue]) -> Checked | None:
    """The sheet's rows typed and checked; None when its headers already make it unusable."""
    positions = _columns(raw, issues)
    if positions is None:
        return None
    spec = raw.spec
    sheet = Checked(raw, pd.DataFrame(index=raw.rows.index), {k: raw.headers[p] for k, p in positions.items()},
                    pd.Series(True, index=raw.rows.index))
    for col in spec.columns:
        if col.key not in positions:
            sheet.frame[col.key] = None
            continue
        cells = raw.rows[positions[col.key]]
        if col.kind == "date":
            sheet.frame[col.key] = _check_date(sheet, col, cells)
            continue
        text = cells.map(_text) if col.kind != "password" else cells.map(
            lambda v: v if isinstance(v, str) else _text(v))
        if col.kind in ("int", "float"):
            sheet.frame[col.key] = _check_number(sheet, col, text)
        elif col.kind == "choice":
            sheet.frame[col.key] = _check_choice(sheet, col, text)
        else:
            sheet.frame[col.key] = _check_text(sheet, col, text)
    if spec.key == "schools":
        lon, lat = sheet.frame["longitude"].notna(), sheet.frame["latitude"].notna()
        sheet.refuse(sheet.frame.index[lon & ~lat & (cells_blank(raw, positions, "latitude"))], "latitude",
                     "经度和纬度须同时填写", "give both longitude and latitude, or neither")
        sheet.refuse(sheet.frame.index[lat & ~lon & (cells_blank(raw, positions, "longitude"))], "longitude",
                     "经度和纬度须同时填写", "give both longitude and latitude, or neither")
    if spec.key == "communities":
        _communities(sheet)
    if spec.key == "users":
        given = sheet.frame[sheet.frame["password"].notna() & sheet.frame["username"].notna()]
        for r, username, password in zip(given.index, given["username"], given["password"], strict=True):
            problem = password_problem(password, username)
            if problem:
                sheet.refuse([r], "password", *problem)
    _duplicates(sheet, spec.natural_key)
    issues.extend(sheet.issues)
    return sheet


def cells_blank(raw: RawSheet, positions: dict[str, int], key: str) -> pd.Series:
    """Whether a column's cells are blank (all blank when the sheet has no such column)."""
    if key not in positions:
        return pd.Series(True, index=raw.rows.index)
    return raw.rows[positions[key]].map(_text) == ""


def check_workbook(book: Workbook) -> tuple[dict[str, Checked], list[Issue]]:
    """Every sheet checked: {sheet key: Checked} and all issues so far (the file's own first)."""
    issues = list(book.issues)
    checked = {}
    for raw in book.sheets:
        sheet = check_sheet(raw, issues)
        if sheet is not None:
            checked[raw.spec.key] = sheet
    return checked, issues
