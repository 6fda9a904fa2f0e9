"""The customer's LCD says each line rung up (and one removed) with the running total in its own
language: a bilingual name's Chinese words on a Chinese LCD, its Latin words on an English one.
Before, the LCD repeated the pole's padded English lines (Coca-Cola       3.50 TOTAL ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import TillBench

# (the LCD's language, after a cola is scanned, after 25.00 on department 1, after line 1 is
# removed)
CASES = [
    ("zh", "可口可乐 3.50，合计 3.50", "部门1 25.00，合计 28.50",
     "已删除 可口可乐 -3.50，合计 25.00"),
    ("en", "Coca-Cola 3.50, total 3.50", "Dept 1 25.00, total 28.50",
     "Removed Coca-Cola -3.50, total 25.00"),
]


@pytest.mark.parametrize(("language", "scanned", "keyed", "removed"), CASES)
def test_each_line_and_the_total_are_said_in_the_lcds_language(
        tmp_path: Path, examples: Path, language: str, scanned: str, keyed: str,
        removed: str) -> None:
    bench = TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": language}})
    try:
        bench.do("1 enter 1234 enter")
        seen = []
        for step in ("b 6901234567892", "25 dept1", "1 void"):
            bench.do(step)
            frame = bench.terminal.displays.frame
            assert frame is not None
            seen.append(frame.prompt)
        assert seen == [scanned, keyed, removed]
    finally:
        bench.close()
