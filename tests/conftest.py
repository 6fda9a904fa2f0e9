"""Shared test set-up: where the project's contracts live, and a persistent escpos cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.shared import EXAMPLES, ROOT

# python-escpos parses a large YAML file at import unless it finds its pickle here.
os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(ROOT / "var" / "escpos-cache"))
Path(os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"]).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def examples() -> Path:
    if not EXAMPLES.is_dir():
        pytest.fail(f"the shared contracts are missing: {EXAMPLES} (set POSTERM_SHARED)")
    return EXAMPLES
