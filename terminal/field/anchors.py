"""HQ's trust anchors as root keeps them: what the root installers verify releases and OS bundles
against (docs/field.md, "Who may change what the installers trust").

The daemon runs as the unprivileged ``posterm`` user and owns ``/var/lib/posterm``, its config and
its copy of HQ's keys (``credentials/hq-root.pub``, ``credentials/broker-ca.pem``). The installers
run as root; if they read those, a compromised daemon could put its own key there and have root
install its own release. So provisioning (root, from the technician's file on the boot partition)
also writes a copy that only root can change, in :data:`TRUST_DIR`:

- ``hq-root.pub``: HQ's Ed25519 root public key, the anchor of releases and OS announcements;
- ``ca-chain.pem``: HQ's CA chain (issuing CA and root), the anchor of RAUC's keyring.

The directory is on the data partition (``/var``), not under ``/etc``: the root file system is an
A/B slot that an OS update replaces, and the anchors must survive it. The installers read the
anchors only through :func:`load`, which refuses (nothing installed) a missing directory or file,
a symbolic link, or one that is not owned by root or is group- or world-writable. Each file is
opened without following links and checked on the descriptor it is then read from.

What may change them, and how: only root. Re-provisioning (the technician's file, root) rewrites
both. The CRLs of the chain are not anchors: each OS announcement carries the current ones, and
the root installer uses them only after it verified the announcement against ``hq-root.pub``
here (terminal.field.os_update). Signing keys rotate under the root key by delegation, with no
change here. Revocations of signing keys may come from the daemon's ``[hq] revoked_keys``: a
list from an untrusted source can only make the installer refuse more, never accept more.

Boxes provisioned before these anchors existed (their image's units can neither make nor write
:data:`TRUST_DIR`) are migrated once by :func:`load_or_seed`: the first root installer of this code
on such a box copies the daemon's copy as provisioning left it into root's releases tree
(``/var/opt/posterm/trust``, which those images' update unit may write and the daemon may not),
records that it did, and never does it again. That one copy trusts the daemon's files exactly as
every install did before anchors existed; every install after it trusts root's copy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from terminal.core.atomic import fsync_dir, write_atomic

TRUST_DIR = Path("/var/lib/posterm-trust")  # root:root 0755 (systemd/tmpfiles.d/posterm.conf)
ROOT_KEY = "hq-root.pub"
CHAIN = "ca-chain.pem"
MODE = 0o644  # readable by all, written by root only
DIR_MODE = 0o755
ROOT = (0, 0)
# The one-time migration (load_or_seed): where the seeded copy and its record go, under the root-
# owned releases tree (/var/opt/posterm, 0755 root), and what it is seeded from: the daemon's copy
# as provisioning wrote it (terminal.field.provision), never the paths its config names.
SEEDED = "trust"
SEED_RECORD = "trust-seeded.json"
DAEMON_COPY = {ROOT_KEY: Path("credentials/hq-root.pub"), CHAIN: Path("credentials/broker-ca.pem")}
MAX_ANCHOR_BYTES = 256 * 1024


class AnchorError(ValueError):
    """The root-owned anchors are missing, unreadable or writable by someone but root."""


@dataclass(frozen=True)
class Anchors:
    """HQ's anchors as read from the root-owned directory, checked."""

    directory: Path
    root_key: Ed25519PublicKey
    chain_pem: bytes


def write(directory: Path, root_key_pem: bytes, chain_pem: bytes) -> None:
    """Provisioning (root): write the anchors into ``directory``, root-owned, mode 0644 in a
    0755 directory, whatever was there before; then read them back as the installers will.
    AnchorError, with nothing written, for a key or chain that is not one."""
    _parse(root_key_pem, chain_pem, directory)
    if directory.is_symlink():
        raise AnchorError(f"{directory}: a symbolic link; the anchors need a real directory")
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chown(directory, *ROOT)
    directory.chmod(DIR_MODE)  # whatever the umask (the provisioning unit's is 0077)
    write_atomic(directory / ROOT_KEY, root_key_pem, MODE, ROOT)
    write_atomic(directory / CHAIN, chain_pem, MODE, ROOT)
    load(directory)


def load(directory: Path = TRUST_DIR) -> Anchors:
    """The anchors, or AnchorError naming what is wrong (the installers then install nothing)."""
    _check(directory, os.lstat, stat.S_ISDIR, "directory")
    return _parse(_read(directory / ROOT_KEY), _read(directory / CHAIN), directory)


def _parse(key_pem: bytes, chain_pem: bytes, directory: Path) -> Anchors:
    try:
        key = load_pem_public_key(key_pem)
    except ValueError as exc:
        raise AnchorError(f"{directory / ROOT_KEY}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AnchorError(f"{directory / ROOT_KEY}: not an Ed25519 public key")
    try:
        x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise AnchorError(f"{directory / CHAIN}: not a PEM certificate chain ({exc})") from None
    return Anchors(directory, key, chain_pem)


def _read(path: Path) -> bytes:
    with _open_unlinked(
            path,
            missing=f"{path} is missing: HQ's anchors are written by provisioning "
                    "(posterm provision, as root); provision the box again",
            unsafe=lambda why: f"{path}: cannot be opened safely ({why})") as file:
        _check(path, lambda _: os.fstat(file.fileno()), stat.S_ISREG, "regular file")
        return file.read()


def _open_unlinked(path: Path, missing: str, unsafe: Callable[[str], str]) -> BinaryIO:
    """``path`` opened for reading without following a link; refusals in the caller's words."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AnchorError(missing) from None
    except OSError as exc:  # ELOOP: a symbolic link
        raise AnchorError(unsafe(exc.strerror)) from None
    return os.fdopen(fd, "rb")


def _check(path: Path, stat_of: Callable[[Path], os.stat_result], is_kind: Callable[[int], bool],
           kind: str) -> None:
    try:
        st = stat_of(path)
    except FileNotFoundError:
        raise AnchorError(f"{path} is missing: HQ's anchors are written by provisioning "
                          "(posterm provision, as root); provision the box again") from None
    if not is_kind(st.st_mode):
        raise AnchorError(f"{path}: not a {kind} (a link or something else); refused")
    if st.st_uid != 0:
        raise AnchorError(f"{path}: owned by uid {st.st_uid}, not root; refused (someone but "
                          "root could have changed it)")
    if st.st_mode & 0o022:
        raise AnchorError(f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others than root "
                          "write it; refused")


def load_or_seed(trust_dir: Path, home: Path, state_dir: Path) -> tuple[Anchors, str | None]:
    """The anchors the root installers trust, and what was seeded if this call seeded them.

    In order: root's provisioned copy when ``trust_dir`` holds either file (checked by
    :func:`load`, every tampering refused); else the copy seeded once into ``home/trust``; else,
    when ``trust_dir`` exists (an image with anchors: tmpfiles makes it, provisioning fills it), a
    refusal: provision again. Only a box whose image predates the anchors (no ``trust_dir`` at all)
    that was never seeded (no ``home/trust-seeded.json``) is seeded, from the daemon's copy in
    ``state_dir/credentials``: the record is written first (the claim; a second installer at the
    same moment is refused), then the anchors, root:root 0644 in a 0755 directory renamed into
    place. AnchorError, nothing seeded, for a daemon copy that is missing, linked or not a key and
    chain; after a seeded copy is gone, never again."""
    if any(os.path.lexists(trust_dir / name) for name in (ROOT_KEY, CHAIN)):
        return load(trust_dir), None
    seeded = home / SEEDED
    if os.path.lexists(seeded):
        return load(seeded), None
    if os.path.lexists(trust_dir):
        return load(trust_dir), None  # refuses: the files are missing; provisioning writes them
    record = home / SEED_RECORD
    if os.path.lexists(record):
        raise AnchorError(
            f"{trust_dir} is missing and {seeded}, seeded once from the daemon's copy "
            f"({record}), is gone: it is never seeded again; provision the box again as root "
            "(posterm provision --from FILE)")
    _check(home, os.lstat, stat.S_ISDIR, "directory")  # root's releases tree holds the claim
    return _seed(seeded, record, state_dir)


def _seed(seeded: Path, record: Path, state_dir: Path) -> tuple[Anchors, str]:
    credentials = state_dir / DAEMON_COPY[ROOT_KEY].parent
    if os.path.islink(credentials) or not credentials.is_dir():
        raise AnchorError(f"no anchors to trust and nothing to seed them from: {credentials} is "
                          "not the daemon's credentials directory; provision the box again")
    pems = {name: _read_daemon_copy(state_dir / relative)
            for name, relative in DAEMON_COPY.items()}
    try:
        _parse(pems[ROOT_KEY], pems[CHAIN], credentials)
    except AnchorError as exc:
        raise AnchorError(f"no anchors to trust and the daemon's copy is not fit to seed them "
                          f"({exc}); provision the box again") from None
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    facts = {"seeded_at": now, "into": str(seeded),
             "from": {name: str(state_dir / relative) for name, relative in DAEMON_COPY.items()},
             "sha256": {name: hashlib.sha256(pem).hexdigest() for name, pem in pems.items()}}
    try:  # the claim: whoever creates the record seeds; it is never removed once seeded
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     MODE)
    except FileExistsError:
        raise AnchorError(f"{record}: another installer is seeding the anchors; try again"
                          ) from None
    except OSError as exc:  # EROFS: an old image's OS-update unit may not write the releases tree
        raise AnchorError(f"no anchors to trust, and this installer may not seed them into "
                          f"{record.parent} ({exc.strerror}): the next application update "
                          "seeds them, or provision the box again") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchown(fd, *ROOT)
            os.fchmod(fd, MODE)
            out.write(json.dumps(facts, sort_keys=True, indent=1) + "\n")
            out.flush()
            os.fsync(fd)
        fsync_dir(record.parent)
        staging = seeded.with_name(f".{seeded.name}.new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=DIR_MODE)
        os.chown(staging, *ROOT)
        staging.chmod(DIR_MODE)
        for name, pem in pems.items():
            write_atomic(staging / name, pem, MODE, ROOT)
        os.rename(staging, seeded)
        fsync_dir(seeded.parent)
    except OSError as exc:  # nothing seeded: give the claim back, so a later install may
        record.unlink(missing_ok=True)
        raise AnchorError(f"seeding the anchors into {seeded} failed ({exc}); nothing seeded"
                          ) from None
    return load(seeded), (
        f"anchors: {seeded} seeded once from the daemon's copy in {credentials} (this box "
        f"predates root's anchors; recorded in {record}, never again; hq-root.pub sha256 "
        f"{facts['sha256'][ROOT_KEY][:16]}); provisioning as root replaces it")


def _read_daemon_copy(path: Path) -> bytes:
    """A file of the daemon's copy: opened without following a link, a regular file, bounded."""
    with _open_unlinked(
            path,
            missing=f"no anchors to trust and nothing to seed them from: {path} is missing; "
                    "provision the box again",
            unsafe=lambda why: f"no anchors to trust and {path}, the daemon's copy, cannot be "
                               f"opened safely ({why}); provision the box again") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise AnchorError(f"{path}: not a regular file; not seeded from it")
        data = file.read(MAX_ANCHOR_BYTES + 1)
    if len(data) > MAX_ANCHOR_BYTES:
        raise AnchorError(f"{path}: larger than {MAX_ANCHOR_BYTES} bytes; not seeded from it")
    return data
