"""The engine's own validation, its errors placed on the key's line."""

from __future__ import annotations

import pytest

from terminal.hq.rules_studio.source import engine_key, key_lines, parse
from terminal.hq.rules_studio.validate import validate
from tests.rules_studio.edits import BASE, edited


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_example_rules_are_valid() -> None:
    result = validate(BASE)
    assert result.ok and result.problems == ()
    assert result.rules is not None and result.rules.name == "Sunrise Mart Rewards"


@pytest.mark.parametrize(("old", "new", "key", "needle"), [
    ('points_per_yuan = 1 ', 'points_per_yuan = "lots" ', "earn.points_per_yuan",
     'points_per_yuan = "lots"'),
    ('rounding = "floor"', 'rounding = "down"', "earn.rounding", 'rounding = "down"'),
    ("multiplier = 1.5\nweekdays", 'multiplier = 1.5\nweekdays = ["wednesday"]\n#',
     "earn.promotion[1].weekdays", 'weekdays = ["wednesday"]'),
    ("qualify_spend_fen = 500000", "qualify_spend_fen = -5", "tiers.level[2].qualify_spend_fen",
     "qualify_spend_fen = -5"),
    # the error is the step's, found by the rate: it names the step's key and line
    ("points_per_yuan = 100 ", "points_per_yuan = 300 ", "redeem.step_points",
     "step_points = 100"),
])
def test_an_error_names_the_key_and_its_line(old: str, new: str, key: str, needle: str) -> None:
    text = edited((old, new))
    result = validate(text)
    assert not result.ok and result.rules is None
    (problem,) = result.problems
    assert problem.key == key
    assert problem.line == line_of(text, needle)
    assert key in problem.message and f"line {problem.line}: " in str(problem)


def test_a_missing_key_is_placed_on_its_table() -> None:
    text = edited(('basis = "paid"  ', "# basis removed  "))
    (problem,) = validate(text).problems
    assert problem.key == "earn.basis" and problem.message == "earn.basis: missing"
    assert problem.line == line_of(text, "[earn]")


def test_text_that_is_not_toml_says_its_line() -> None:
    text = edited(("min_points = 500", "min_points = = 500"))
    (problem,) = validate(text).problems
    assert problem.line == line_of(text, "min_points = = 500")
    assert problem.message.startswith("not valid TOML")


@pytest.mark.parametrize("hostile", ["", "\x00", "[program]\nname = 1", "[[earn]]\n", "a" * 5000,
                                     "[program\n"])
def test_hostile_text_is_refused_with_a_reason(hostile: str) -> None:
    result = validate(hostile)
    assert not result.ok and result.problems[0].message


def test_keys_of_arrays_of_tables_are_indexed_like_the_engine() -> None:
    lines = key_lines(BASE)
    wednesday = line_of(BASE, 'name = "Wednesday member day"')
    assert lines["earn.promotion[1].name"] == wednesday
    assert lines["earn.promotion[1].multiplier"] == wednesday + 1
    assert lines["earn.promotion[1]"] == wednesday - 1
    assert lines["tiers.level[3].name"] == line_of(BASE, 'name = "diamond"')
    mapping = parse(BASE)
    assert engine_key("tiers.level[gold].earn_multiplier", mapping) == \
        "tiers.level[2].earn_multiplier"
    assert engine_key("earn.category[fresh].multiplier", mapping) == \
        "earn.category[0].multiplier"
    assert engine_key("earn.promotion[nothing].to", mapping) == "earn.promotion[nothing].to"
