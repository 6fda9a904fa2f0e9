from __future__ import annotations

import argparse
from pathlib import Path

from terminal.field import doctor


def run_doctor(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    doctor.configure(parser)
    return doctor.run(parser.parse_args([*argv, "--out", str(tmp_path)]))


def test_simulated_run_reports_every_device(tmp_path: Path, capsys) -> None:
    assert run_doctor(tmp_path, "--simulate") == 0
    out = capsys.readouterr().out
    for device in ("reader", "keypad", "printer", "drawer", "pole", "lcd"):
        assert f"OK    {device}" in out
    assert "FAIL" not in out and (tmp_path / "test-page.png").exists()


def test_missing_hardware_gives_fixes(tmp_path: Path, capsys) -> None:
    config = tmp_path / "posterm.toml"
    config.write_text('[input.reader]\nbackend = "evdev"\nrole = "msr"\nmatch = "0801:0002"\n'
                      '[pole]\nbackend = "serial"\nport = "/dev/ttyNOPE"\n')
    assert run_doctor(tmp_path, "--config", str(config)) == 1
    out = capsys.readouterr().out
    assert "FAIL  reader   msr '0801:0002' not found" in out
    assert "FAIL  pole" in out and "fix: check /dev/ttyNOPE exists" in out


def test_bad_config_key_is_named(tmp_path: Path, capsys) -> None:
    config = tmp_path / "posterm.toml"
    config.write_text('[drawer]\npuls_ms = 100\n')
    assert run_doctor(tmp_path, "--config", str(config)) == 2
    assert "[drawer]: unknown key 'puls_ms' (did you mean 'pulse_ms'?)" in capsys.readouterr().out
