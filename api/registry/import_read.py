"""Reading an import file: an XLSX workbook, or CSV files (one per sheet), into raw sheets.

Rows keep the number Excel shows for them (the header is usually row 1), so every error names
the row a person finds in their spreadsheet. A sheet is recognised by its name (学校 or
schools, …; see import_spec) or, failing that, by its headers (a CSV file named after
anything, a sheet called 学校信息表): the sheet whose required headers are all there. Sheets
that are neither (an instructions sheet) are listed as ignored. Hidden sheets are ignored too,
with a warning naming them: what the importer cannot see (an old copy kept out of sight) is
not imported, and no error points at it.

XLSX is read with calamine (python-calamine, a compiled reader: a province's 200,000 device
rows in seconds, where openpyxl takes about a minute); openpyxl reads it if calamine is
missing. CSV is UTF-8 (with or without a byte-order mark) or, as Excel saves it on a Chinese
Windows, GB18030 — one of them, strictly. A file that is not UTF-8 is read as GB18030 only if
no part of it is UTF-8 Chinese: a run of non-ASCII bytes that is valid UTF-8 and holds two
Chinese characters or more. Chinese text encoded in GBK hardly ever forms one (measured: none of
7,309 names — the division data's, school names made of them, the template's labels — and 3 of
240,000 random strings of GBK's Chinese characters; shorter runs do: 小学 in GBK reads as Сѧ),
while UTF-8 Chinese of two characters always is one. Such a file mixes encodings (a row pasted
from elsewhere) and is refused with a reason, rather than stored as mojibake.

The work is bounded before anything is built from the file: a CSV of more lines, or an XLSX
sheet of more rows, than a sheet may hold is refused on a count of its bytes or of its
dimensions, and blank lines are dropped as they are read.
"""

import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from api.registry.import_spec import SHEETS, FileError, Issue, Sheet

MAX_BYTES = 50 * 1024 * 1024  # an upload or a file
MAX_UNPACKED = 1024 * 1024 * 1024  # what an XLSX (a zip archive) may unpack to: no zip bombs
MAX_ROWS = 1_000_000  # rows of one sheet
_NON_ASCII = re.compile(rb"[\x80-\xff]{6,}")  # a run that may be two or more Chinese characters in UTF-8
_CHINESE = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")


def normalise(header: object) -> str:
    """A header or sheet name as matched: no case, spaces, brackets or underscores."""
    return re.sub(r"[\s()（）\[\]【】_\-]", "", str(header if header is not None else "")).lower()


_SHEET_NAMES = {normalise(n): s for s in SHEETS for n in (s.zh, s.key)}


@dataclass
class RawSheet:
    """A sheet as read: its name in the file, what it holds (None: unknown), its headers and rows.

    `rows` has one object column per header position and is indexed by spreadsheet row number.
    """

    name: str
    spec: Sheet | None
    headers: list[str]
    header_row: int
    rows: pd.DataFrame


@dataclass
class Workbook:
    """An import file as read: its sheets, their problems so far, and the file's SHA-256."""

    filename: str
    sha256: str
    sheets: list[RawSheet] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def sheet(self, key: str) -> RawSheet | None:
        return next((s for s in self.sheets if s.spec is not None and s.spec.key == key), None)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and value != value)


def _recognise(name: str, headers: list[str]) -> Sheet | None:
    if normalise(name) in _SHEET_NAMES:
        return _SHEET_NAMES[normalise(name)]
    present = {normalise(h) for h in headers}
    fits = [s for s in SHEETS
            if all(normalise(c.zh) in present or normalise(c.key) in present for c in s.columns if c.required)]
    return max(fits, key=lambda s: len(s.columns)) if len(fits) >= 1 else None


def _sheet(name: str, table: list[list[object]]) -> RawSheet | None:
    """A sheet from its cells, top row first (row 1); None if it holds nothing."""
    start = next((i for i, r in enumerate(table) if not all(_blank(v) for v in r)), None)
    if start is None:
        return None
    headers = ["" if _blank(h) else str(h).strip() for h in table[start]]
    while headers and not headers[-1]:
        headers.pop()
    body = table[start + 1:]
    if len(body) > MAX_ROWS:
        raise _too_many_rows(name)
    width = len(headers)
    numbers = [start + 2 + i for i, r in enumerate(body) if not all(_blank(v) for v in r[:width])]
    kept = [(r[:width] + [None] * (width - len(r))) for r in body if not all(_blank(v) for v in r[:width])]
    frame = pd.DataFrame(kept, index=pd.Index(numbers, name="row"), columns=range(width), dtype=object)
    return RawSheet(name, _recognise(name, headers), headers, start + 1, frame)


def _too_many_rows(name: str) -> FileError:
    return FileError(f"工作表“{name}”超过 {MAX_ROWS} 行", f"sheet {name!r} has more than {MAX_ROWS} rows")


def _xlsx_tables(content: bytes) -> list[tuple[str, list[list[object]] | None]]:
    """(name, cells) of each sheet; None for the cells of a hidden sheet."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
    except zipfile.BadZipFile:
        raise FileError("不是可读取的 XLSX 文件", "not a readable XLSX file") from None
    if unpacked > MAX_UNPACKED:
        raise FileError("XLSX 文件解压后过大", f"the XLSX file unpacks to more than {MAX_UNPACKED} bytes",
                        too_large=True)
    try:
        from python_calamine import CalamineWorkbook, SheetVisibleEnum
    except ImportError:  # pragma: no cover - calamine is a dependency; openpyxl is the slow fallback
        return _openpyxl_tables(content)
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(content))
        tables = []
        for meta in book.sheets_metadata:
            if meta.visible != SheetVisibleEnum.Visible:
                tables.append((meta.name, None))
                continue
            sheet = book.get_sheet_by_name(meta.name)
            if max(sheet.height, sheet.total_height) > MAX_ROWS + 1:  # before any Python list is made
                raise _too_many_rows(meta.name)
            tables.append((meta.name, sheet.to_python(skip_empty_area=False)))
        return tables
    except FileError:
        raise
    except Exception:  # calamine raises its own kinds on a broken archive
        raise FileError("不是可读取的 XLSX 文件", "not a readable XLSX file") from None


def _openpyxl_tables(content: bytes) -> list[tuple[str, list[list[object]] | None]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        return [(ws.title, [list(r) for r in ws.iter_rows(values_only=True)] if ws.sheet_state == "visible" else None)
                for ws in book.worksheets]
    except Exception:  # openpyxl raises many kinds on a broken file
        raise FileError("不是可读取的 XLSX 文件", "not a readable XLSX file") from None


def _decode(content: bytes) -> str:
    """The CSV's text: UTF-8 (a byte-order mark dropped), else GB18030 unless UTF-8 is mixed in (see the module)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    mixed = content.startswith(b"\xef\xbb\xbf") or any(
        _utf8_chinese(run.group()) for run in _NON_ASCII.finditer(content))
    if mixed:
        raise FileError("CSV 文件混用了多种编码（部分为 UTF-8）：请将文件另存为 UTF-8",
                        "mixed encodings (part of the file is UTF-8): save the file as UTF-8")
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise FileError("CSV 文件须为 UTF-8 或 GB18030 编码", "CSV files must be UTF-8 or GB18030") from None


def _utf8_chinese(run: bytes) -> bool:
    try:
        return len(_CHINESE.findall(run.decode("utf-8"))) >= 2
    except UnicodeDecodeError:
        return False


def _csv_table(name: str, content: bytes) -> list[list[object]]:
    """The CSV's records, top first; a blank one as a shared empty list (nothing is kept for it)."""
    if max(content.count(b"\n"), content.count(b"\r")) > MAX_ROWS + 1:  # before decoding: a count of bytes
        raise _too_many_rows(name)
    blank: list[object] = []
    try:
        return [row if any(cell.strip() for cell in row) else blank
                for row in csv.reader(io.StringIO(_decode(content), newline=""))]
    except csv.Error as exc:
        raise FileError(f"不是可读取的 CSV 文件：{exc}", f"not a readable CSV file: {exc}") from None


def _is_xlsx(name: str, content: bytes) -> bool:
    lower = name.lower()
    if lower.endswith(".xlsx") or lower.endswith(".xlsm"):
        return True
    if lower.endswith(".csv"):
        return False
    if content.startswith(b"PK\x03\x04"):
        return True
    raise FileError("只接受 .xlsx 或 .csv 文件", "only .xlsx or .csv files are imported")


def read_files(files: list[tuple[str, bytes]]) -> Workbook:
    """A workbook from files given as (name, content): one XLSX, or CSV files one per sheet."""
    if not files:
        raise FileError("没有文件", "no file given")
    digest = hashlib.sha256()
    tables: list[tuple[str, list[list[object]] | None]] = []
    for name, content in sorted(files):
        if len(content) > MAX_BYTES:
            raise FileError(f"文件超过 {MAX_BYTES // 1024 // 1024} MB", f"files are limited to {MAX_BYTES} bytes",
                            too_large=True)
        digest.update(hashlib.sha256(content).digest() if len(files) > 1 else content)
        if _is_xlsx(name, content):
            if len(files) > 1:
                raise FileError("XLSX 工作簿须单独导入", "an XLSX workbook is imported on its own")
            tables.extend(_xlsx_tables(content))
        else:
            tables.append((Path(name).stem, _csv_table(Path(name).stem, content)))
    book = Workbook(filename=", ".join(n for n, _ in sorted(files)), sha256=digest.hexdigest())
    for name, table in tables:
        if table is None:
            book.ignored.append(name)
            book.warnings.append(Issue(name, 0, None, f"隐藏的工作表“{name}”未导入（如需导入请取消隐藏）",
                                       f"the hidden sheet {name!r} was not imported (unhide it to import it)"))
            continue
        sheet = _sheet(name, table)
        if sheet is None or sheet.spec is None:
            book.ignored.append(name)
            continue
        twin = book.sheet(sheet.spec.key)
        if twin is not None:
            book.issues.append(Issue(name, sheet.header_row, None, f"与工作表“{twin.name}”重复（同为{sheet.spec.zh}）",
                                     f"holds {sheet.spec.key} like sheet {twin.name!r}: one sheet each"))
            continue
        book.sheets.append(sheet)
    if not book.sheets and not book.issues:
        names = "、".join(s.zh for s in SHEETS)
        book.issues.append(Issue(book.filename, 1, None, f"没有可导入的工作表（{names}）",
                                 "no sheet to import (schools, devices, communities, users, divisions)"))
    return book


def read_workbook(source: str | Path | bytes | list, filename: str | None = None) -> Workbook:
    """A workbook from a path (an XLSX file, a CSV file or a folder of CSV files), several CSV
    paths, or the bytes of one file (`filename` tells XLSX from CSV and names a CSV's sheet)."""
    if isinstance(source, bytes | bytearray):
        return read_files([(filename or "upload.xlsx", bytes(source))])
    paths = [Path(p) for p in source] if isinstance(source, list) else [Path(source)]
    if len(paths) == 1 and paths[0].is_dir():
        paths = sorted(p for p in paths[0].iterdir() if p.suffix.lower() == ".csv")
        if not paths:
            raise FileError("文件夹中没有 CSV 文件", "the folder holds no CSV file")
    files = []
    for path in paths:
        if path.stat().st_size > MAX_BYTES:
            raise FileError(f"文件超过 {MAX_BYTES // 1024 // 1024} MB", f"files are limited to {MAX_BYTES} bytes",
                            too_large=True)
        files.append((path.name, path.read_bytes()))
    return read_files(files)
