"""`posterm replay` with device steps: ../shared/examples/scenario-devices.json as its note says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PAN = b"4111111111111111"


def test_scenario_devices_behaves_as_expected(examples: Path, tmp_path: Path) -> None:
    db = tmp_path / "term.db"
    done = subprocess.run(
        [sys.executable, "-m", "terminal.daemon.cli", "replay",
         str(examples / "scenario-devices.json"), "--rules", str(examples / "rules.toml"),
         "--db", str(db)],
        capture_output=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    steps = {d["step"]: d for d in out["devices"]}
    errors = {e["step"]: e["why"] for e in out["errors"]}
    # Step 2: the member's balance, 100 registration points, is on the pole display.
    assert "100" in " ".join(steps[2]["display"]) and 2 not in errors
    # Step 3: a payment card: refused on the display, its number nowhere.
    assert "payment card" in errors[3] and "Payment card" in " ".join(steps[3]["display"])
    for path in tmp_path.iterdir():  # term.db, term.db-wal, term.db-shm
        assert PAN not in path.read_bytes(), path
    assert PAN not in done.stderr and PAN not in done.stdout
    # Step 4: a partial swipe is a read error asking to swipe again; no number guessed.
    assert "swipe again" in errors[4] and "swipe again" in " ".join(steps[4]["display"])
    assert out["members"][0]["balance"] == 100
    # Step 5: no catalogue in a replay: the product is unknown, said on the display.
    assert "Unknown product 6901234567892" in errors[5]
    assert steps[5]["display"][0] == "Unknown product"
    assert all(d["receipts"] == [] for d in out["devices"])


def test_device_steps_print_receipts(examples: Path, tmp_path: Path) -> None:
    scenario = {"terminal": {"store": "S001", "terminal": "T01"}, "steps": [
        {"at": "2026-03-05T18:30:00+08:00"},
        {"register": {"card": "8000123456", "name": "王小明"}},
        {"swipe": ";8000123456=3012101?\n"},
        {"keys": ["KEY_KP2", "KEY_KP5", "KEY_F11", "KEY_F3"]},
    ]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario))
    done = subprocess.run(
        [sys.executable, "-m", "terminal.daemon.cli", "replay", str(path), "--rules",
         str(examples / "rules.toml"), "--db", str(tmp_path / "t.db")],
        capture_output=True, timeout=120,
    )
    out = json.loads(done.stdout)
    (sale,) = out["devices"][1]["receipts"]
    assert "S001-T01-0001" in sale and "+25" in sale  # 25 yuan, department 1 has no category
    assert out["devices"][1]["display"] == ["CHANGE          0.00", "Points 125"]
    assert out["members"][0]["balance"] == 125
