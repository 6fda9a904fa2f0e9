"""The root installers trust HQ's anchors only as root keeps them (terminal/field/anchors.py).

The daemon runs unprivileged and owns /var/lib/posterm, its config and its copy of HQ's key. If
the root installers read those, a compromised daemon could put its own key there and have root
install its own release or OS bundle. These tests run as root (the checks are on real owners and
modes): provisioning writes root's copy root-owned; the installers refuse a missing, daemon-owned,
writable or linked anchor with nothing installed, and refuse a release or OS announcement signed
by a key the attacker put into the daemon's files. A box provisioned before the anchors existed is
seeded once from the daemon's copy, and never again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from terminal.field import anchors, os_update, provision, update
from terminal.protocol.release import OsRelease, sign_os_release
from tests.field.test_field_provision import OWNER, Pki, good_file
from tests.field.test_field_update import (
    ReleaseKeys,
    ca_chain_pem,
    daemon_config,
    make_update,
    public_pem,
    run_posterm,
    seed,
    trust_dir,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners and modes need root")

DAEMON = (4242, 4243)  # stands for the posterm user: any uid but root's


def mode_and_owner(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_provisioning_writes_root_owned_anchors_over_what_the_daemon_left(tmp_path: Path) -> None:
    pki = Pki()
    hq = ReleaseKeys.new()
    prov = provision.parse(good_file(pki, public_pem(hq).decode()), "posterm-provision.toml")
    trust = tmp_path / "trust"
    # Whatever was there (a daemon's doing, or an old image) is replaced, not trusted.
    trust.mkdir(mode=0o777)
    os.chown(trust, *DAEMON)
    os.chmod(trust, 0o777)
    (trust / anchors.ROOT_KEY).write_bytes(public_pem(ReleaseKeys.new()))
    os.chown(trust / anchors.ROOT_KEY, *DAEMON)
    os.chmod(trust / anchors.ROOT_KEY, 0o666)

    provision.provision(prov, tmp_path / "state", OWNER, trust_dir=trust)

    assert mode_and_owner(trust) == (0o755, 0, 0)
    assert sorted(p.name for p in trust.iterdir()) == [anchors.CHAIN, anchors.ROOT_KEY]
    for name in (anchors.ROOT_KEY, anchors.CHAIN):
        assert mode_and_owner(trust / name) == (0o644, 0, 0), name
    assert (trust / anchors.ROOT_KEY).read_bytes() == public_pem(hq)
    assert (trust / anchors.CHAIN).read_bytes() == pki.pem().encode()
    # The daemon keeps its own copy for its own checks, as its user's.
    daemon_copy = tmp_path / "state/credentials/hq-root.pub"
    assert daemon_copy.read_bytes() == public_pem(hq)
    assert mode_and_owner(daemon_copy) == (0o640, *OWNER)
    loaded = anchors.load(trust)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert loaded.root_key.public_bytes(*raw) == hq.public_key().public_bytes(*raw)


def test_provisioning_from_the_cli_as_root_writes_the_anchors(tmp_path: Path) -> None:
    pki = Pki()
    hq = ReleaseKeys.new()
    boot = tmp_path / "boot"
    boot.mkdir()
    source = boot / "posterm-provision.toml"
    source.write_text(good_file(pki, public_pem(hq).decode()))
    parser = argparse.ArgumentParser()
    provision.configure(parser)
    assert parser.parse_args([]).trust_dir == anchors.TRUST_DIR  # the box's, as root
    args = parser.parse_args(["--from", str(source), "--state-dir", str(tmp_path / "state"),
                              "--trust-dir", str(tmp_path / "trust"), "--owner", "root"])
    assert provision.run(args) == 0
    assert mode_and_owner(tmp_path / "trust/hq-root.pub") == (0o644, 0, 0)
    assert anchors.load(tmp_path / "trust").chain_pem == pki.pem().encode()


def tamper_missing(trust: Path) -> None:
    # The directory stays: an image with the anchors makes it at every boot (tmpfiles).
    for name in (anchors.ROOT_KEY, anchors.CHAIN):
        (trust / name).unlink()


def tamper_key_owned_by_daemon(trust: Path) -> None:
    os.chown(trust / anchors.ROOT_KEY, *DAEMON)


def tamper_chain_group_writable(trust: Path) -> None:
    os.chmod(trust / anchors.CHAIN, 0o664)


def tamper_key_world_writable(trust: Path) -> None:
    os.chmod(trust / anchors.ROOT_KEY, 0o646)


def tamper_directory_owned_by_daemon(trust: Path) -> None:
    os.chown(trust, *DAEMON)


def tamper_directory_world_writable(trust: Path) -> None:
    os.chmod(trust, 0o777)


def tamper_key_linked_to_daemon_copy(trust: Path) -> None:
    (trust / anchors.ROOT_KEY).unlink()
    (trust / anchors.ROOT_KEY).symlink_to(trust.parent / "state/hq-root.pub")


def tamper_key_not_a_key(trust: Path) -> None:
    (trust / anchors.ROOT_KEY).write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot one\n")


TAMPERING = {
    "missing": (tamper_missing, "is missing: HQ's anchors are written by provisioning"),
    "key owned by the daemon": (tamper_key_owned_by_daemon, "owned by uid 4242, not root"),
    "chain group-writable": (tamper_chain_group_writable, "mode 0664 lets others than root"),
    "key world-writable": (tamper_key_world_writable, "mode 0646 lets others than root"),
    "directory owned by the daemon": (tamper_directory_owned_by_daemon, "trust: owned by uid"),
    "directory world-writable": (tamper_directory_world_writable, "trust: mode 0777"),
    "key a link to the daemon's copy": (tamper_key_linked_to_daemon_copy,
                                        "cannot be opened safely"),
    "key not a key": (tamper_key_not_a_key, "not a PEM public key"),
}


@pytest.fixture(scope="module")
def hq_key() -> ReleaseKeys:
    return ReleaseKeys.new()


def cli(home: Path, state: Path, *args: str) -> int:
    parser = argparse.ArgumentParser()
    update.configure(parser)
    return update.run(parser.parse_args([
        args[0], "--home", str(home), "--state-dir", str(state),
        "--trust-dir", str(trust_dir(state)), "--config", str(state / "posterm.toml"),
        *args[1:]]))


def box(tmp_path: Path, hq_key: ReleaseKeys) -> tuple[Path, Path]:
    """A box provisioned for ``hq_key`` running release 1.0.0."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    seed(home, "1.0.0")
    daemon_config(state, hq_key)
    return home, state


def ready_with(tmp_path: Path, update_dir: Path) -> Path:
    ready = tmp_path / "ready"
    ready.mkdir()
    for entry in update_dir.iterdir():
        shutil.copyfile(entry, ready / entry.name)
    return ready


@pytest.mark.parametrize("tamper", list(TAMPERING))
def test_the_update_installer_refuses_anchors_it_cannot_trust(
        tamper: str, tmp_path: Path, hq_key: ReleaseKeys,
        capsys: pytest.CaptureFixture[str]) -> None:
    home, state = box(tmp_path, hq_key)
    ready = ready_with(tmp_path, make_update(tmp_path / "good", "1.1.0", hq_key))  # HQ's own
    change, said = TAMPERING[tamper]
    change(trust_dir(state))
    assert cli(home, state, "install", str(ready), "--consume") == 1
    err = capsys.readouterr().err
    assert err.startswith("update install: ") and said in err, err
    assert os.readlink(home / "current") == "releases/1.0.0"
    assert sorted(p.name for p in (home / "releases").iterdir()) == ["1.0.0"]
    assert list(ready.iterdir()) == []  # consumed: posterm-update.path does not fire again


@pytest.mark.parametrize("tamper", ["missing", "key owned by the daemon", "chain group-writable",
                                    "directory world-writable"])
def test_the_os_installer_refuses_anchors_it_cannot_trust(
        tamper: str, tmp_path: Path, hq_key: ReleaseKeys,
        capsys: pytest.CaptureFixture[str]) -> None:
    home, state = box(tmp_path, hq_key)
    ready = tmp_path / "os-ready"
    ready.mkdir()
    (ready / os_update.BUNDLE).write_bytes(b"bundle")
    (ready / os_update.ANNOUNCEMENT).write_bytes(b"{}")
    change, said = TAMPERING[tamper]
    change(trust_dir(state))
    assert cli(home, state, "os-install", str(ready)) == 1
    err = capsys.readouterr().err
    assert err.startswith("update os-install: ") and said in err, err
    # Cleared (posterm-os-update.path would otherwise fire again and again); nothing installed.
    assert list(ready.iterdir()) == []
    assert not (state / os_update.INSTALLED).exists()


def attacker_takes_the_daemon_files(state: Path, attacker: ReleaseKeys) -> None:
    """What a compromised daemon can do: its own key in its copy and its config."""
    (state / "hq-root.pub").write_bytes(public_pem(attacker))
    (state / "credentials").mkdir(exist_ok=True)
    (state / "credentials/hq-root.pub").write_bytes(public_pem(attacker))
    (state / "posterm.toml").write_text(
        f'[hq]\nroot_public_key_file = "{state / "credentials/hq-root.pub"}"\n')


def test_a_release_signed_by_the_daemons_planted_key_is_refused_and_hqs_is_installed(
        tmp_path: Path, hq_key: ReleaseKeys, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = box(tmp_path, hq_key)
    attacker = ReleaseKeys.new()
    attacker_takes_the_daemon_files(state, attacker)
    ready = ready_with(tmp_path, make_update(tmp_path / "forged", "6.6.6", attacker))
    assert cli(home, state, "install", str(ready), "--consume") == 1
    err = capsys.readouterr().err
    assert "release.json refused: unknown_key" in err and "does not trust" in err, err
    assert os.readlink(home / "current") == "releases/1.0.0"
    assert not (home / "releases/6.6.6").exists()

    # HQ's release, verified against root's anchors, installs whatever the daemon's files say.
    source = make_update(tmp_path / "good", "1.1.0", hq_key)
    assert cli(home, state, "install", str(source)) == 0
    assert run_posterm(home) == "fakepos 1.1.0"


def test_an_os_announcement_signed_by_the_daemons_planted_key_is_refused(
        tmp_path: Path, hq_key: ReleaseKeys, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = box(tmp_path, hq_key)
    attacker = ReleaseKeys.new()
    attacker_takes_the_daemon_files(state, attacker)
    bundle = b"the attacker's root file system"
    now = datetime.now(UTC).replace(microsecond=0)
    forged = OsRelease(os_update.COMPATIBLE, "2099.1.1", "http://127.0.0.1:9/os.raucb",
                       len(bundle), hashlib.sha256(bundle).hexdigest(),
                       "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n", now,
                       now + timedelta(days=7), "")
    ready = tmp_path / "os-ready"
    ready.mkdir()
    (ready / os_update.BUNDLE).write_bytes(bundle)
    (ready / os_update.ANNOUNCEMENT).write_bytes(
        sign_os_release(forged, attacker.signing, attacker.delegation.to_wire()))
    assert cli(home, state, "os-install", str(ready)) == 1
    err = capsys.readouterr().err
    assert "announcement refused: unknown_key" in err, err
    assert list(ready.iterdir()) == []
    assert not (state / os_update.INSTALLED).exists()


def test_anchors_written_by_provisioning_load_and_a_chain_must_be_certificates(
        tmp_path: Path) -> None:
    hq = ReleaseKeys.new()
    anchors.write(tmp_path / "trust", public_pem(hq), ca_chain_pem())
    assert anchors.load(tmp_path / "trust").chain_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(anchors.AnchorError, match="not a PEM certificate chain"):
        anchors.write(tmp_path / "other", public_pem(hq), b"no chain")
    (tmp_path / "link").symlink_to(tmp_path / "trust")
    with pytest.raises(anchors.AnchorError, match="a symbolic link"):
        anchors.write(tmp_path / "link", public_pem(hq), ca_chain_pem())
    with pytest.raises(anchors.AnchorError, match="link: not a directory"):
        anchors.load(tmp_path / "link")


def test_the_os_installer_judges_age_by_roots_record_not_the_daemons(
        tmp_path: Path, hq_key: ReleaseKeys) -> None:
    """The daemon deleting its os-installed.json cannot lower the floor: root keeps its own."""
    state, root_record = tmp_path / "state", tmp_path / "rauc"
    state.mkdir()
    root_record.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    (root_record / os_update.INSTALLED).write_text(
        f'{{"version": "2026.12.2", "issued_at": "{(now - timedelta(hours=1)).isoformat()}"}}')
    bundle = b"an older root file system HQ once signed"
    older = OsRelease(os_update.COMPATIBLE, "2026.12.1", "http://127.0.0.1:9/os.raucb",
                      len(bundle), hashlib.sha256(bundle).hexdigest(),
                      "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n",
                      now - timedelta(hours=2), now + timedelta(days=7), "")
    wire = sign_os_release(older, hq_key.signing, hq_key.delegation.to_wire())

    def ready() -> Path:
        directory = tmp_path / "os-ready"
        directory.mkdir(exist_ok=True)
        (directory / os_update.BUNDLE).write_bytes(bundle)
        (directory / os_update.ANNOUNCEMENT).write_bytes(wire)
        return directory

    keyring = tmp_path / "keyring.pem"
    with pytest.raises(os_update.OsUpdateError, match="stale_version"):
        os_update.install_ready(ready(), hq_key.trust(), state, chain=ca_chain_pem(),
                                keyring_file=keyring, rauc=("false",), record_dir=root_record)
    assert not keyring.exists() and not (state / os_update.INSTALLED).exists()
    # Judged by the daemon's (deleted) record instead, the replay gets past the age check: only
    # its CRL (a stand-in here) stops it.
    with pytest.raises(os_update.OsUpdateError, match="CRL"):
        os_update.install_ready(ready(), hq_key.trust(), state, chain=ca_chain_pem(),
                                keyring_file=keyring, rauc=("false",))


def old_box(tmp_path: Path, hq_key: ReleaseKeys) -> tuple[Path, Path]:
    """A box provisioned before root's anchors existed, running 1.0.0: the daemon's copy of HQ's
    key and chain as provisioning wrote it (credentials/, the posterm user's, 0640), root's
    releases tree (0755), and no trust directory at all (its image neither makes nor fills one)."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir(mode=0o755)
    state.mkdir(mode=0o750)
    seed(home, "1.0.0")
    credentials = state / "credentials"
    credentials.mkdir(mode=0o750)
    for name, pem in {"hq-root.pub": public_pem(hq_key), "broker-ca.pem": ca_chain_pem()}.items():
        (credentials / name).write_bytes(pem)
        os.chown(credentials / name, *DAEMON)
        os.chmod(credentials / name, 0o640)
    os.chown(credentials, *DAEMON)
    os.chown(state, *DAEMON)
    (state / "posterm.toml").write_text(
        f'[hq]\nroot_public_key_file = "{credentials / "hq-root.pub"}"\n')
    return home, state


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_box_from_before_the_anchors_is_seeded_once_and_then_trusts_roots_copy_only(
        tmp_path: Path, hq_key: ReleaseKeys, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = old_box(tmp_path, hq_key)
    chain = (state / "credentials/broker-ca.pem").read_bytes()
    seeded, record = home / anchors.SEEDED, home / anchors.SEED_RECORD

    # The first install by this code: the anchors seeded from the daemon's copy, then HQ's release.
    assert cli(home, state, "install", str(make_update(tmp_path / "a", "1.1.0", hq_key))) == 0
    err = capsys.readouterr().err
    assert f"{seeded} seeded once from the daemon's copy in {state / 'credentials'}" in err, err
    assert not trust_dir(state).exists()
    assert mode_and_owner(seeded) == (0o755, 0, 0)
    assert sorted(p.name for p in seeded.iterdir()) == [anchors.CHAIN, anchors.ROOT_KEY]
    for name in (anchors.ROOT_KEY, anchors.CHAIN):
        assert mode_and_owner(seeded / name) == (0o644, 0, 0), name
    assert (seeded / anchors.ROOT_KEY).read_bytes() == public_pem(hq_key)
    assert (seeded / anchors.CHAIN).read_bytes() == chain
    assert mode_and_owner(record) == (0o644, 0, 0)
    facts = json.loads(record.read_text())
    assert facts["sha256"] == {anchors.ROOT_KEY: sha256(public_pem(hq_key)),
                               anchors.CHAIN: sha256(chain)}
    assert facts["into"] == str(seeded)
    assert run_posterm(home) == "fakepos 1.1.0"
    update.Releases(home).end_trial()
    recorded = record.read_bytes()

    # Later the daemon's copy and config are the attacker's: root's seeded copy is what counts.
    attacker = ReleaseKeys.new()
    attacker_takes_the_daemon_files(state, attacker)
    ready = ready_with(tmp_path, make_update(tmp_path / "forged", "6.6.6", attacker))
    assert cli(home, state, "install", str(ready), "--consume") == 1
    err = capsys.readouterr().err
    assert "release.json refused: unknown_key" in err and "seeded" not in err, err
    assert (seeded / anchors.ROOT_KEY).read_bytes() == public_pem(hq_key)
    assert record.read_bytes() == recorded
    assert not (home / "releases/6.6.6").exists()
    assert cli(home, state, "install", str(make_update(tmp_path / "b", "1.2.0", hq_key))) == 0
    assert run_posterm(home) == "fakepos 1.2.0"
    update.Releases(home).end_trial()

    # Root's seeded copy gone: never seeded again, whatever the daemon's files hold.
    shutil.rmtree(seeded)
    source = make_update(tmp_path / "c", "1.3.0", hq_key)
    assert cli(home, state, "install", str(source)) == 1
    err = capsys.readouterr().err
    assert "it is never seeded again; provision the box again as root" in err, err
    assert not seeded.exists() and record.read_bytes() == recorded
    assert run_posterm(home) == "fakepos 1.2.0"

    # Provisioning as root writes root's anchors, which the installers take from then on.
    anchors.write(trust_dir(state), public_pem(hq_key), ca_chain_pem())
    assert cli(home, state, "install", str(source)) == 0
    assert run_posterm(home) == "fakepos 1.3.0"


def test_the_os_installer_seeds_a_box_from_before_the_anchors_too(
        tmp_path: Path, hq_key: ReleaseKeys, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = old_box(tmp_path, hq_key)
    ready = tmp_path / "os-ready"
    ready.mkdir()
    bundle = b"a root file system"
    now = datetime.now(UTC).replace(microsecond=0)
    forged = OsRelease(os_update.COMPATIBLE, "2099.1.1", "http://127.0.0.1:9/os.raucb",
                       len(bundle), hashlib.sha256(bundle).hexdigest(),
                       "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n", now,
                       now + timedelta(days=7), "")
    attacker = ReleaseKeys.new()
    (ready / os_update.BUNDLE).write_bytes(bundle)
    (ready / os_update.ANNOUNCEMENT).write_bytes(
        sign_os_release(forged, attacker.signing, attacker.delegation.to_wire()))
    assert cli(home, state, "os-install", str(ready)) == 1
    err = capsys.readouterr().err
    assert "seeded once from the daemon's copy" in err and "refused: unknown_key" in err, err
    assert (home / anchors.SEEDED / anchors.ROOT_KEY).read_bytes() == public_pem(hq_key)
    assert not (state / os_update.INSTALLED).exists()


def test_no_seeding_on_an_image_with_the_anchors_directory(
        tmp_path: Path, hq_key: ReleaseKeys, capsys: pytest.CaptureFixture[str]) -> None:
    """An image with the anchors makes the directory at boot and its provisioning fills it: an
    empty one means provision again, never the daemon's copy."""
    home, state = old_box(tmp_path, hq_key)
    trust_dir(state).mkdir(mode=0o755)
    ready = ready_with(tmp_path, make_update(tmp_path / "good", "1.1.0", hq_key))
    assert cli(home, state, "install", str(ready), "--consume") == 1
    err = capsys.readouterr().err
    assert "hq-root.pub is missing: HQ's anchors are written by provisioning" in err, err
    assert not (home / anchors.SEEDED).exists() and not (home / anchors.SEED_RECORD).exists()
    assert os.readlink(home / "current") == "releases/1.0.0"


def unfit_key_missing(home: Path, credentials: Path) -> None:
    (credentials / "hq-root.pub").unlink()


def unfit_key_a_link(home: Path, credentials: Path) -> None:
    (credentials / "hq-root.pub").rename(home.parent / "elsewhere.pub")
    (credentials / "hq-root.pub").symlink_to(home.parent / "elsewhere.pub")


def unfit_chain_not_certificates(home: Path, credentials: Path) -> None:
    (credentials / "broker-ca.pem").write_bytes(b"no chain")


def unfit_credentials_a_link(home: Path, credentials: Path) -> None:
    credentials.rename(home.parent / "real-credentials")
    credentials.symlink_to(home.parent / "real-credentials")


def unfit_releases_tree_writable(home: Path, credentials: Path) -> None:
    os.chmod(home, 0o777)


UNFIT = {
    "key missing": (unfit_key_missing, "hq-root.pub is missing"),
    "key a link": (unfit_key_a_link, "cannot be opened safely"),
    "chain not certificates": (unfit_chain_not_certificates, "not a PEM certificate chain"),
    "credentials a link": (unfit_credentials_a_link, "not the daemon's credentials directory"),
    "releases tree world-writable": (unfit_releases_tree_writable, "home: mode 0777"),
}


@pytest.mark.parametrize("unfit", list(UNFIT))
def test_nothing_is_seeded_from_an_unfit_daemon_copy_or_into_an_unsafe_tree(
        unfit: str, tmp_path: Path, hq_key: ReleaseKeys,
        capsys: pytest.CaptureFixture[str]) -> None:
    home, state = old_box(tmp_path, hq_key)
    change, said = UNFIT[unfit]
    change(home, state / "credentials")
    ready = ready_with(tmp_path, make_update(tmp_path / "good", "1.1.0", hq_key))
    assert cli(home, state, "install", str(ready), "--consume") == 1
    err = capsys.readouterr().err
    assert err.startswith("update install: ") and said in err, err
    # Nothing seeded and nothing recorded: once the box is fit, a later install may seed.
    assert not (home / anchors.SEEDED).exists() and not (home / anchors.SEED_RECORD).exists()
    assert os.readlink(home / "current") == "releases/1.0.0"
