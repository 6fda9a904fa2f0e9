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
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from terminal.core.atomic import write_atomic

TRUST_DIR = Path("/var/lib/posterm-trust")  # root:root 0755 (systemd/tmpfiles.d/posterm.conf)
ROOT_KEY = "hq-root.pub"
CHAIN = "ca-chain.pem"
MODE = 0o644  # readable by all, written by root only
DIR_MODE = 0o755
ROOT = (0, 0)


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
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AnchorError(f"{path} is missing: HQ's anchors are written by provisioning "
                          "(posterm provision, as root); provision the box again") from None
    except OSError as exc:  # ELOOP: a symbolic link
        raise AnchorError(f"{path}: cannot be opened safely ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        _check(path, lambda _: os.fstat(file.fileno()), stat.S_ISREG, "regular file")
        return file.read()


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
