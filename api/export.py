"""Export of any list the API returns, as CSV or XLSX."""

import csv
import io
from collections.abc import Sequence
from typing import Literal

from fastapi.responses import Response
from openpyxl import Workbook

ExportFormat = Literal["json", "csv", "xlsx"]
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MEDIA_TYPE = _XLSX
CSV_MEDIA_TYPE = "text/csv"

# `responses=` of a route whose `format` asks for a file: the 200 is JSON, CSV or XLSX.
EXPORT_RESPONSES: dict[int | str, dict] = {200: {
    "description": "JSON by default; with format=csv a UTF-8 CSV file (with BOM), with format=xlsx a workbook",
    "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}}


def _cell(value: object) -> object:
    if isinstance(value, (list, dict)):
        return str(value)
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.isoformat()
    return value


def table_response(rows: Sequence[dict], columns: Sequence[str], fmt: ExportFormat, name: str) -> Response:
    """The rows as a downloadable CSV (UTF-8 with BOM, so Excel reads Chinese) or XLSX file."""
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")
        writer = csv.writer(buf)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return Response(buf.getvalue().encode(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    book = Workbook(write_only=True)
    sheet = book.create_sheet(name[:31])
    sheet.append(list(columns))
    for row in rows:
        sheet.append([_cell(row.get(c)) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return Response(out.getvalue(), media_type=_XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
