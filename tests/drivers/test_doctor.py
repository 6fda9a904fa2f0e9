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


def daemon_config(tmp_path: Path, **devices: dict) -> Path:
    """The daemon's own config, as provisioning writes it (all its sections)."""
    from terminal.field.provision import toml_dumps
    from tests.support.till_config import till_config_data

    key = tmp_path / "card.key"
    key.write_text("test-card-key-0123456789abcdef")
    data = till_config_data(tmp_path / "state", key, store="S042", terminal="T07",
                            devices=devices)
    data["input"] = {"wand": {"backend": "simulated", "role": "scanner"}}
    path = tmp_path / "posterm.toml"
    path.write_text(toml_dumps(data))
    return path


def test_the_daemon_s_config_is_read_and_exactly_its_devices_checked(tmp_path: Path,
                                                                    capsys) -> None:
    config = daemon_config(tmp_path, drawer={"enabled": False})
    assert run_doctor(tmp_path, "--config", str(config)) == 0
    out = capsys.readouterr().out
    assert f"the daemon's config {config}" in out
    assert "OK    wand" in out and "reader" not in out and "keypad" not in out
    assert "--    lcd      no [lcd] section: the daemon opens no LCD" in out
    assert "--    drawer   not enabled in [drawer]: the daemon opens none" in out
    assert "status page printed" in out


def test_the_provisioned_config_is_the_default(tmp_path: Path, capsys, monkeypatch) -> None:
    config = daemon_config(tmp_path, lcd={"backend": "dummy"},
                           pole={"backend": "serial", "port": str(tmp_path / "ttyNOPE")})
    monkeypatch.setattr(doctor, "PROVISIONED", config)
    assert run_doctor(tmp_path) == 1
    out = capsys.readouterr().out
    assert f"the daemon's config {config}" in out and "OK    lcd" in out
    assert f"fix: check {tmp_path / 'ttyNOPE'} exists" in out  # the configured port


def test_the_status_page_is_the_box_s_with_what_doctor_found(tmp_path: Path, capsys) -> None:
    from PIL import Image

    config = daemon_config(tmp_path, pole={"backend": "serial", "port": "/dev/ttyNOPE"})
    assert run_doctor(tmp_path, "--config", str(config)) == 1
    assert "status page printed" in capsys.readouterr().out
    page = (tmp_path / "status-page.txt").read_text(encoding="utf-8")
    assert "S042 / T07" in page and "standalone" in page
    rows = {line.split()[0]: line.split(None, 1)[1] for line in page.splitlines()
            if line.split() and line.split()[0] in ("wand", "pole", "printer")}
    assert rows["wand"].strip() == "ok" and rows["printer"].strip() == "ok"
    assert rows["pole"].strip().startswith("FAIL")
    with Image.open(tmp_path / "status-page.png") as image:
        assert image.width == 384 + 16  # drawn for the configured 58 mm printer


def test_a_device_file_with_other_sections_is_refused_by_name(tmp_path: Path, capsys) -> None:
    config = tmp_path / "devices.toml"
    config.write_text('[printer]\nbackend = "dummy"\n[paths]\nstate_dir = "/tmp"\n')
    assert run_doctor(tmp_path, "--config", str(config)) == 2
    assert "no [terminal] section" in capsys.readouterr().out
