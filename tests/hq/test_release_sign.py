"""`posterm-hq release sign`: a wheelhouse signed as a release with keygen's delegated key, which
terminals verify like a bundle and which never passes for one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminal.hq.cli import main as posterm_hq
from terminal.hq.member_ops.publish import Signer
from terminal.protocol import bundle
from terminal.protocol.bundle import TrustStore
from terminal.protocol.keys import load_public
from terminal.protocol.release import (
    MANIFEST,
    OsRelease,
    sign_os_release,
    verify_os_release,
    verify_release,
)


def test_release_sign_verifies_with_the_root_and_is_no_bundle(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert posterm_hq(["keygen", str(keys)]) == 0
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "posterm-0.3.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    assert posterm_hq(["release", "sign", str(wheels), "--keys", str(keys), "--version",
                       "0.3.0", "--days", "10"]) == 0
    wire = (wheels / MANIFEST).read_bytes()
    trust = TrustStore.of([load_public(keys / "root.pub")])
    release = verify_release(wire, trust, datetime.now(UTC))
    assert (release.package, release.version) == ("posterm", "0.3.0")
    assert release.expires_at - release.issued_at == timedelta(days=10)
    assert list(release.files) == ["posterm-0.3.0-py3-none-any.whl"]
    with pytest.raises(bundle.BundleRejected):
        bundle.verify_bundle(wire, trust, frozenset({"chain"}), 0, datetime.now(UTC), True)
    with pytest.raises(bundle.Expired):
        verify_release(wire, trust, datetime.now(UTC) + timedelta(days=11))


def test_release_sign_refuses_an_empty_directory_and_a_long_life(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert posterm_hq(["keygen", str(keys)]) == 0
    assert posterm_hq(["release", "sign", str(tmp_path), "--keys", str(keys), "--version",
                       "0.3.0"]) == 1
    assert "no wheels" in capsys.readouterr().err
    (tmp_path / "posterm-0.3.0-py3-none-any.whl").write_bytes(b"w")
    assert posterm_hq(["release", "sign", str(tmp_path), "--keys", str(keys), "--version",
                       "0.3.0", "--days", "400"]) == 1
    assert "within 180 days" in capsys.readouterr().err
    assert not (tmp_path / MANIFEST).exists()


def test_an_os_release_is_checked_like_a_release_and_never_passes_for_one(
        tmp_path: Path) -> None:
    """The OS announcement (`posterm-hq os publish`) goes through the same check as releases:
    expired, older than the floor, a revoked signing key are refused; it is no app release, and an
    app release is no OS release."""
    keys = tmp_path / "keys"
    assert posterm_hq(["keygen", str(keys)]) == 0
    signer = Signer.load(keys)
    now = datetime.now(UTC).replace(microsecond=0)
    crl = "-----BEGIN X509 CRL-----\nAA==\n-----END X509 CRL-----\n"
    release = OsRelease("posterm-rpi-arm64", "2026.12.2", "https://hq.example/os.raucb", 1000,
                        "ab" * 32, crl, now, now + timedelta(days=7), "")
    wire = sign_os_release(release, signer.key, signer.delegation)
    trust = TrustStore.of([load_public(keys / "root.pub")])
    got = verify_os_release(wire, trust, now)
    assert (got.version, got.size, got.sha256, got.crls) == ("2026.12.2", 1000, "ab" * 32, crl)
    with pytest.raises(bundle.Expired):
        verify_os_release(wire, trust, now + timedelta(days=8))
    with pytest.raises(bundle.StaleVersion):
        verify_os_release(wire, trust, now, floor=now + timedelta(hours=1))
    revoked = TrustStore.of([load_public(keys / "root.pub")], [got.key_id])
    with pytest.raises(bundle.KeyRevoked):
        verify_os_release(wire, revoked, now)
    with pytest.raises(bundle.BundleRejected):
        verify_release(wire, trust, now)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "posterm-0.3.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    assert posterm_hq(["release", "sign", str(wheels), "--keys", str(keys), "--version",
                       "0.3.0"]) == 0
    with pytest.raises(bundle.BundleRejected):
        verify_os_release((wheels / MANIFEST).read_bytes(), trust, now)
    for bad in ({"size": 0}, {"sha256": "AB" * 32}, {"url": "file:///etc/passwd"},
                {"crls": "no crl"}):
        with pytest.raises(ValueError):
            sign_os_release(dataclasses.replace(release, **bad), signer.key, signer.delegation)
