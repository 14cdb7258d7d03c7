"""The pages that draw a bar draw the one the API serves from the target table, and none when none is set
(no browser): 目标调度's time left, the communities' target tiles, the equity page's bars and verdicts."""

import sys

import pytest

from dashboard import equity_figures
from dashboard.app import create_app
from dashboard.export import _targets_rows


@pytest.fixture(scope="module")
def pages():
    """The page modules as Dash imports them (pages.<name>), once the app has registered them."""
    if "pages.targets" not in sys.modules:
        create_app()
    return {name: sys.modules[f"pages.{name}"] for name in ("targets", "communities", "equity")}


def _progress(days_left: int, overdue: bool) -> dict:
    target = {"id": 7, "figure": "community_coverage", "comparator": ">=", "value": 0.8, "deadline": "2025-12-31",
              "note": None, "set_on": {"level": "province", "code": "420000", "name": "湖北省"}}
    child = {"level": "city", "code": "421300", "name": "随州市", "rank": 1, "value": 0.6,
             "target": {"status": "missed", "gap": 0.2}}
    return {"target": target, "scope_value": 0.7, "days_left": days_left, "overdue": overdue,
            "scope_status": {"status": "missed" if overdue else "behind", "gap": 0.1}, "children": [child]}


def test_the_targets_page_says_how_long_is_left(pages):
    note = pages["targets"].deadline_note
    assert note(_progress(12, False), "zh") == "剩余 12 天" and note(_progress(0, False), "en") == "Due today"
    assert note(_progress(-334, True), "zh") == "已逾期 334 天"
    assert note(_progress(-30, False), "zh") == "已截止 30 天"  # passed, and met: not overdue
    panel = pages["targets"].target_panel(_progress(-334, True), {"key": "community_coverage", "zh": "入体率",
                                                                  "unit": "ratio"}, "/api/v1/scopes/province/420000",
                                          "zh")
    assert "已逾期 334 天" in str(panel)
    [row] = _targets_rows([_progress(-334, True)])
    assert (row["days_left"], row["rank"], row["status"], row["gap"]) == (-334, 1, "missed", 0.2)


def test_the_communities_page_shows_the_targets_it_is_given_and_says_when_there_is_none(pages):
    tiles = pages["communities"].target_tiles
    goal = {"value": 0.8, "comparator": ">=", "deadline": "2025-12-31", "status": "missed", "gap": 0.05}
    [tile] = tiles([goal], "zh")
    assert "2025-12-31" in str(tile) and "80.0%" in str(tile) and "tile-missed" in tile.className
    [none] = tiles([], "zh")
    assert "未设定目标" in str(none) and "80" not in str(none)


def _group(bar: float | None, passes: bool | None, schools: int = 12) -> dict:
    target = None if bar is None else {"comparator": "<=", "value": bar, "status": "met" if passes else "behind"}
    return {"group": "primary", "schools": schools, "students": 3000, "composite_cv": 0.3, "judged": schools >= 5,
            "bar": bar, "target": target, "passes": passes,
            "indicators": [{"indicator": "online_rate", "schools": schools, "mean": 0.9, "cv": 0.3}]}


def test_the_equity_page_draws_the_bar_it_is_given_and_none_when_none_is_set(pages):
    counties = [{"level": "county", "code": "1", "name": "甲", "groups": [_group(0.25, False)]}]
    fig = equity_figures.composite_figure(counties, "综合", "zh")
    assert [s.y0 for s in fig.layout.shapes] == [0.25]  # the target's value, not the national 0.50
    unset = [{"level": "county", "code": "1", "name": "甲", "groups": [_group(None, None)]}]
    fig = equity_figures.composite_figure(unset, "综合", "zh")
    assert fig.layout.shapes == () and "未设定目标" in next(a.text for a in fig.layout.annotations
                                                           if a.name == "no_target")
    assert equity_figures.verdict(_group(None, None)) == "no_target"
    assert equity_figures.verdict(_group(None, None, schools=2)) == "too_few"
    row = pages["equity"].county_row(unset[0], unset[0]["groups"][0], {"counties": unset}, "zh")
    assert row[5].children == "未设定目标" and row[5].className == "light light-no_data"
