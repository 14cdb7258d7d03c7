"""The import template: every sheet with its headers and one example row, drop-down lists on the
coded columns, code columns formatted as text, and a 说明 (notes) sheet: the rules every sheet
follows (a blank optional cell leaves the stored value; hidden sheets are not imported), then
each column.

Written with pandas and openpyxl from the same table the import reads (import_spec), so the
template and the importer cannot disagree; importing the template as it is validates (its
example school lies in 610302 渭滨区, a county the division data knows, and its 区划 row adds
610305 凤翔区, which the data still lists under its old code 610322).
"""

import io
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from api.registry.import_spec import SHEETS, Column

NOTES_SHEET = "说明"
_KIND = {"text": ("文本", "text"), "code": ("代码", "code"), "choice": ("选项", "choice"),
         "int": ("整数", "whole number"), "float": ("数字", "number"), "date": ("日期 YYYY-MM-DD", "date YYYY-MM-DD"),
         "password": ("文本", "text")}


def _notes() -> pd.DataFrame:
    rows = [{"工作表 sheet": "全部 / all", "说明": "选填列留空：保留已登记的值（文件不能清除已登记的值）；隐藏的工作表不导入",
             "note": "a blank optional cell leaves the stored value (a file clears none); hidden sheets are not imported"}]
    for sheet in SHEETS:
        for c in sheet.columns:
            values = "、".join(f"{zh}={en}" for zh, en in c.choices.items())
            limits = []
            if c.max_len:
                limits.append(f"≤{c.max_len} 字符 / characters")
            if c.low is not None and c.kind in ("int", "float"):
                limits.append(f"{'>' if not c.low_inclusive else '≥'}{c.low:g}, ≤{c.high:g}")
            rows.append({"工作表 sheet": f"{sheet.zh} / {sheet.key}", "列 column": c.zh, "英文列名 English header": c.key,
                         "类型 type": " / ".join(_KIND[c.kind]),
                         "必填 required": "是 yes" if not c.blank_ok else "否 no",
                         "取值 values": values or "; ".join(limits), "说明": c.note_zh, "note": c.note_en})
    return pd.DataFrame(rows)


def _width(column: Column) -> int:
    return max(10, min(30, 2 * len(column.zh) + 4, 4 + max(len(str(column.example or "")), len(column.zh) * 2)))


def write_template(target: str | Path | BinaryIO | None = None) -> bytes | None:
    """Write the template XLSX to a path or binary file; with no target, return its bytes."""
    buffer = io.BytesIO() if target is None else target
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for sheet in SHEETS:
            example = pd.DataFrame([{c.zh: c.example for c in sheet.columns}], columns=[c.zh for c in sheet.columns])
            example.to_excel(writer, sheet_name=sheet.zh, index=False)
            ws = writer.sheets[sheet.zh]
            ws.freeze_panes = "A2"
            for i, column in enumerate(sheet.columns, start=1):
                letter = get_column_letter(i)
                ws.column_dimensions[letter].width = _width(column)
                if column.kind == "code":  # typed codes stay text: 0-led ids and 10-digit codes are not numbers
                    ws.column_dimensions[letter].number_format = "@"
                    ws[f"{letter}2"].number_format = "@"
                if column.kind == "date":
                    ws.column_dimensions[letter].number_format = "yyyy-mm-dd"
                if column.choices:
                    rule = DataValidation(type="list", formula1='"' + ",".join(column.choices) + '"',
                                          allow_blank=column.blank_ok, showErrorMessage=True,
                                          errorTitle=column.zh, error="请从列表中选择 / choose from the list")
                    rule.add(f"{letter}2:{letter}1048576")
                    ws.add_data_validation(rule)
        _notes().to_excel(writer, sheet_name=NOTES_SHEET, index=False)
        notes = writer.sheets[NOTES_SHEET]
        for letter, width in zip("ABCDEFGH", (18, 14, 16, 18, 10, 40, 40, 50), strict=True):
            notes.column_dimensions[letter].width = width
    return buffer.getvalue() if target is None else None
