"""The import's HTTP face: upload a workbook (dry run or apply), download the template.

Administrators only; the file is bounded by the administrator's own scope, by the rules of the
administration API (a school's or community's administrator changes its schools' details but
moves or creates none; see import_write.py). Row problems are
not an HTTP error: the answer is 200 with `ok: false` and every problem in `errors` (sheet,
row, column, reason in Chinese and English), and nothing is written. A file that cannot be
read at all is: 413 when too large, 422 when neither .xlsx nor .csv or broken.
"""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import Conn, role
from api.errors import problems
from api.registry import importer
from api.registry.import_read import MAX_BYTES

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Admin = role({"admin"}, "administer the registry")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportIssue(BaseModel):
    """One problem of an import file."""

    sheet: str = Field(examples=["学校"])
    row: int = Field(description="the row as the spreadsheet shows it (the header is row 1)", examples=[7])
    column: str | None = Field(description="the column as the file heads it", examples=["区县代码"])
    reason_zh: str
    reason_en: str


class GeneratedPassword(BaseModel):
    """A new user's generated password, shown this once."""

    username: str
    password: str


class ImportReport(BaseModel):
    """What an import found and, unless a dry run or refused, did."""

    ok: bool = Field(description="no errors (for an apply: the file was applied)")
    dry_run: bool
    applied: bool
    file: str
    sha256: str = Field(description="the file's SHA-256, as recorded in the audit log")
    errors: list[ImportIssue] = Field(description=f"the first {importer.MAX_ERRORS} problems")
    error_count: int
    warnings: list[ImportIssue]
    changes: dict[str, dict[str, int]] = Field(
        description="per record type: created, changed, moved, retired, returned, joined, left, unchanged…")
    changed: int = Field(description="records created or changed in all (0: the file changes nothing)")
    passwords: list[GeneratedPassword] = Field(description="generated passwords of new users (applied imports only)")
    rows: dict[str, int]
    ignored_sheets: list[str]


@router.post("/import", response_model=ImportReport, summary="Import a registry workbook (XLSX or CSV)",
             responses=problems(403, 413))
def import_workbook(file: UploadFile, conn: Conn, user: Admin,
                    dry_run: Annotated[bool, Query(description="check and count only; write nothing")] = True) -> Any:
    """Schools, devices, communities, users and divisions from the bureau's spreadsheet (the template's
    sheets; Chinese or English headers). Checked whole and applied in one transaction, or not at all."""
    content = file.file.read(MAX_BYTES + 1)
    name = file.filename or ""
    if len(content) > MAX_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"files are limited to {MAX_BYTES} bytes")
    if not name.lower().endswith((".xlsx", ".csv")):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "only .xlsx or .csv files are imported")
    try:
        book = importer.read_workbook(content, name)
    except importer.FileError as exc:
        code = status.HTTP_413_CONTENT_TOO_LARGE if exc.too_large else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, f"{exc.en} ({exc.zh})") from None
    report = importer.apply(conn, book, user.username, importer.scope_of(user), dry_run=dry_run)
    return report.as_dict()


@router.get("/import/template", summary="The import template (XLSX)", response_class=Response, responses={
    200: {"content": {XLSX: {}}, "description": "the template workbook"}, **problems(403)})
def import_template(user: Admin) -> Response:
    """Every sheet with its headers and an example row, drop-down lists for coded columns, and notes."""
    return Response(importer.write_template(), media_type=XLSX,
                    headers={"Content-Disposition": "attachment; filename*=UTF-8''registry-import-template.xlsx"})
