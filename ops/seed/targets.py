"""The policy targets the seeded province works to: rows of the target table, set on the province.

They are ordinary targets (api/targets): every page that draws a bar reads them from the
table, and a manager edits or withdraws them like any other. Sources (shared/DOMAIN.md):
the share of compulsory-education schools inside a 教联体, ≥ 70 % by the end of 2024 and
≥ 80 % by the end of 2025 (Hubei); the composite 差异系数 of the 优质均衡 standard
(教督〔2017〕6号), ≤ 0.50 for primary and ≤ 0.45 for junior schools, which names no year.
The sources give no number for availability, 开课率 or teaching-point reach (教科技〔2020〕3号
asks for routine use without indicators): those bars, and the deadlines the sources leave
open, are the demo's choice, set by the school year seeded.
"""

from datetime import date

SET_BY = "seed"


def policy_targets(province: str, school_year: int) -> list[tuple]:
    """The province's targets as target rows (scope_level, scope_code, figure, comparator, value, deadline,
    note, set_by); the open deadlines fall at the end of the school year (or, for equity, the calendar
    year after it)."""
    year_end = date(school_year + 1, 6, 30)
    equity_by = date(school_year + 1, 12, 31)
    targets = [
        ("community_coverage", ">=", 0.70, date(2024, 12, 31), "义务教育学校纳入教联体比例 2024 年底达到 70%"),
        ("community_coverage", ">=", 0.80, date(2025, 12, 31), "义务教育学校纳入教联体比例 2025 年底达到 80%"),
        ("equity_cv_primary", "<=", 0.50, equity_by, "优质均衡:小学综合差异系数不高于 0.50"),
        ("equity_cv_junior", "<=", 0.45, equity_by, "优质均衡:初中综合差异系数不高于 0.45"),
        ("online_rate", ">=", 0.95, year_end, "设备在线率"),
        ("lesson_opening_rate", ">=", 0.95, year_end, "三个课堂开课率"),
        ("teaching_point_reach", ">=", 1.0, year_end, "每个教学点每周至少接收一节同步课堂"),
    ]
    return [("province", province, key, comparator, value, deadline, note, SET_BY)
            for key, comparator, value, deadline, note in targets]
