"""Provisioning from the technician's file: the daemon config, credentials and their permissions,
refusals that name the key and change nothing, and the file's removal."""

from __future__ import annotations

import argparse
import os
import pwd
import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from terminal.field import provision

REPO = Path(__file__).resolve().parents[2]

OWNER = (4242, 4243) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Pki:
    """A throw-away CA that signs what the terminal asks for."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("chain CA"))
            .issuer_name(_name("chain CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, csr: x509.CertificateSigningRequest) -> str:
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def hq_public_pem() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.PEM, spki).decode()


def good_file(pki: Pki, hq_public_pem: str, extra_broker: str = "") -> str:
    return f"""
[terminal]
store = "S001"
terminal_id = "T01"

[broker]
host = "mqtt.chain.example"
port = 8883
ca = '''{pki.pem()}'''
{extra_broker}

[hq]
root_public_key = '''{hq_public_pem}'''

[udev]
printer = "04B8:0202"
pole_display = "067b:2303"

[printer]
backend = "usb"
paper_mm = 58
read_status = true

[pole]
backend = "serial"
port = "/dev/posterm/pole-display"
command_set = "cd5220"

[input.keypad]
backend = "evdev"
role = "keypad"
match = "/dev/input/by-path/platform-xhci-hcd.0-usb-0:1:1.0-event-kbd"
keymap = {{ KEY_F1 = "member" }}
"""


def on_boot(tmp_path: Path, text: str) -> Path:
    """The provisioning file as the technician leaves it on the card's boot partition."""
    boot = tmp_path / "boot"
    boot.mkdir()
    source = boot / "posterm-provision.toml"
    source.write_text(text)
    return source


def run_cli(tmp_path: Path, source: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    provision.configure(parser)
    args = parser.parse_args(
        [
            "--from",
            str(source),
            "--state-dir",
            str(tmp_path / "state"),
            "--error-file",
            str(source.with_name("posterm-provision-error.txt")),
            "--udev-rules",
            str(tmp_path / "90-posterm-devices.rules"),
            # As root the default is the box's /var/lib/posterm-trust: keep the test's own.
            *(["--trust-dir", str(tmp_path / "trust")] if os.geteuid() == 0 else []),
            *extra,
        ]
    )
    args.owner = None  # the files stay the test's; ownership is tested through provision()
    return provision.run(args)


def test_good_file_writes_config_credentials_and_removes_the_file(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    source = on_boot(tmp_path, good_file(pki, hq_public_pem))
    boot = source.parent

    assert run_cli(tmp_path, source) == 0

    state = tmp_path / "state"
    config = tomllib.loads((state / "posterm.toml").read_text())
    creds = state / "credentials"
    assert config["terminal"] == {"store": "S001", "terminal_id": "T01"}
    assert config["broker"] == {
        "host": "mqtt.chain.example",
        "port": 8883,
        "ca_file": str(creds / "broker-ca.pem"),
        "cert_file": str(creds / "terminal.crt"),
        "key_file": str(creds / "terminal.key"),
    }
    assert config["hq"] == {"root_public_key_file": str(creds / "hq-root.pub")}
    # Device sections pass through unchanged, arrays of tables included.
    assert config["printer"] == {"backend": "usb", "paper_mm": 58, "read_status": True}
    assert config["input"] == {"keypad": {
        "backend": "evdev", "role": "keypad", "keymap": {"KEY_F1": "member"},
        "match": "/dev/input/by-path/platform-xhci-hcd.0-usb-0:1:1.0-event-kbd"}}
    assert "udev" not in config
    assert not source.exists()
    assert (creds / "hq-root.pub").read_text() == hq_public_pem
    csr = x509.load_pem_x509_csr((boot / "posterm-S001-T01.csr").read_bytes())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "S001/T01"
    key = serialization.load_pem_private_key((creds / "terminal.key").read_bytes(), None)
    assert csr.public_key() == key.public_key()
    rules = (tmp_path / "90-posterm-devices.rules").read_text()
    assert 'ATTRS{idVendor}=="04b8", ATTRS{idProduct}=="0202"' in rules
    assert 'SYMLINK+="posterm/pole-display"' in rules
    assert provision.is_provisioned(state)
    facts = provision.status_facts(state)
    assert facts["terminal"] == "T01" and facts["store"] == "S001"
    assert facts["broker"] == "mqtt.chain.example:8883"
    assert facts["certificate"].startswith("waiting")


def test_files_get_tight_modes_and_the_service_owner(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    prov = provision.parse(good_file(pki, hq_public_pem), "f.toml")
    provision.provision(prov, tmp_path, OWNER)
    expected = {
        "posterm.toml": 0o640,
        "credentials": 0o750,
        "credentials/terminal.key": 0o600,
        "credentials/broker-ca.pem": 0o640,
        "credentials/hq-root.pub": 0o640,
        "credentials/terminal.csr": 0o644,
    }
    for name, mode in expected.items():
        st = (tmp_path / name).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, *OWNER), name
    assert not list(tmp_path.rglob(".*.tmp"))


BAD = [
    ('store = "S001"', 'store = "S 001"', "[terminal] store"),
    ('store = "S001"', 'store = "S/001"', "[terminal] store"),
    ('terminal_id = "T01"', "", "[terminal] terminal_id: missing"),
    ('terminal_id = "T01"', "terminal_id = 1", "[terminal] terminal_id: must be a string"),
    ('host = "mqtt.chain.example"', 'host = "mqtt_chain!"', "[broker] host"),
    ("port = 8883", "port = 70000", "[broker] port: 70000 is not a port"),
    ("port = 8883", 'port = "8883"', "[broker] port: must be a whole number"),
    ("port = 8883", "prot = 8883", "[broker] prot: unknown key"),
    ("ca = '''-----BEGIN", "ca = '''-----BEGIN CERTIFICATE-----\nAAAA", "[broker] ca: not a PEM"),
    ("root_public_key = '''", "root_public_key = '''x", "[hq] root_public_key"),
    ('printer = "04B8:0202"', 'printer = "04b8-0202"', "[udev] printer"),
    ('printer = "04B8:0202"', 'printr = "04b8:0202"', "[udev] printr: unknown key"),
    ("[terminal]", 'mode = "x"\n[terminal]', "mode: top-level keys must be [sections]"),
    ("[printer]", "[Printer]", "[Printer]: not a valid section name"),
]


@pytest.mark.parametrize(("old", "new", "named"), BAD, ids=[b[2] for b in BAD])
def test_bad_key_is_refused_by_name_and_the_last_good_config_stays(
    tmp_path: Path, pki: Pki, hq_public_pem: str, old: str, new: str, named: str
) -> None:
    source = on_boot(tmp_path, good_file(pki, hq_public_pem))
    boot = source.parent
    assert run_cli(tmp_path, source) == 0
    state = tmp_path / "state"
    before = {p: p.read_bytes() for p in state.rglob("*") if p.is_file()}

    text = good_file(pki, hq_public_pem)
    assert old in text
    source.write_text(text.replace(old, new, 1))
    assert run_cli(tmp_path, source) == 1

    error = (boot / "posterm-provision-error.txt").read_text()
    assert named in error and str(source) in error
    assert {p: p.read_bytes() for p in state.rglob("*") if p.is_file()} == before
    assert source.exists()  # kept for the technician to correct


def test_hq_key_of_the_wrong_kind_is_refused(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(
        provision.ProvisionError, match=r"\[hq\] root_public_key: must be an Ed25519"
    ):
        provision.parse(
            good_file(
                pki,
                pki.cert.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode(),
            ),
            "f.toml",
        )


def test_signed_certificate_installs_and_the_key_stays(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    first = provision.provision(provision.parse(good_file(pki, hq_public_pem), "f"), tmp_path)
    key_before = (tmp_path / "credentials/terminal.key").read_bytes()
    assert first.csr is not None
    signed = pki.sign(x509.load_pem_x509_csr(first.csr.read_bytes()))

    text = good_file(pki, hq_public_pem, f"certificate = '''{signed}'''")
    second = provision.provision(provision.parse(text, "f"), tmp_path)

    assert second.csr is None
    assert (tmp_path / "credentials/terminal.key").read_bytes() == key_before
    assert (tmp_path / "credentials/terminal.crt").read_text() == signed
    assert not (tmp_path / "credentials/terminal.csr").exists()
    assert "CN=S001/T01" in provision.status_facts(tmp_path)["certificate"]


def test_certificate_for_another_key_is_refused(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    provision.provision(provision.parse(good_file(pki, hq_public_pem), "f"), tmp_path)
    config_before = (tmp_path / "posterm.toml").read_bytes()
    other = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name("S001/T01"))
        .sign(other, hashes.SHA256())
    )
    text = good_file(pki, hq_public_pem, f"certificate = '''{pki.sign(csr)}'''")
    with pytest.raises(provision.ProvisionError, match=r"\[broker\] certificate: does not match"):
        provision.provision(provision.parse(text, "f"), tmp_path)
    assert (tmp_path / "posterm.toml").read_bytes() == config_before
    assert not (tmp_path / "credentials/terminal.crt").exists()


def test_private_key_without_certificate_is_refused(pki: Pki, hq_public_pem: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    text = good_file(pki, hq_public_pem, f"private_key = '''{key.decode()}'''")
    with pytest.raises(provision.ProvisionError, match=r"\[broker\] private_key: given without"):
        provision.parse(text, "f")


def test_not_provisioned_without_config(tmp_path: Path) -> None:
    assert not provision.is_provisioned(tmp_path)
    assert provision.status_facts(tmp_path) == {}
    (tmp_path / "posterm.toml").write_text("not toml [")
    assert not provision.is_provisioned(tmp_path)


def test_a_file_without_input_sections_gets_the_tills_inputs_and_the_daemon_starts_on_it(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    """The template and the example file name no keypad: the box got a config the daemon refused
    ("no [input.NAME] section: the till needs a keypad"). Provisioning gives it the keypad, card
    reader and scanner, found by their evdev names as the drivers match them."""
    from terminal.daemon.config import load_config
    from terminal.drivers.input import SeenDevice, device_matches

    text = good_file(pki, hq_public_pem)
    text = text[:text.index("[input.keypad]")]
    source = on_boot(tmp_path, text)
    assert run_cli(tmp_path, source) == 0
    config = load_config(tmp_path / "state" / "posterm.toml")
    roles = {name: (c.backend, c.role) for name, c in config.inputs.items()}
    assert roles == {"keypad": ("evdev", "keypad"), "card_reader": ("evdev", "msr"),
                     "scanner": ("evdev", "scanner")}

    def device(name: str) -> SeenDevice:
        return SeenDevice("/dev/input/event3", name, 0x1234, 0x5678, None)

    def role_of(name: str) -> list[str]:
        return [c.role for c in config.inputs.values() if device_matches(c.match, device(name))]

    assert role_of("Genius Numeric Keypad") == ["keypad"]
    assert role_of("MagTek USB Swipe Reader") == ["msr"]
    assert role_of("Honeywell Imaging 1900 Barcode Scanner") == ["scanner"]
    assert role_of("Logitech USB Keyboard") == []  # a full keyboard is no till device


def test_device_sections_the_daemon_would_refuse_are_refused_at_provisioning(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    for bad, named in (('[pole_display]\nport = "/dev/ttyUSB0"\n',
                        "unknown section [pole_display]"),
                       ('[printer]\nbackend = "simulated"\n', "backend"),
                       ('[input.keypad]\nrole = "keypad"\nmatch = 5\n', "match")):
        text = good_file(pki, hq_public_pem)
        text = text[:text.index("[printer]")] + bad
        source = tmp_path / "boot" / "posterm-provision.toml"
        source.parent.mkdir(exist_ok=True)
        source.write_text(text)
        assert run_cli(tmp_path, source) == 1
        error = source.with_name("posterm-provision-error.txt").read_text()
        assert named in error, error
        assert not (tmp_path / "state" / "posterm.toml").exists()


def test_the_chain_card_key_is_installed_for_the_daemon_alone(
    tmp_path: Path, pki: Pki, hq_public_pem: str
) -> None:
    text = good_file(pki, hq_public_pem).replace(
        "[udev]", "card_key = 'c0ffee00c0ffee00c0ffee00c0ffee00'\n\n[udev]", 1)
    assert run_cli(tmp_path, on_boot(tmp_path, text)) == 0
    key = tmp_path / "state" / "credentials" / "card.key"
    assert key.read_bytes() == b"c0ffee00c0ffee00c0ffee00c0ffee00"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    short = good_file(pki, hq_public_pem).replace("[udev]", "card_key = 'short'\n\n[udev]", 1)
    source = tmp_path / "again" / "posterm-provision.toml"
    source.parent.mkdir()
    source.write_text(short)
    assert run_cli(tmp_path / "again", source) == 1
    assert "[hq] card_key" in source.with_name("posterm-provision-error.txt").read_text()


def test_the_example_files_device_sections_are_what_the_daemon_reads() -> None:
    """image/posterm-provision.example.toml, on every card's boot partition: its device sections
    pass the daemon's parser and give the till its keypad (they once named [pole_display])."""
    example = Path(__file__).parents[2] / "image" / "posterm-provision.example.toml"
    data = tomllib.loads(example.read_text())
    devices = {name: table for name, table in data.items() if name not in provision.KNOWN}
    provision._check_devices(devices, str(example))
    assert {t["role"] for t in devices["input"].values()} == {"keypad", "msr", "scanner"}
    assert "card_key" in data["hq"]


def test_provisioning_loads_nothing_the_drivers_or_enrollment_run_on(
        tmp_path: Path, pki: Pki, hq_public_pem: str) -> None:
    """posterm-provision.service holds the first boot up, and under emulation (and on a Pi's
    card) every module imported costs: a file with device sections is checked by the daemon's
    own parser without evdev, Pillow, python-escpos or asyncio, and one without [enroll] loads
    no MQTT stack. Run as the service runs it (python -I -m terminal.provision)."""
    source = on_boot(tmp_path, good_file(pki, hq_public_pem))
    code = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('terminal.provision', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = {'evdev', 'PIL', 'escpos', 'usb', 'serial', 'paho', 'asyncio', 'ssl', 'luma'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, "--from", str(source), "--state-dir",
         str(tmp_path / "state"), "--udev-rules", str(tmp_path / "90.rules"),
         "--owner", pwd.getpwuid(os.getuid()).pw_name,
         *(["--trust-dir", str(tmp_path / "trust")] if os.geteuid() == 0 else [])],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "provisioned S001/T01" in result.stderr
    assert result.stdout.strip() == "[]"


def test_the_config_sections_name_the_layouts_the_input_driver_has() -> None:
    from terminal.drivers.layouts import LAYOUTS
    from terminal.drivers.settings import LAYOUT_NAMES

    assert tuple(LAYOUTS) == LAYOUT_NAMES
