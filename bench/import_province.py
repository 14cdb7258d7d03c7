"""Import benchmark: a province's workbook (10,000 schools, 200,000 devices, communities, users)
read, checked in a dry run, applied, and applied again, beside a bare COPY of the same rows.

    python -m bench.import_province                    # its own PostgreSQL in a temporary folder
    python -m bench.import_province --url postgresql://…/scratch   # a scratch database (emptied!)
    python -m bench.import_province --schools 1000 --devices-per-school 20   # smaller

The province is 陕西 (610000), its real counties from the division data; every school gets
its devices (boards, one recorder, one gateway), a tenth of the schools lead a community of
four, every county has a manager and an operations account. The workbook is written once with
openpyxl and kept under var/bench-import/ (writing 200,000 rows takes a minute; it is not what
is measured). Printed, each measured in the same run:

* read: the XLSX into sheets with calamine (and with openpyxl, --openpyxl, for comparison);
* dry run: every check, the registry checks and the counts, nothing written;
* apply: the same, then every row written in one transaction (an empty registry);
* apply again: the same file, nothing to write (0 changed);
* apply with moves: 1% of the devices moved to another school, 100 schools to another county;
* baseline: COPY of the same school and device rows into bare tables without constraints.

The target: a province's import (read + apply) within 60 s on a 2-core machine.
"""

import argparse
import io
import random
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg

from api.registry import importer
from api.registry.divisions import package
from core.db import migrate
from core.settings import PROJECT_ROOT
from ops.embedded import EmbeddedPostgres

PROVINCE = "610000"
KINDS = ("一体机", "录播教室", "校园网关")


def province_sheets(schools: int, per_school: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """The province's workbook as DataFrames with Chinese headers."""
    rng = random.Random(seed)
    counties = sorted(c for c, (_n, _ci, p) in package().counties.items() if p == PROVINCE)
    school_rows, device_rows = [], []
    for i in range(schools):
        county = counties[i % len(counties)]
        code = f"{county[:4]}{i:06d}"
        classes = rng.randint(3, 60)
        school_rows.append({"学校标识码": code, "学校名称": f"{package().counties[county][0]}第{i + 1}学校",
                            "区县代码": county, "城乡类型": rng.choice(("城区", "镇区", "乡村")),
                            "学段": rng.choice(("小学", "初中", "九年一贯制", "完全中学", "高中", "教学点")),
                            "班级数": classes, "学生数": classes * rng.randint(20, 50), "教师数": classes * 3,
                            "出口带宽Mbps": rng.choice((100, 300, 500, 1000)),
                            "经度": round(105.5 + rng.random() * 5, 5), "纬度": round(32 + rng.random() * 7, 5)})
        for j in range(per_school):
            kind = KINDS[0] if j < per_school - 2 else KINDS[j - per_school + 3]
            device_rows.append({"设备编号": f"D{code}-{j:03d}", "设备类型": kind, "学校标识码": code,
                                "教室": f"{j + 1}班" if kind == KINDS[0] else ("录播室" if kind == KINDS[1] else "机房"),
                                "厂商": rng.choice(("希沃", "鸿合", "华为", "海康")), "型号": "M86",
                                "安装日期": f"20{rng.randint(15, 24)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                                "状态": "在用"})
    codes = [s["学校标识码"] for s in school_rows]
    member_rows = []
    for k in range(0, len(codes) - 3, 10):
        community = f"C{codes[k]}"
        for n, school in enumerate(codes[k:k + 4]):
            member_rows.append({"教联体编号": community, "教联体名称": f"教联体{k // 10 + 1}", "类型": "融合型",
                                "学校标识码": school, "角色": "牵头" if n == 0 else "成员"})
    user_rows = [{"用户名": "province_admin", "姓名": "陕西省教育厅", "角色": "管理员", "范围级别": "省",
                  "范围代码": PROVINCE}]
    for county in counties:
        user_rows.append({"用户名": f"m{county}", "姓名": f"{county}教育局", "角色": "管理者", "范围级别": "县",
                          "范围代码": county})
        user_rows.append({"用户名": f"o{county}", "姓名": f"{county}电教中心", "角色": "运维", "范围级别": "县",
                          "范围代码": county})
    return {"学校": pd.DataFrame(school_rows), "设备": pd.DataFrame(device_rows), "教联体": pd.DataFrame(member_rows),
            "用户": pd.DataFrame(user_rows)}


def write_xlsx(sheets: dict[str, pd.DataFrame], path: Path) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)


def baseline_copy(url: str, sheets: dict[str, pd.DataFrame]) -> float:
    """Seconds to COPY the same school and device rows into bare tables (no checks, no constraints)."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bare_school (code text, name text, county text, locale text, stage text, "
                    "classes int, students int, teachers int, uplink int, lon float8, lat float8)")
        cur.execute("CREATE TEMP TABLE bare_device (id text, kind text, school text, room text, vendor text, "
                    "model text, installed date, status text)")
        started = time.perf_counter()
        for table, frame in (("bare_school", sheets["学校"]), ("bare_device", sheets["设备"])):
            with cur.copy(f"COPY {table} FROM STDIN") as copy:  # noqa: S608
                for row in frame.itertuples(index=False):
                    copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def timed(label: str, results: list, fn):
    started = time.perf_counter()
    value = fn()
    results.append((label, time.perf_counter() - started))
    print(f"{label:<44} {results[-1][1]:7.1f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a scratch database to use (its registry is emptied)")
    parser.add_argument("--schools", type=int, default=10_000)
    parser.add_argument("--devices-per-school", type=int, default=20)
    parser.add_argument("--openpyxl", action="store_true", help="also time reading the XLSX with openpyxl")
    args = parser.parse_args()

    folder = PROJECT_ROOT / "var" / "bench-import"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"province-{args.schools}x{args.devices_per_school}.xlsx"
    sheets = province_sheets(args.schools, args.devices_per_school)
    if not path.exists():
        started = time.perf_counter()
        write_xlsx(sheets, path)
        print(f"wrote {path.name} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")
    moved = {k: v.copy() for k, v in sheets.items()}
    devices = moved["设备"]
    step = 100
    devices.loc[::step, "学校标识码"] = devices["学校标识码"].shift(-args.devices_per_school).ffill()[::step]
    schools = moved["学校"]
    counties = sorted(schools["区县代码"].unique())
    schools.loc[:99, "区县代码"] = [counties[(counties.index(c) + 1) % len(counties)] for c in schools.loc[:99, "区县代码"]]
    moved_bytes = io.BytesIO()
    write_xlsx(moved, moved_bytes)

    with tempfile.TemporaryDirectory() as tmp:
        pg = None
        url = args.url
        if url is None:
            pg = EmbeddedPostgres(Path(tmp) / "pg").start()
            url = pg.url
        try:
            migrate(url)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE province, city, county, school, community, community_member, device_all, "
                             "app_user, registry_history, audit_log CASCADE")
            results: list[tuple[str, float]] = []
            content = path.read_bytes()
            print(f"{len(sheets['学校']):,} schools, {len(sheets['设备']):,} devices, "
                  f"{sheets['教联体']['教联体编号'].nunique():,} communities, {len(sheets['用户']):,} users; "
                  f"{len(content) / 1e6:.1f} MB")
            book = timed("read XLSX (calamine)", results, lambda: importer.read_workbook(content, path.name))
            if args.openpyxl:
                from api.registry import import_read

                timed("read XLSX (openpyxl, for comparison)", results,
                      lambda: import_read._openpyxl_tables(content))
            with psycopg.connect(url) as conn:
                report = timed("dry run (checks + counts, nothing written)", results,
                               lambda: importer.plan(conn, book, "cli:bench"))
                assert report.ok, report.errors[:5]
                print(f"  of which sheet checks (pandas) {report.seconds['check']:.1f} s, "
                      f"database {report.seconds['database']:.1f} s")
                report = timed("apply (empty registry)", results, lambda: importer.apply(conn, book, "cli:bench"))
                conn.commit()
                assert report.ok and report.changed > 0, report.errors[:5]
                print(f"  of which sheet checks {report.seconds['check']:.1f} s, database {report.seconds['database']:.1f} s "
                      f"(with {report.changes['users']['created']} Argon2 password hashes)\n  {report.changes}")
                again = timed("apply again (same file)", results, lambda: importer.apply(conn, book, "cli:bench"))
                conn.commit()
                assert again.ok and again.changed == 0, again.changes
                moves = importer.read_workbook(moved_bytes.getvalue(), "moved.xlsx")
                report = timed("apply with moves (1% devices, 100 schools)", results,
                               lambda: importer.apply(conn, moves, "cli:bench"))
                conn.commit()
                assert report.ok, report.errors[:5]
                print(f"  devices {report.changes['devices']}, schools {report.changes['schools']}")
            timed("baseline: bare COPY of the same rows", results, lambda: baseline_copy(url, sheets))
            read = results[0][1]
            applied = dict(results)["apply (empty registry)"]
            print(f"province import, read + apply: {read + applied:.1f} s (target ≤ 60 s)")
        finally:
            if pg is not None:
                pg.stop("immediate")


if __name__ == "__main__":
    main()
