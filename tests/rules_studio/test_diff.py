"""The readable diff, per scope."""

from __future__ import annotations

from terminal.hq.rules_studio.diff import diff, render
from terminal.hq.rules_studio.source import parse
from tests.rules_studio.edits import BASE, edited


def texts(candidate: str, in_force: str = BASE) -> list[str]:
    return [change.text() for change in diff(parse(in_force), parse(candidate))]


def test_no_change_is_an_empty_diff() -> None:
    assert texts(BASE) == []
    assert render({"chain": []}) == "== chain: no change"


def test_changed_added_and_removed_keys_read_by_name() -> None:
    candidate = edited(("multiplier = 1.5\nweekdays", "multiplier = 3.0\nweekdays"),
                       ("per_sale = 5000", "# no cap per sale"),
                       ("earn_multiplier = 1.5", "earn_multiplier = 1.6"))
    candidate += '\n[[earn.category]]\ncategory = "drinks"\nmultiplier = 1.2\n'
    assert texts(candidate) == [
        '+ earn.category[drinks].category = "drinks"',
        "+ earn.category[drinks].multiplier = 1.2",
        "~ earn.promotion[Wednesday member day].multiplier: 1.5 -> 3.0",
        "~ tiers.level[gold].earn_multiplier: 1.5 -> 1.6",
        "- earn.caps.per_sale (was 5000)",
    ]


def test_moving_a_table_in_the_file_is_no_change() -> None:
    fresh = '[[earn.category]]\ncategory = "fresh"\nmultiplier = 2.0\n\n'
    moved = BASE.replace(fresh, "") + "\n" + fresh
    assert moved != BASE and texts(moved) == []


def test_times_and_lists_read_as_written() -> None:
    candidate = edited(("to = 2026-10-08T00:00:00+08:00", "to = 2026-10-09T00:00:00+08:00"),
                       ('weekdays = ["wed"]', 'weekdays = ["wed", "sat"]'))
    assert texts(candidate) == [
        "~ earn.promotion[National Day double points].to: 2026-10-08T00:00:00+08:00 -> "
        "2026-10-09T00:00:00+08:00",
        '~ earn.promotion[Wednesday member day].weekdays: ["wed"] -> ["wed", "sat"]',
    ]


def test_each_scope_under_its_name() -> None:
    s001 = diff(parse(BASE), parse(edited(("min_points = 500", "min_points = 300"))))
    assert render({"chain": [], "store/S001": s001}) == (
        "== chain: no change\n"
        "== store/S001: 1 change(s)\n"
        "  ~ redeem.min_points: 500 -> 300")
