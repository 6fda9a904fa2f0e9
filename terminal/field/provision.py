"""`posterm provision`: turn the technician's plain file into the daemon's config and credentials.

The file (``posterm-provision.toml`` on the boot partition, editable on any laptop)::

    [terminal]
    store = "S001"                 # letters, digits, "-" and "_": they become MQTT topic levels
    terminal_id = "T01"

    [broker]
    host = "mqtt.chain.example"
    port = 8883                    # optional, 8883 by default
    ca = '''-----BEGIN CERTIFICATE----- ...'''          # the broker's CA (PEM)
    certificate = '''-----BEGIN CERTIFICATE----- ...''' # optional: HQ-issued for this terminal
    private_key = '''-----BEGIN PRIVATE KEY----- ...''' # optional, only with certificate

    [hq]
    root_public_key = '''-----BEGIN PUBLIC KEY----- ...''' # Ed25519, PEM or base64 of the raw key

    [enroll]                       # optional: enrollment in one visit (instead of certificate)
    code = "ABCD-EFGH-JKLM"        # `posterm-hq enroll issue S001/T01` printed it
    claim_certificate = '''...'''   # the shared claim identity (HQ's template carries both)
    claim_private_key = '''...'''

    [udev]                         # optional: stable names for the devices, "vendor:product"
    printer = "04b8:0202"
    pole_display = "067b:2303"

    [printer]                      # any other table is a device section, copied through as it is
    ...

With ``[enroll]`` the terminal makes its own key and request, redeems the code at HQ over the
broker (terminal.field.enroll) and installs the certificate HQ answers with: nothing is carried
back and forth. A refused or unanswered code writes no config; the reason goes to the error file,
``posterm provision --status`` and the pole display, and the file stays for a new code.

Without a certificate or ``[enroll]`` the terminal makes its own key (ECDSA P-256, kept across
re-provisioning) and a certificate signing request with CN "{store}/{terminal_id}" (the broker
ACL's identity), left beside the provisioning file for the technician to take to HQ. Putting
the certificate HQ returns into the file (or running ``posterm provision --from``) installs it.

Everything is validated before anything is written; a bad file is refused with a message naming
the key and the last good config stays. The daemon config lands in ``{state_dir}/posterm.toml``
(``/var/lib/posterm/posterm.toml``) with sections ``[terminal] store, terminal_id``, ``[broker]
host, port, ca_file, cert_file, key_file``, ``[hq] root_public_key_file`` and the device
sections; the credentials in ``{state_dir}/credentials/``. Run as root, it also writes root's
own copy of HQ's root key and CA chain (``--trust-dir``, ``/var/lib/posterm-trust``, root:root,
terminal.field.anchors): the root installers of releases and OS bundles trust only that copy, never
the daemon's.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import os
import pwd
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from terminal import __version__
from terminal.core.atomic import write_atomic
from terminal.core.subcommands import run_alone
from terminal.field import anchors, enroll
from terminal.protocol.enrollment import EnrollRequest

BOOT_FILE = Path("/boot/firmware/posterm-provision.toml")
STATE_DIR = Path("/var/lib/posterm")
CONFIG_NAME = "posterm.toml"
CREDENTIALS = "credentials"
SERVICE_USER = "posterm"

# name -> (mode, what it holds); the private key is for the posterm user's eyes only.
FILES = {
    "terminal.key": 0o600,
    "terminal.csr": 0o644,
    "terminal.crt": 0o640,
    "broker-ca.pem": 0o640,
    "hq-root.pub": 0o640,
    "claim.crt": 0o640,
    "claim.key": 0o600,
    "card.key": 0o600,
}
KNOWN = {
    "terminal": {"store", "terminal_id"},
    "broker": {"host", "port", "ca", "certificate", "private_key"},
    "hq": {"root_public_key", "card_key"},
    "udev": {"printer", "pole_display"},
    "enroll": {"code", "claim_certificate", "claim_private_key"},
}
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){LABEL}(\.{LABEL})*")
SECTION = re.compile(r"[a-z][a-z0-9_]*")
USB_ID = re.compile(r"([0-9a-f]{4}):([0-9a-f]{4})")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{6,38}[A-Za-z0-9]")


class ProvisionError(ValueError):
    """A provisioning file or state that is refused; the message names the file and the key."""


@dataclass(frozen=True)
class Enrollment:
    """The ``[enroll]`` section: the one-time code and the shared claim identity (PEM)."""

    code: str
    claim_certificate: bytes
    claim_private_key: bytes


@dataclass(frozen=True)
class Provisioning:
    """A validated provisioning file."""

    store: str
    terminal_id: str
    broker_host: str
    broker_port: int
    broker_ca: bytes
    hq_root_public_key: bytes
    certificate: x509.Certificate | None
    private_key: ec.EllipticCurvePrivateKey | None
    usb_ids: dict[str, tuple[str, str]]
    devices: dict[str, Any]
    enrollment: Enrollment | None = None
    card_key: bytes | None = None  # the chain's card key (HQ's template carries it)

    @property
    def identity(self) -> str:
        """The certificate CN and the broker username: "{store}/{terminal_id}"."""
        return f"{self.store}/{self.terminal_id}"


def parse(text: str, source: str) -> Provisioning:
    """Validate a provisioning file's text strictly; ``source`` names it in the messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionError(f"{source}: not valid TOML: {exc}") from None
    for name, value in data.items():
        if not isinstance(value, dict):
            raise ProvisionError(f"{source}: {name}: top-level keys must be [sections]")
        if name not in KNOWN and not SECTION.fullmatch(name):
            raise ProvisionError(f"{source}: [{name}]: not a valid section name")
    for name, keys in KNOWN.items():
        for key in data.get(name, {}):
            if key not in keys:
                raise ProvisionError(
                    f"{source}: [{name}] {key}: unknown key (known: {', '.join(sorted(keys))})"
                )
    fields = _Fields(data, source)
    certificate = fields.optional("broker", "certificate", _certificate)
    private_key = fields.optional("broker", "private_key", _private_key)
    if private_key is not None and certificate is None:
        raise ProvisionError(f"{source}: [broker] private_key: given without certificate")
    if (
        private_key is not None
        and certificate is not None
        and not _same_key(certificate, private_key)
    ):
        raise ProvisionError(f"{source}: [broker] private_key: does not match the certificate")
    enrollment = None
    if "enroll" in data:
        if certificate is not None:
            raise ProvisionError(f"{source}: [enroll]: give either [broker] certificate or "
                                 "[enroll], not both")
        claim = fields.required("enroll", "claim_certificate", _certificate)
        claim_key = fields.required("enroll", "claim_private_key", _private_key)
        if not _same_key(claim, claim_key):
            raise ProvisionError(f"{source}: [enroll] claim_private_key: does not match "
                                 "claim_certificate")
        enrollment = Enrollment(
            fields.required("enroll", "code", _code),
            claim.public_bytes(serialization.Encoding.PEM),
            claim_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    devices = {name: value for name, value in data.items() if name not in KNOWN}
    _check_devices(devices, source)
    return Provisioning(
        enrollment=enrollment,
        card_key=fields.optional("hq", "card_key", _card_key),
        store=fields.required("terminal", "store", _name),
        terminal_id=fields.required("terminal", "terminal_id", _name),
        broker_host=fields.required("broker", "host", _host),
        broker_port=fields.optional("broker", "port", _port) or 8883,
        broker_ca=fields.required("broker", "ca", _ca_bundle),
        hq_root_public_key=fields.required("hq", "root_public_key", _ed25519_public_pem),
        certificate=certificate,
        private_key=private_key,
        usb_ids={
            role: ids
            for role in sorted(KNOWN["udev"])
            if (ids := fields.optional("udev", role, _usb_id)) is not None
        },
        devices=devices,
    )


# What a file without any [input.NAME] section gets: the till's three input roles, found by the
# evdev device name (`posterm doctor` lists every device with its name, by-id path and the role
# it would suit; give `match` as that path, vendor:product or another name pattern to pin one).
# A device not plugged in is waited for; the till sells meanwhile (keys from the others).
DEFAULT_INPUTS: dict[str, dict[str, Any]] = {
    "keypad": {"backend": "evdev", "role": "keypad", "match": "*keypad*|*numeric*|*numpad*"},
    "card_reader": {"backend": "evdev", "role": "msr",
                    "match": "*msr*|*magnetic*|*card reader*|*swipe*|*magtek*"},
    "scanner": {"backend": "evdev", "role": "scanner",
                "match": "*scanner*|*barcode*|*honeywell*|*symbol*|*zebra*|*datalogic*"
                         "|*newland*"},
}


def with_default_inputs(devices: dict[str, Any]) -> dict[str, Any]:
    """``devices`` with :data:`DEFAULT_INPUTS` when it names no input device."""
    if devices.get("input"):
        return devices
    return {**devices, "input": {name: dict(table) for name, table in DEFAULT_INPUTS.items()}}


def _check_devices(devices: dict[str, Any], source: str) -> None:
    """The device sections as the daemon will read them (its own parser), so a mistake is
    refused here, naming the key, not by a daemon that never starts."""
    from terminal.core.configfile import ConfigError
    from terminal.daemon.config import parse_config

    try:
        parse_config({"terminal": {"store": "S", "terminal_id": "T"},
                      **with_default_inputs(devices)}, source)
    except ConfigError as exc:
        raise ProvisionError(str(exc)) from None


class _Fields:
    """Reads one key with its checker, turning the checker's complaint into a named error."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.data = data
        self.source = source

    def optional(self, section: str, key: str, check: Any) -> Any:
        value = self.data.get(section, {}).get(key)
        if value is None:
            return None
        try:
            return check(value)
        except (ValueError, TypeError) as exc:
            raise ProvisionError(f"{self.source}: [{section}] {key}: {exc}") from None

    def required(self, section: str, key: str, check: Any) -> Any:
        value = self.optional(section, key, check)
        if value is None:
            raise ProvisionError(f"{self.source}: [{section}] {key}: missing")
        return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__}")
    return value.strip()


def _name(value: Any) -> str:
    text = _text(value)
    if not NAME.fullmatch(text):
        raise ValueError(f"{text!r} must be 1-32 letters, digits, '-' or '_'")
    return text


def _code(value: Any) -> str:
    text = _text(value)
    if not CODE.fullmatch(text):
        raise ValueError(f"{text!r} is not an enrollment code (as `posterm-hq enroll issue` "
                         "prints it: ABCD-EFGH-JKLM)")
    return text


def _host(value: Any) -> str:
    text = _text(value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not HOSTNAME.fullmatch(text):
            raise ValueError(f"{text!r} is neither a host name nor an IP address") from None
    return text


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("must be a whole number")
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is not a port (1-65535)")
    return value


def _ca_bundle(value: Any) -> bytes:
    pem = _text(value).encode() + b"\n"
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ValueError("not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _certificate(value: Any) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_text(value).encode() + b"\n")
    except ValueError:
        raise ValueError("not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def _private_key(value: Any) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(_text(value).encode() + b"\n", password=None)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("must be an EC (ECDSA) key, as the terminal makes itself")
    return key


def _card_key(value: Any) -> bytes:
    text = _text(value).strip()
    if len(text) < 16 or not text.isascii() or not text.isprintable() or " " in text:
        raise ValueError("the chain's card key: 16 or more printable ASCII characters without "
                         "spaces (HQ's card key file, as `posterm-hq enroll template` copies it)")
    return text.encode("ascii")


def _ed25519_public_pem(value: Any) -> bytes:
    text = _text(value)
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode() + b"\n")
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("not an Ed25519 public key (PEM, or base64 of its 32 bytes)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("must be an Ed25519 public key")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.PEM, spki)


def _usb_id(value: Any) -> tuple[str, str]:
    text = _text(value).lower()
    match = USB_ID.fullmatch(text)
    if not match:
        raise ValueError(f'{text!r} must be a USB vendor:product such as "04b8:0202"')
    return match.group(1), match.group(2)


def _same_key(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) == key.public_key().public_bytes(serialization.Encoding.PEM, public)


# --- applying a validated file ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What provisioning did: the daemon config written, and the CSR if a certificate is due."""

    config: Path
    csr: Path | None


def provision(
    prov: Provisioning,
    state_dir: Path,
    owner: tuple[int, int] | None = None,
    udev_rules: Path | None = None,
    trust_dir: Path | None = None,
) -> Outcome:
    """Write credentials and the daemon config for ``prov``; the config's rename commits it.

    ``owner`` (uid, gid) is given to every file written (the posterm user when run as root).
    ``trust_dir`` gets root's own copy of HQ's root key and CA chain (terminal.field.anchors),
    which the root installers trust instead of the daemon's; written before the config.
    """
    credentials = state_dir / CREDENTIALS
    credentials.mkdir(parents=True, exist_ok=True)
    credentials.chmod(0o750)  # whatever the umask (the unit's is 0077)
    _own(credentials, owner)
    existing = _load_key(credentials / "terminal.key")
    key = prov.private_key or existing
    if (
        prov.certificate is not None
        and prov.private_key is None
        and (key is None or not _same_key(prov.certificate, key))
    ):
        raise ProvisionError(
            "[broker] certificate: does not match this terminal's key; HQ must sign the "
            f"request in {credentials / 'terminal.csr'}, or give private_key with it"
        )
    key = key or ec.generate_private_key(ec.SECP256R1())
    writes = {
        "broker-ca.pem": prov.broker_ca,
        "hq-root.pub": prov.hq_root_public_key,
        "terminal.key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    if prov.card_key is not None:
        writes["card.key"] = prov.card_key
    csr_path = None
    if prov.certificate is None:
        writes["terminal.csr"] = _csr(key, prov).public_bytes(serialization.Encoding.PEM)
        csr_path = credentials / "terminal.csr"
    else:
        writes["terminal.crt"] = prov.certificate.public_bytes(serialization.Encoding.PEM)
    for name, content in writes.items():
        write_atomic(credentials / name, content, FILES[name], owner)
    if prov.certificate is not None:
        (credentials / "terminal.csr").unlink(missing_ok=True)
    if udev_rules is not None and prov.usb_ids:
        write_atomic(udev_rules, render_udev_rules(prov.usb_ids).encode(), 0o644, None)
    if trust_dir is not None:
        try:
            anchors.write(trust_dir, prov.hq_root_public_key, prov.broker_ca)
        except anchors.AnchorError as exc:
            raise ProvisionError(str(exc)) from None
    config = state_dir / CONFIG_NAME
    write_atomic(config, daemon_config(prov, credentials).encode(), 0o640, owner)
    # The daemon prints its status page once at its next start, so the technician sees it work.
    write_atomic(state_dir / STATUS_PAGE_MARKER, b"", 0o640, owner)
    return Outcome(config, csr_path)


STATUS_PAGE_MARKER = "print-status-page"


def enroll_provisioning(prov: Provisioning, state_dir: Path,
                        owner: tuple[int, int] | None = None,
                        timeout: float = enroll.TIMEOUT) -> Provisioning:
    """Redeem ``prov``'s enrollment code: ``prov`` with HQ's certificate and this box's key, or
    ProvisionError (the refusal recorded for the status page and pole display)."""
    assert prov.enrollment is not None
    credentials = state_dir / CREDENTIALS
    credentials.mkdir(parents=True, exist_ok=True)
    credentials.chmod(0o750)
    _own(credentials, owner)
    key = _load_key(credentials / "terminal.key") or ec.generate_private_key(ec.SECP256R1())
    writes = {
        "terminal.key": key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
        "broker-ca.pem": prov.broker_ca,
        "claim.crt": prov.enrollment.claim_certificate,
        "claim.key": prov.enrollment.claim_private_key,
    }
    for name, content in writes.items():
        write_atomic(credentials / name, content, FILES[name], owner)
    request = EnrollRequest(prov.store, prov.terminal_id, prov.enrollment.code,
                            _csr(key, prov).public_bytes(serialization.Encoding.PEM).decode())
    import asyncio  # with the MQTT stack, only when enrolling: a box provisioned from a file

    # with a certificate, or leaving a request for the technician, starts faster without them
    # (each import is seconds of CPU under emulation, and the boot waits for provisioning)
    from terminal.protocol.mqtt import TlsFiles

    claim = TlsFiles(credentials / "broker-ca.pem", credentials / "claim.crt",
                     credentials / "claim.key")
    try:
        answer = asyncio.run(enroll.exchange(prov.broker_host, prov.broker_port, claim, request,
                                             timeout))
        certificate = enroll.accept(answer, key, prov.identity)
    except enroll.EnrollmentRefused as exc:
        enroll.record_refusal(state_dir, exc, owner)
        raise ProvisionError(str(exc)) from None
    finally:
        for name in ("claim.crt", "claim.key"):
            (credentials / name).unlink(missing_ok=True)
    enroll.clear_refusal(state_dir)
    return replace(prov, certificate=certificate, private_key=key, enrollment=None)


def daemon_config(prov: Provisioning, credentials: Path) -> str:
    """The daemon's TOML config for ``prov``, with its credentials under ``credentials``."""
    document: dict[str, Any] = {
        "terminal": {"store": prov.store, "terminal_id": prov.terminal_id},
        "broker": {
            "host": prov.broker_host,
            "port": prov.broker_port,
            "ca_file": str(credentials / "broker-ca.pem"),
            "cert_file": str(credentials / "terminal.crt"),
            "key_file": str(credentials / "terminal.key"),
        },
        "hq": {"root_public_key_file": str(credentials / "hq-root.pub")},
        **with_default_inputs(prov.devices),
    }
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (
        f"# Written by `posterm provision` {__version__} at {stamp} (clock possibly untrusted).\n"
        "# Change the provisioning file and provision again rather than editing this.\n"
    )
    return header + toml_dumps(document)


def toml_dumps(document: Mapping[str, Any]) -> str:
    """TOML for the config: scalars, lists and tables as device sections use them (stdlib's
    tomllib only reads)."""
    lines: list[str] = []
    _toml_table(document, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    plain = {k: v for k, v in table.items() if not _is_table(v) and not _is_table_array(v)}
    if path and (plain or not table):
        lines.extend(["", f"[{'.'.join(map(_toml_key, path))}]"])
    lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plain.items())
    for key, value in table.items():
        if _is_table(value):
            _toml_table(value, [*path, key], lines)
        elif _is_table_array(value):
            for item in value:
                lines.extend(["", f"[[{'.'.join(map(_toml_key, [*path, key]))}]]"])
                lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # inline table inside an array
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def render_udev_rules(usb_ids: Mapping[str, tuple[str, str]]) -> str:
    """udev rules giving the configured devices stable names under /dev/posterm/."""
    lines = ["# Generated by `posterm provision` from the [udev] section; do not edit."]
    for role, (vendor, product) in sorted(usb_ids.items()):
        link = "posterm/" + role.replace("_", "-")
        match = f'ATTRS{{idVendor}}=="{vendor}", ATTRS{{idProduct}}=="{product}"'
        # Serial (USB-serial adapter or CDC-ACM) for both; the printer may also be usblp or raw USB.
        lines.append(f'SUBSYSTEM=="tty", {match}, GROUP="dialout", MODE="0660", SYMLINK+="{link}"')
        if role == "printer":
            lines.append(
                f'SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", {match}, GROUP="lp", MODE="0660", '
                f'SYMLINK+="{link}"'
            )
            lines.append(
                f'SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", ATTR{{idVendor}}=="{vendor}", '
                f'ATTR{{idProduct}}=="{product}", GROUP="lp", MODE="0660"'
            )
    return "\n".join(lines) + "\n"


def _csr(key: ec.EllipticCurvePrivateKey, prov: Provisioning) -> x509.CertificateSigningRequest:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, prov.identity),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, prov.store),
        ]
    )
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ProvisionError(f"{path}: not an EC private key; move it away to make a new one")
    return key


def _own(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.chown(path, *owner)


# --- what the daemon and the technician ask -----------------------------------------------


def is_provisioned(state_dir: Path) -> bool:
    """Whether a daemon config from provisioning is in place (the daemon says so if not)."""
    config = state_dir / CONFIG_NAME
    try:
        data = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("terminal"), dict) and "terminal_id" in data["terminal"]


def status_facts(state_dir: Path) -> dict[str, str]:
    """The provisioning facts for the status page, in print order (empty if not provisioned)."""
    if not is_provisioned(state_dir):
        refusal = enroll.read_refusal(state_dir)
        return {"enrollment": f"{refusal['zh']} / {refusal['en']}"} if refusal else {}
    data = tomllib.loads((state_dir / CONFIG_NAME).read_text())
    broker = data.get("broker", {})
    facts = {
        "terminal": data["terminal"]["terminal_id"],
        "store": data["terminal"].get("store", ""),
        "broker": f"{broker.get('host', '?')}:{broker.get('port', '?')}",
        "software": __version__,
    }
    cert_file = Path(broker.get("cert_file", state_dir / CREDENTIALS / "terminal.crt"))
    if cert_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        expires = cert.not_valid_after_utc.date().isoformat()
        facts["certificate"] = f"{cert.subject.rfc4514_string()}, valid until {expires}"
    else:
        facts["certificate"] = f"waiting: HQ to sign {state_dir / CREDENTIALS / 'terminal.csr'}"
    return facts


def check_broker(config: Path, timeout: float = 10.0) -> str:
    """TLS handshake with the configured broker using the provisioned CA and certificate."""
    import socket
    import ssl

    data = tomllib.loads(config.read_text())
    broker = data["broker"]
    context = ssl.create_default_context(cafile=broker["ca_file"])
    if Path(broker["cert_file"]).exists():
        context.load_cert_chain(broker["cert_file"], broker["key_file"])
    with (
        socket.create_connection((broker["host"], broker["port"]), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=broker["host"]) as tls,
    ):
        return f"{broker['host']}:{broker['port']} answered with {tls.version()}"


# --- command line ---------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=BOOT_FILE,
        help=f"provisioning file (default {BOOT_FILE})",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=STATE_DIR,
        help=f"where the config and credentials go (default {STATE_DIR})",
    )
    parser.add_argument(
        "--error-file",
        type=Path,
        help="on refusal, also write the reason here (beside the file on the "
        "boot partition, for the technician's laptop)",
    )
    parser.add_argument(
        "--udev-rules", type=Path, help="write the [udev] device names to this rules file"
    )
    parser.add_argument(
        "--owner",
        default=SERVICE_USER if os.geteuid() == 0 else None,
        help="user to own the files (default: posterm when run as root)",
    )
    parser.add_argument(
        "--trust-dir",
        type=Path,
        default=anchors.TRUST_DIR if os.geteuid() == 0 else None,
        help="write root's copy of HQ's root key and CA chain here, the only one the root "
        f"installers trust (default {anchors.TRUST_DIR} when run as root, else none)",
    )
    parser.add_argument(
        "--keep-file", action="store_true", help="do not remove the provisioning file after success"
    )
    parser.add_argument(
        "--check-broker", action="store_true", help="afterwards, try a TLS connection to the broker"
    )
    parser.add_argument(
        "--status", action="store_true", help="only print the provisioning facts and exit"
    )
    parser.add_argument(
        "--enroll-timeout",
        type=float,
        default=enroll.TIMEOUT,
        help=f"seconds to wait for HQ's answer to an [enroll] code (default {enroll.TIMEOUT:g})",
    )


def run(args: argparse.Namespace) -> int:
    if args.status:
        facts = status_facts(args.state_dir)
        if "enrollment" in facts:
            print(f"not provisioned: enrollment refused: {facts['enrollment']}")
            return 1
        if not facts:
            print(f"not provisioned: no {args.state_dir / CONFIG_NAME}", file=sys.stderr)
            return 1
        for name, value in facts.items():
            print(f"{name}: {value}")
        return 0
    try:
        text = args.source.read_text(encoding="utf-8")
        prov = parse(text, str(args.source))
        if prov.enrollment is not None:
            prov = enroll_provisioning(prov, args.state_dir, _owner(args.owner),
                                       args.enroll_timeout)
        outcome = provision(prov, args.state_dir, _owner(args.owner), args.udev_rules,
                            args.trust_dir)
    except (ProvisionError, OSError, UnicodeDecodeError) as exc:
        message = f"provisioning refused, the last good config is kept: {exc}"
        print(message, file=sys.stderr)
        if args.error_file is not None:
            args.error_file.write_text(message + "\n")
        return 1
    if args.error_file is not None:
        args.error_file.unlink(missing_ok=True)
    print(f"provisioned {prov.identity}: {outcome.config}", file=sys.stderr)
    if outcome.csr is not None:
        # Left beside the provisioning file so the technician takes it to HQ for signing.
        handover = args.source.with_name(f"posterm-{prov.store}-{prov.terminal_id}.csr")
        handover.write_bytes(outcome.csr.read_bytes())
        print(f"certificate request for HQ: {handover}", file=sys.stderr)
    if not args.keep_file:
        args.source.unlink()
    if args.check_broker:
        try:
            print(check_broker(outcome.config), file=sys.stderr)
        except OSError as exc:  # ssl.SSLError included
            print(f"broker check failed: {exc}", file=sys.stderr)
            return 1
    return 0


def _owner(user: str | None) -> tuple[int, int] | None:
    """The (uid, gid) of ``user``; None leaves files to the caller (development, tests)."""
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ProvisionError(f"user {user!r} is missing (systemd-sysusers makes posterm)") from None
    return entry.pw_uid, entry.pw_gid


def main(argv: list[str] | None = None) -> int:
    """``python -m terminal.provision``: what the unit runs, independent of the dispatcher."""
    return run_alone(__name__, "posterm provision", argv)
