"""Signed application updates in a real directory tree: install beside the running release,
atomic switch, forged and corrupted updates refused, and the trial's keep-or-rollback."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from terminal.field import anchors, update
from terminal.hq.release import write_release
from terminal.protocol import bundle
from terminal.protocol.bundle import TrustStore

PACKAGE = "fakepos"
BOOT = "boot-1"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path, version: str) -> Path:
    """A tiny pure-Python wheel with a `posterm` console script that prints its version."""
    dist = f"{PACKAGE}-{version}.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": f'def main() -> None:\n    print("{PACKAGE} {version}")\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": f"[console_scripts]\nposterm = {PACKAGE}:main\n",
    }
    encoded = {name: text.encode() for name, text in files.items()}
    record = [_record_line(n, d) for n, d in encoded.items()] + [f"{dist}/RECORD,,"]
    encoded[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{PACKAGE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in encoded.items():
            archive.writestr(name, data)
    return wheel


@dataclass(frozen=True)
class ReleaseKeys:
    """HQ's root (offline: it only signed the delegation) and the delegated signing key."""

    root: Ed25519PrivateKey
    signing: Ed25519PrivateKey
    delegation: bundle.Delegation

    @classmethod
    def new(cls) -> ReleaseKeys:
        root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        start = datetime.now(UTC) - timedelta(days=60)
        return cls(root, signing, bundle.delegate(root, signing.public_key(), start,
                                                  start + timedelta(days=365)))

    def public_key(self):  # the root key a terminal is provisioned with
        return self.root.public_key()

    def trust(self, revoked: tuple[str, ...] = ()) -> TrustStore:
        return TrustStore.of([self.root.public_key()], revoked)


@pytest.fixture(scope="module")
def hq_key() -> ReleaseKeys:
    return ReleaseKeys.new()


def make_update(tmp_path: Path, version: str, key: ReleaseKeys, issued: datetime | None = None,
                days: float = 30) -> Path:
    directory = tmp_path / f"update-{version}"
    directory.mkdir(parents=True)
    build_wheel(directory, version)
    issued = issued or datetime.now(UTC) - timedelta(minutes=1)
    write_release(directory, PACKAGE, version, key.signing, key.delegation.to_wire(), issued,
                  issued + timedelta(days=days))
    return directory


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path]:
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    return home, state


def install(source: Path, tree: tuple[Path, Path], key: ReleaseKeys, uptime: float = 10.0,
            now: datetime | None = None, revoked: tuple[str, ...] = ()):
    home, state = tree
    clock = update.Clock(BOOT, uptime)
    return update.install(source, home, state, key.trust(revoked), clock, trial_seconds=60,
                          now=now)


def run_posterm(home: Path) -> str:
    result = subprocess.run(
        [str(home / "current/bin/posterm")], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def seed(home: Path, version: str) -> None:
    """A stand-in running release (for refusals, which must stop before building anything)."""
    (home / "releases" / version).mkdir(parents=True)
    update.Releases(home).point("current", version)


def snapshot(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): os.readlink(p) if p.is_symlink() else "file"
        for p in sorted(home.rglob("*"))
        if p.is_symlink() or p.parent == home / "releases"
    }


def test_install_switch_and_keep_when_healthy(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    home, state = tree
    assert install(make_update(tmp_path, "1.0.0", hq_key), tree, hq_key) == "1.0.0"
    assert run_posterm(home) == "fakepos 1.0.0"
    assert update.Releases(home).trial() is None  # a first release has nothing to go back to

    assert install(make_update(tmp_path, "1.1.0", hq_key), tree, hq_key) == "1.1.0"
    assert os.readlink(home / "current") == "releases/1.1.0"
    assert os.readlink(home / "previous") == "releases/1.0.0"
    assert run_posterm(home) == "fakepos 1.1.0"
    assert (home / "releases/1.0.0/bin/posterm").exists()  # the old one stays beside it
    assert not list(home.glob(".*"))  # no temporary link or staging left behind

    clock = update.Clock(BOOT, 30.0)
    assert update.check(home, state, clock).startswith("1.1.0 on trial")
    update.mark_healthy(state, "1.1.0")
    assert update.check(home, state, clock) == "kept 1.1.0"
    assert update.Releases(home).trial() is None
    assert update.check(home, state, clock) == "no update on trial"

    # The next update prunes the release two back once it is kept.
    install(make_update(tmp_path, "1.2.0", hq_key), tree, hq_key)
    update.mark_healthy(state, "1.2.0")
    assert update.check(home, state, clock) == "kept 1.2.0 (removed 1.0.0)"
    assert sorted(p.name for p in (home / "releases").iterdir()) == ["1.1.0", "1.2.0"]


def test_rollback_when_not_healthy_in_time(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    home, state = tree
    install(make_update(tmp_path, "1.0.0", hq_key), tree, hq_key)
    install(make_update(tmp_path, "2.0.0", hq_key), tree, hq_key, uptime=100.0)

    assert "on trial" in update.check(home, state, update.Clock(BOOT, 159.0))
    outcome = update.check(home, state, update.Clock(BOOT, 160.0))

    assert outcome == "rolled back to 1.0.0: 2.0.0 was not healthy within 60 s"
    assert run_posterm(home) == "fakepos 1.0.0"
    assert update.Releases(home).trial() is None
    assert (home / "failed/2.0.0").exists()
    with pytest.raises(update.UpdateError, match=r"2\.0\.0 failed its trial before"):
        install(make_update(tmp_path / "again", "2.0.0", hq_key), tree, hq_key)


def test_rollback_after_too_many_boots(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    home, state = tree
    seed(home, "1.0.0")
    install(make_update(tmp_path, "1.0.1", hq_key), tree, hq_key)
    # Each boot restarts the count of seconds: a box rebooting in a loop never reaches 60 s.
    for boot in ("boot-2", "boot-3"):
        assert "on trial" in update.check(home, state, update.Clock(boot, 5.0))
    outcome = update.check(home, state, update.Clock("boot-4", 5.0))
    assert outcome == "rolled back to 1.0.0: 1.0.1 was not healthy in 3 boots"
    assert os.readlink(home / "current") == "releases/1.0.0"


def _edit_release(directory: Path, change) -> None:
    """Change release.json's wire form without signing it again."""
    wire = json.loads((directory / update.MANIFEST).read_bytes())
    change(wire)
    (directory / update.MANIFEST).write_text(json.dumps(wire))


def _retarget(wire: dict) -> None:
    inner = base64.b64decode(wire["release"]).replace(b'"1.1.0"', b'"9.9.9"')
    wire["release"] = base64.b64encode(inner).decode()


def refused_changing_nothing(source: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys,
                             match: str) -> None:
    """Installing ``source`` is refused with ``match`` and leaves the installed tree as it was."""
    before = snapshot(tree[0])
    with pytest.raises(update.UpdateError, match=match):
        install(source, tree, hq_key)
    assert snapshot(tree[0]) == before


FORGERIES = {
    "signed under another root": lambda d, key: write_release(
        d, PACKAGE, "1.1.0", (other := ReleaseKeys.new()).signing, other.delegation.to_wire(),
        datetime.now(UTC), datetime.now(UTC) + timedelta(days=1)),
    "version changed after signing": lambda d, key: _edit_release(d, _retarget),
    "manifest missing": lambda d, key: (d / update.MANIFEST).unlink(),
    "signature not base64": lambda d, key: _edit_release(
        d, lambda wire: wire.update(signature="%%%")),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_manifest_is_refused_and_nothing_changes(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys, forgery: str
) -> None:
    seed(tree[0], "1.0.0")
    source = make_update(tmp_path, "1.1.0", hq_key)
    FORGERIES[forgery](source, hq_key)
    refused_changing_nothing(source, tree, hq_key, r"release\.json")


def test_corrupted_file_is_refused_by_name(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    seed(tree[0], "1.0.0")
    source = make_update(tmp_path, "1.1.0", hq_key)
    wheel = next(source.glob("*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    refused_changing_nothing(source, tree, hq_key, rf"{wheel.name} does not match its sha256")


def test_unlisted_file_is_refused(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    seed(tree[0], "1.0.0")
    source = make_update(tmp_path, "1.1.0", hq_key)
    build_wheel(source, "1.1.1")  # pip would prefer it if it were let through
    with pytest.raises(update.UpdateError, match=r"files not in the manifest: fakepos-1\.1\.1"):
        install(source, tree, hq_key)


def test_older_or_same_version_is_refused(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    seed(tree[0], "1.10.0")
    with pytest.raises(update.UpdateError, match=r"1\.9\.0 is not newer than the running 1\.10\.0"):
        install(make_update(tmp_path, "1.9.0", hq_key), tree, hq_key)
    with pytest.raises(update.UpdateError, match=r"1\.10\.0 is not newer"):
        install(make_update(tmp_path, "1.10.0", hq_key), tree, hq_key)


def test_tarball_with_a_link_is_refused(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    seed(tree[0], "1.0.0")
    source = make_update(tmp_path, "1.1.0", hq_key)
    tarball = tmp_path / "update.tar"
    with tarfile.open(tarball, "w") as tar:
        for entry in source.iterdir():
            tar.add(entry, arcname=f"update/{entry.name}")
        link = tarfile.TarInfo("update/evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link, io.BytesIO())
    with pytest.raises(update.UpdateError, match="update/evil: only plain files"):
        install(tarball, tree, hq_key)


def ca_chain_pem() -> bytes:
    """A stand-in for HQ's CA chain (the anchors hold one; the application installer ignores it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HQ root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def public_pem(key: ReleaseKeys) -> bytes:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(serialization.Encoding.PEM, spki)


def daemon_config(state: Path, keys: ReleaseKeys, revoked: str | None = None) -> Path:
    """The provisioned config's [hq] section and the daemon's copy of the key, as provisioning
    leaves them, with root's anchors (``{state}/../trust``, root-owned) beside them."""
    key_file = state / "hq-root.pub"
    key_file.write_bytes(public_pem(keys))
    config = state / "posterm.toml"
    lines = ["[hq]", f'root_public_key_file = "{key_file}"']
    lines += [f'revoked_keys = ["{revoked}"]'] if revoked else []
    config.write_text("\n".join(lines) + "\n")
    anchors.write(trust_dir(state), public_pem(keys), ca_chain_pem())
    return config


def trust_dir(state: Path) -> Path:
    return state.parent / "trust"


def test_cli_consumes_a_refused_update_and_installs_a_tarball_with_the_provisioned_key(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    home, state = tree
    seed(home, "1.0.0")
    config = daemon_config(state, hq_key)
    parser = argparse.ArgumentParser()
    update.configure(parser)
    common = ["--home", str(home), "--state-dir", str(state), "--trust-dir", str(trust_dir(state))]

    # What the daemon left in ready/ is signed by someone else: refused, and ready/ emptied so
    # posterm-update.path does not fire again.
    ready = tmp_path / "ready"
    ready.mkdir()
    forged = make_update(tmp_path / "forged", "1.1.0", ReleaseKeys.new())
    for entry in forged.iterdir():
        (ready / entry.name).write_bytes(entry.read_bytes())
    args = parser.parse_args(["install", *common, str(ready), "--config", str(config), "--consume"])
    assert update.run(args) == 1
    assert list(ready.iterdir()) == []
    assert os.readlink(home / "current") == "releases/1.0.0"

    source = make_update(tmp_path, "1.1.0", hq_key)
    tarball = tmp_path / "update-1.1.0.tar"
    with tarfile.open(tarball, "w") as tar:
        for entry in source.iterdir():
            tar.add(entry, arcname=f"update-1.1.0/{entry.name}")
    args = parser.parse_args(["install", *common, str(tarball), "--config", str(config)])
    assert update.run(args) == 0
    assert run_posterm(home) == "fakepos 1.1.0"
    assert update.run(parser.parse_args(["rollback", *common])) == 0
    assert os.readlink(home / "current") == "releases/1.0.0"
    assert (home / "failed/1.1.0").read_text() == "rolled back by hand\n"


def test_rollback_needs_a_different_previous_release(tree: tuple[Path, Path]) -> None:
    home, state = tree
    seed(home, "1.0.0")
    update.Releases(home).point("previous", "1.0.0")  # a fresh image: nothing to go back to
    with pytest.raises(update.UpdateError, match="no previous release"):
        update.rollback(home, "by hand", state)
    (home / "trial.json").write_text("{not json")
    with pytest.raises(update.UpdateError, match=r"trial\.json is unreadable"):
        update.check(home, state, update.Clock(BOOT, 1.0))
    assert os.readlink(home / "current") == "releases/1.0.0"


def test_expired_revoked_key_and_older_releases_are_refused(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    """Judged as bundles are: the expiry, the revocation list, and the running release's issue
    time as a floor, so a box whose clock says 1970 still refuses what expired after it."""
    home, _state = tree
    now = datetime.now(UTC)
    assert install(make_update(tmp_path, "1.0.0", hq_key, issued=now - timedelta(hours=1)),
                   tree, hq_key) == "1.0.0"
    before = snapshot(home)
    expired = make_update(tmp_path / "expired", "1.1.0", hq_key,
                          issued=now - timedelta(days=31), days=30)
    with pytest.raises(update.UpdateError, match="expired: release expired at"):
        install(expired, tree, hq_key)
    lapsed = make_update(tmp_path / "lapsed", "1.1.0", hq_key,
                         issued=now - timedelta(minutes=90), days=1 / 96)  # 15 minutes
    with pytest.raises(update.UpdateError, match="expired"):
        install(lapsed, tree, hq_key, now=datetime(1970, 1, 1, tzinfo=UTC))
    older = make_update(tmp_path / "older", "1.1.0", hq_key, issued=now - timedelta(hours=2))
    with pytest.raises(update.UpdateError, match="stale_version: release issued"):
        install(older, tree, hq_key)
    fresh = make_update(tmp_path / "fresh", "1.1.0", hq_key)
    with pytest.raises(update.UpdateError, match="key_revoked"):
        install(fresh, tree, hq_key, revoked=(bundle.key_id(hq_key.signing.public_key()),))
    assert snapshot(home) == before
    assert install(fresh, tree, hq_key) == "1.1.0"


def test_the_cli_takes_revoked_keys_from_the_daemon_config(
    tmp_path: Path, tree: tuple[Path, Path], hq_key: ReleaseKeys
) -> None:
    home, state = tree
    seed(home, "1.0.0")
    config = daemon_config(state, hq_key, revoked=bundle.key_id(hq_key.signing.public_key()))
    parser = argparse.ArgumentParser()
    update.configure(parser)
    source = make_update(tmp_path, "1.1.0", hq_key)
    args = parser.parse_args(["install", "--home", str(home), "--state-dir", str(state),
                              "--trust-dir", str(trust_dir(state)), str(source), "--config",
                              str(config)])
    assert update.run(args) == 1
    assert os.readlink(home / "current") == "releases/1.0.0"
