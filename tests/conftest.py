"""Shared test set-up: where the project's contracts live, and a persistent escpos cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.shared import EXAMPLES, ROOT

# Property tests: no per-example deadline anywhere (this machine is shared and CI's is loaded;
# speed lives in bench/), and in CI (CI set) the same examples every run, so a red CI is a
# defect in the change, never a new random draw; local runs keep exploring new examples.
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")

# python-escpos parses a large YAML file at import unless it finds its pickle here.
os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(ROOT / "var" / "escpos-cache"))
Path(os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"]).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def examples() -> Path:
    if not EXAMPLES.is_dir():
        pytest.fail(f"the shared contracts are missing: {EXAMPLES} (set POSTERM_SHARED)")
    return EXAMPLES


# The inner loop is `bash scripts/test.sh -m "not slow"`; CI runs everything. Slow: whatever starts
# a Mosquitto broker or PostgreSQL (through the fixtures below, however indirectly, or as the
# "postgresql" case of a test run on both databases), and the field and fault suites (whole
# daemons, images, kill -9). Modules that start Chromium, or a broker of their own, say so.
SLOW_FIXTURES = frozenset({"broker", "postgres"})
SLOW_PARAMETERS = frozenset({"postgresql"})
SLOW_SUITES = frozenset({"faults", "field"})


def _slow(item: pytest.Item) -> bool:
    tests = ROOT / "tests"
    suite = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
    callspec = getattr(item, "callspec", None)
    parameters = callspec.params.values() if callspec is not None else ()
    return (suite in SLOW_SUITES or bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
            or any(isinstance(p, str) and p in SLOW_PARAMETERS for p in parameters))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _slow(item):
            item.add_marker(pytest.mark.slow)
