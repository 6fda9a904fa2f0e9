"""`posterm-hq release sign`: a wheelhouse signed as a release with keygen's delegated key, which
terminals verify like a bundle and which never passes for one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminal.hq.cli import main as posterm_hq
from terminal.protocol import bundle
from terminal.protocol.bundle import TrustStore
from terminal.protocol.keys import load_public
from terminal.protocol.release import MANIFEST, verify_release


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
