"""`cockpit import`: a bureau loads its schools, devices, communities and users from the
spreadsheets it keeps. One file, checked whole, applied whole or not at all.

Entry points (the CLI, the API route and tests use only these):

    book = read_workbook(path_or_bytes, filename=None)      # -> Workbook (raises FileError)
    report = plan(conn, book, actor, scope=None)             # dry run: checks, counts, writes nothing
    report = apply(conn, book, actor, scope=None, dry_run=False)
    write_template(path_or_buffer)                           # api.registry.template

`actor` is who imports (a username, or `cli:<login name>` for the command line): it is written
to `registry_history.changed_by` and `audit_log.username`. `scope` (`ImportScope(level, code)`,
a `(level, code)` tuple or the administrator's `User`) bounds the file to that scope; None is
the command line's full power. `conn` is any psycopg connection: the import runs in one transaction of its own, or
in a savepoint when the caller has a transaction open (the API's request), and commits nothing
itself beyond that block.

`Report.as_dict()` is the API's answer: {ok, dry_run, errors: [{sheet, row, column, reason_zh,
reason_en}], error_count, warnings, changes: {divisions, schools, devices, communities, users:
{created, changed, …}}, changed, passwords: [{username, password}] (only applied, generated
ones), rows, ignored_sheets, sha256, file}.

The workbook: sheets 学校/schools, 设备/devices, 教联体/communities, 用户/users and, optionally,
区划/divisions, each with the columns of import_spec (Chinese or English headers). Any sheet
may be left out. What an import does:

* Schools, devices, communities and users are keyed by 学校标识码, 设备编号, 教联体编号 and
  用户名: a key not in the registry is created, one that is is updated where its values differ;
  nothing absent from the file is touched or deleted. A key differing only by case from another
  in the file or in the registry is an error (`TD-1` beside `td-1`).
* A blank optional cell leaves the stored value unchanged, in every sheet: 经度/纬度 (both
  blank), 安装日期, 状态, 成立日期 (a new record gets none); 初始密码 blank generates a
  password for a new user. A file cannot clear a stored value: the administration pages can.
  (区划's 上级代码 is no value but the row's level: blank is a province.)
* A school whose county changes is a move, a device whose school or room changes is a move,
  状态 退役 retires a device (device_all.retired_at; it leaves the `device` view) and 在用
  brings a retired one back (blank: unchanged). A community in the file lists all its members:
  members missing from it leave. Each of these, and every record created or changed, is a
  `registry_history` row (source 'import', changed_by the actor, the record before and after).
* A new user gets the 初始密码 given (checked against the password policy) or a generated one,
  returned once in `passwords`; both must be changed at first login. An existing user keeps
  their password; their name, role and scope follow the file.
* Divisions come from the county codes (see divisions.py), created as needed.
* The import as a whole is one `audit_log` entry (action 'registry.import', the file's SHA-256
  and the counts) — unless it changed nothing: importing the same file again writes nothing.

Errors come in two rounds: a row failing the sheet checks (import_check) is not also checked
against the registry and the scope, so correcting it may bring more; the report says so in a
warning whenever sheet errors were found. Hidden sheets are not imported (a warning names them).

`changes` counts per record type: created, changed (moved, retired and returned are changes
too, counted again on their own), unchanged; communities also joined, left and roles_changed;
divisions created, renamed and moved. `changed` is the total of records created or changed.
"""

import time
from dataclasses import dataclass, field

import psycopg

from api.auth.models import User
from api.registry.import_check import check_workbook
from api.registry.import_read import Workbook, read_workbook
from api.registry.import_spec import SHEETS, FileError, Issue
from api.registry.import_write import ImportScope, Run
from api.registry.template import write_template

Scope = ImportScope | tuple[str, str] | User | None  # what bounds an import (None: nothing)
MAX_ERRORS = 1000  # errors listed in a report (error_count has them all)

__all__ = ["FileError", "ImportScope", "Issue", "Report", "Workbook", "apply", "plan", "read_workbook",
           "scope_of", "write_template"]


@dataclass
class Report:
    """What an import found and did."""

    ok: bool
    dry_run: bool
    applied: bool
    file: str
    sha256: str
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    changed: int = 0
    passwords: list[dict[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    ignored_sheets: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "dry_run": self.dry_run, "applied": self.applied, "file": self.file,
                "sha256": self.sha256, "errors": [e.as_dict() for e in self.errors[:MAX_ERRORS]],
                "error_count": len(self.errors), "warnings": [w.as_dict() for w in self.warnings[:MAX_ERRORS]],
                "changes": self.changes, "changed": self.changed, "passwords": self.passwords, "rows": self.rows,
                "ignored_sheets": self.ignored_sheets}


def scope_of(user: User) -> ImportScope:
    """The scope bounding an administrator's import: their own (an `api.auth.models.User`)."""
    return ImportScope(user.scope_level, user.scope_code)


def _order(book: Workbook, issues: list[Issue]) -> list[Issue]:
    sheets = {s.name: i for i, s in enumerate(book.sheets)}
    return sorted(issues, key=lambda e: (sheets.get(e.sheet, -1), e.row))


def apply(conn: psycopg.Connection, book: Workbook, actor: str, scope: Scope = None,
          dry_run: bool = False) -> Report:
    """Check the workbook and, if nothing is wrong and this is no dry run, apply it in one transaction."""
    if isinstance(scope, tuple):
        scope = ImportScope(*scope)
    elif scope is not None and not isinstance(scope, ImportScope):
        scope = scope_of(scope)  # a User
    started = time.perf_counter()
    checked, issues = check_workbook(book)
    warnings = list(book.warnings)
    if issues and book.sheets:
        warnings.append(Issue(book.filename, 0, None, "有行未通过表格检查，这些行未与登记册和管理范围核对：更正后可能还有其他错误",
                              "rows failing the sheet checks were not checked against the registry or your scope: "
                              "more errors may follow once they are corrected"))
    checked_at = time.perf_counter()
    rows = {spec.key: len(checked[spec.key].frame) for spec in SHEETS if spec.key in checked}
    run = Run(conn, checked, actor, scope, book.filename, book.sha256, rows)
    outcome = run.execute(issues, dry_run)
    errors = _order(book, outcome.issues)
    report = Report(ok=not errors, dry_run=dry_run, applied=outcome.applied, file=book.filename, sha256=book.sha256,
                    errors=errors, warnings=_order(book, warnings + outcome.warnings), changes=outcome.changes if not errors else {},
                    passwords=outcome.passwords, rows=rows, ignored_sheets=book.ignored)
    report.changed = run.total_changed() if not errors else 0
    report.seconds = {"check": round(checked_at - started, 3), "database": round(time.perf_counter() - checked_at, 3)}
    return report


def plan(conn: psycopg.Connection, book: Workbook, actor: str, scope: Scope = None) -> Report:
    """A dry run: every error, and what the import would change; nothing is written."""
    return apply(conn, book, actor, scope, dry_run=True)
