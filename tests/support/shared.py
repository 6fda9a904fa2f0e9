"""Where the project's shared contracts live (``../shared`` beside the clone, or POSTERM_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("POSTERM_SHARED", ROOT.parent / "shared"))
EXAMPLES = SHARED / "examples"
