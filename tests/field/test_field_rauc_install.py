"""`rauc install` for real: Debian's RAUC service on a private D-Bus (tests/field/rauc_box.py) with
the box's system.conf, installing bundles built by image/os-bundle.sh and signed under HQ's CA,
with RAUC's check of both CRLs on:

- a good bundle writes root slot B and boot slot B (the install hook points B's cmdline.txt at
  root B), and ab-boot puts B on trial: autoboot.txt names B under [tryboot] only; booted once
  from B in tryboot, `rauc status mark-good` commits it ([all] starts B);
- refused, slot B untouched: a bundle signed under another CA, by an expired signer, by a revoked
  signer (HQ's CRL), one with its signature cut off, and any bundle while the keyring lacks a CRL.

The bundles are plain, not verity: this machine's kernel has no device-mapper (see rauc_box).
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from terminal.field.os_update import keyring
from terminal.hq.cli import main as posterm_hq
from terminal.hq.pki import authority
from tests.field.rauc_box import REPO, RaucBox, missing
from tests.field.test_field_os_update import ca_with_bundle_signer, slot_images

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


def build(chain: Path, signer: Path, out: Path, ca: Path | None = None) -> Path:
    """image/os-bundle.sh, plain format (no dm-verity here)."""
    built = subprocess.run(
        ["bash", str(REPO / "image/os-bundle.sh"), str(chain / "slot-boot.vfat"),
         str(chain / "slot-root.ext4"), "2026.12.2", str(signer), str(ca or chain / "ca"),
         str(out)], env={**os.environ, "POSTERM_BUNDLE_FORMAT": "plain"},
        capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    return out


def crls(chain: Path) -> str:
    """HQ's current CRLs, as `posterm-hq os publish` announces them: issuing and root."""
    assert posterm_hq(["ca", "crl", "--ca", str(chain / "ca"), "-o", str(chain / "crl.pem")]) == 0
    return (chain / "crl.pem").read_text() + (chain / "ca/root.crl").read_text()


def write_keyring(box: RaucBox, chain: Path) -> None:
    box.keyring.write_bytes(keyring((chain / "ca/chain.pem").read_bytes(), crls(chain),
                                    datetime.now(UTC)))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rauc")
    ca_with_bundle_signer(directory)
    slot_images(directory)
    build(directory, directory / "signer", directory / "good.raucb")
    return directory


@pytest.fixture
def box(tmp_path: Path) -> RaucBox:
    started = RaucBox(tmp_path / "box").start()
    yield started
    started.stop()


def untouched(box: RaucBox) -> bool:
    return all(not any(box.slot(name).read_bytes()) for name in ("root-b", "boot-b"))


def test_a_signed_bundle_is_installed_to_b_and_tried_once(chain: Path, box: RaucBox) -> None:
    write_keyring(box, chain)
    assert box.status()["RAUC_SYSTEM_BOOTED_BOOTNAME"] == "A"
    done = box.install(chain / "good.raucb")
    assert done.returncode == 0, done.stdout + done.stderr + box.logs()
    assert "Installing `" in done.stdout and "succeeded" in done.stdout
    # The slots hold the bundle's images; the hook pointed boot B at root B.
    assert box.slot("root-b").read_bytes() == (chain / "slot-root.ext4").read_bytes()
    cmdline = subprocess.run(["mtype", "-i", str(box.slot("boot-b")), "::cmdline.txt"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert "root=PARTUUID=504f5354-06" in cmdline and "rauc.slot=B" in cmdline
    assert "-t vfat" in (box.dir / "mount.log").read_text()  # the hook's mount went through FUSE
    assert not any(box.slot("root-a").read_bytes())  # the running slot is never written
    # B is on trial: the next tryboot starts it, every plain boot still starts A.
    status = box.status()
    assert status["RAUC_BOOT_PRIMARY"] == "rootfs.1"
    autoboot = box.autoboot.read_text()
    assert "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3" in autoboot
    assert '"trial": "B"' in box.ab_state()

    # The one tryboot into B: the service now runs from B and posterm came up: mark-good.
    box.boot("B", tryboot=True)
    assert box.status()["RAUC_SYSTEM_BOOTED_BOOTNAME"] == "B"
    marked = box.rauc("status", "mark-good")
    assert marked.returncode == 0, marked.stderr
    assert "[all]\ntryboot_a_b=1\nboot_partition=3" in box.autoboot.read_text()
    assert box.ab("get-state", "B") == "good"


def _signer_expired(chain: Path, out: Path) -> Path:
    """A code-signing certificate of HQ's issuing CA whose validity ended yesterday."""
    ca = authority.load(chain / "ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "os-bundles-old")]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30)).not_valid_after(now - timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca.key, hashes.SHA256()))
    out.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return out


def _refused(box: RaucBox, bundle: Path, *words: str) -> None:
    done = box.install(bundle)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert all(word in said for word in words), said
    assert untouched(box)
    assert box.status()["RAUC_BOOT_PRIMARY"] == "rootfs.0"
    assert "boot_partition=2\n[tryboot]" in box.autoboot.read_text()


def test_bundles_not_signed_by_a_current_signer_of_hq_are_refused(chain: Path, box: RaucBox,
                                                                  tmp_path: Path) -> None:
    # No CRL in the keyring: check-crl is on, so nothing installs, not even a good bundle.
    box.keyring.write_bytes((chain / "ca/chain.pem").read_bytes())
    _refused(box, chain / "good.raucb", "unable to get certificate CRL")
    write_keyring(box, chain)

    # A signer of another CA.
    other = tmp_path / "other"
    assert posterm_hq(["ca", "init", str(other / "ca")]) == 0
    assert posterm_hq(["ca", "bundle-signer", "--ca", str(other / "ca"), "-o",
                       str(other / "signer")]) == 0
    foreign = chain / "foreign.raucb"
    if not foreign.exists():
        (other / "slot-boot.vfat").symlink_to(chain / "slot-boot.vfat")
        (other / "slot-root.ext4").symlink_to(chain / "slot-root.ext4")
        build(other, other / "signer", foreign)
    _refused(box, foreign, "signature verification failed")

    # An expired signer of HQ's own CA: os-bundle.sh's own check refuses to finish it, so it is
    # packed with rauc directly from the good bundle's content.
    old = _signer_expired(chain, tmp_path / "old")
    content = tmp_path / "content"
    extracted = box.rauc("extract", f"--conf={box.dir / 'system.conf'}",
                         str(chain / "good.raucb"), str(content))
    assert extracted.returncode == 0, extracted.stderr
    expired = tmp_path / "expired.raucb"
    packed = subprocess.run(["rauc", "bundle", "--cert", str(old.with_suffix(".crt")), "--key",
                             str(old.with_suffix(".key")), "--intermediate",
                             str(chain / "ca/issuing.crt"), str(content), str(expired)],
                            capture_output=True, text=True, check=False)
    assert packed.returncode == 0, packed.stderr
    _refused(box, expired, "certificate has expired")

    # Unsigned: the good bundle with its signature (CMS and its size, at the end) cut off.
    good = (chain / "good.raucb").read_bytes()
    cms_size = int.from_bytes(good[-8:], "big")
    unsigned = tmp_path / "unsigned.raucb"
    unsigned.write_bytes(good[:-8 - cms_size])
    _refused(box, unsigned)


def test_a_bundle_of_a_revoked_signer_is_refused_with_hq_crl(chain: Path, box: RaucBox,
                                                             tmp_path: Path) -> None:
    leaked = tmp_path / "leaked"
    assert posterm_hq(["ca", "bundle-signer", "--ca", str(chain / "ca"), "-o", str(leaked),
                       "--name", "os-bundles-leaked"]) == 0
    bundle = build(chain, leaked, tmp_path / "leaked.raucb")
    write_keyring(box, chain)
    checked = box.rauc("info", f"--conf={box.dir / 'system.conf'}", str(bundle))
    assert checked.returncode == 0, checked.stderr
    # HQ revokes the signer; the next CRL (what `posterm-hq os publish` announces) refuses it.
    assert posterm_hq(["ca", "revoke", str(leaked) + ".crt", "--ca", str(chain / "ca"), "-o",
                       str(chain / "crl.pem"), "--register", str(tmp_path / "none")]) == 0
    write_keyring(box, chain)
    _refused(box, bundle, "certificate revoked")
    # The good signer is not affected.
    done = box.install(chain / "good.raucb")
    assert done.returncode == 0, done.stdout + done.stderr
