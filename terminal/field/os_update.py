"""Operating-system updates over MQTT: HQ announces a RAUC bundle, the box fetches, checks and
installs it (docs/field.md, section 6).

HQ publishes a signed OS release, retained, on ``{root}/os/chain`` (``posterm-hq os publish``;
terminal.protocol.release.OsRelease): the bundle's URL, size and sha256, and the current CRLs of
HQ's CA. Two halves on the box, as for application updates:

- the daemon (unprivileged, terminal.sync.os_releases) verifies the announcement with HQ's key
  chain, refuses one for another ``compatible``, an expired or older one, downloads the bundle
  (:func:`fetch`: at most the announced size, the sha256 checked) and leaves bundle and
  announcement in ``{state_dir}/updates/os-ready/``, which ``posterm-os-update.path`` watches;
- the root installer (:func:`install_ready`, ``posterm update os-install``) copies them away from
  the daemon's reach, verifies the announcement and the digest again against the root-owned
  anchors (terminal.field.anchors), writes RAUC's keyring (HQ's CA chain from those anchors plus
  the announced CRLs, trusted only because the announcement carrying them verified: RAUC's
  ``check-crl`` refuses a bundle signed by a revoked signer, and every bundle once a CRL has
  expired) and runs ``rauc install``, which
  checks the bundle's own signature against that keyring, writes the other slot and puts it on
  trial (ab-boot). The box then reboots into it once (``ab-boot reboot``). It judges an
  announcement's age by its own record of the release installed last (:data:`ROOT_RECORD_DIR`),
  never by the daemon's copy, which a compromised daemon could delete to replay an older one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from terminal.core.atomic import fsync_dir, write_atomic
from terminal.core.digest import sha256_file
from terminal.protocol.bundle import BundleRejected, StaleVersion, TrustStore
from terminal.protocol.release import OsRelease, verify_os_release

ANNOUNCEMENT = "os-release.json"  # the signed announcement, beside the bundle it names
BUNDLE = "os.raucb"
INSTALLED = "os-installed.json"  # in the state directory: the last OS release installed
ROOT_RECORD_DIR = Path("/var/lib/rauc")  # root's copy of INSTALLED: the root installer's floor
COMPATIBLE = "posterm-rpi-arm64"  # image/config POSTERM_RAUC_COMPATIBLE, system.conf's
KEYRING = Path("/var/lib/rauc/posterm-keyring.pem")  # system.conf's [keyring] path (root's)
FETCH_TIMEOUT = 60.0  # seconds without a byte before a download is given up


class OsUpdateError(ValueError):
    """An OS update refused or failed; RAUC was not run, or refused it (its words included)."""


class AlreadyInstalled(OsUpdateError):
    """The announced release is the one installed last (kept, or fallen back from): not again,
    so a slot that failed its trial is not retried in a loop; HQ announces a newer one."""


class Superseded(OsUpdateError):
    """The announcement was issued before the release installed last: refused, and for the daemon
    no fault to report (a store staged ahead of the chain installs a release the chain-wide
    announcement then trails)."""


@dataclass(frozen=True)
class Installed:
    version: str
    issued_at: datetime


def installed(state_dir: Path) -> Installed | None:
    """The OS release this box last installed (the floor for the next), if any."""
    try:
        data = json.loads((state_dir / INSTALLED).read_text(encoding="utf-8"))
        return Installed(data["version"], datetime.fromisoformat(data["issued_at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OsUpdateError(f"{state_dir / INSTALLED}: unreadable: {exc}") from None


def check(wire: bytes, trust: TrustStore, state_dir: Path, now: datetime,
          compatible: str = COMPATIBLE) -> OsRelease:
    """The announced release if HQ's chain vouches for it, it is for this box, and it is not
    older than the one installed; else OsUpdateError (a BundleRejected's words inside)."""
    last = installed(state_dir)
    try:
        release = verify_os_release(wire, trust, now, last.issued_at if last else None)
    except StaleVersion as exc:
        raise Superseded(f"announcement refused: {exc} (OS release {last.version if last else '?'}"
                         " is installed)") from None
    except BundleRejected as exc:
        raise OsUpdateError(f"announcement refused: {exc}") from None
    if release.compatible != compatible:
        raise OsUpdateError(f"bundle for {release.compatible!r}, this box is {compatible!r}")
    if last is not None and (release.version, release.issued_at) == (last.version,
                                                                      last.issued_at):
        raise AlreadyInstalled(f"OS release {release.version} is installed already")
    return release


def fetch(release: OsRelease, directory: Path, timeout: float = FETCH_TIMEOUT) -> Path:
    """Download the announced bundle into ``directory`` (as BUNDLE): no more than its size, its
    sha256 checked; OsUpdateError and nothing left otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".fetch-", delete=False) as part:
        try:
            with urllib.request.urlopen(release.url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > release.size:
                        raise OsUpdateError(f"{release.url}: more than the announced "
                                            f"{release.size} bytes")
                    digest.update(chunk)
                    part.write(chunk)
            if size != release.size:
                raise OsUpdateError(f"{release.url}: {size} bytes, announced {release.size}")
            if digest.hexdigest() != release.sha256:
                raise OsUpdateError(f"{release.url}: sha256 {digest.hexdigest()}, announced "
                                    f"{release.sha256}")
        except (OSError, urllib.error.URLError, OsUpdateError) as exc:
            Path(part.name).unlink(missing_ok=True)
            if isinstance(exc, OsUpdateError):
                raise
            raise OsUpdateError(f"{release.url}: download failed: {exc}") from None
    target = directory / BUNDLE
    Path(part.name).replace(target)
    fsync_dir(directory)
    return target


def keyring(chain_pem: bytes, crls_pem: str, now: datetime) -> bytes:
    """RAUC's keyring: HQ's CA chain and a current CRL of every CA in it, each CRL's signature
    checked against its CA; OsUpdateError for a missing, foreign or expired CRL (RAUC would
    refuse every bundle with it)."""
    try:
        cas = x509.load_pem_x509_certificates(chain_pem)
        crls = [x509.load_pem_x509_crl(block.encode())
                for block in _pem_blocks(crls_pem, "X509 CRL")]
    except ValueError as exc:
        raise OsUpdateError(f"unreadable CA chain or CRL: {exc}") from None
    for ca in cas:
        own = [crl for crl in crls if crl.issuer == ca.subject]
        public_key = ca.public_key()
        if not own or not isinstance(public_key, ec.EllipticCurvePublicKey) or not all(
                crl.is_signature_valid(public_key) for crl in own):
            raise OsUpdateError(f"no CRL signed by {ca.subject.rfc4514_string()} announced")
        if any(crl.next_update_utc is None or crl.next_update_utc <= now for crl in own):
            raise OsUpdateError(f"the CRL of {ca.subject.rfc4514_string()} has expired: HQ must "
                                "renew it (posterm-hq ca crl / ca root-crl) and announce again")
    if len(crls) != len(cas):
        raise OsUpdateError("a CRL of a CA outside HQ's chain was announced")
    return chain_pem.rstrip(b"\n") + b"\n" + "".join(
        f"{block}\n" for block in _pem_blocks(crls_pem, "X509 CRL")).encode()


def _pem_blocks(text: str, kind: str) -> list[str]:
    begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
    blocks, rest = [], text
    while begin in rest:
        start = rest.index(begin)
        stop = rest.find(end, start)
        if stop < 0:
            raise ValueError(f"an unterminated {kind} block")
        blocks.append(rest[start:stop + len(end)])
        rest = rest[stop + len(end):]
    return blocks


def leave_ready(wire: bytes, bundle: Path, ready: Path) -> None:
    """Daemon side: hand bundle and announcement to the root installer (the path unit fires on
    the announcement, written last)."""
    ready.mkdir(parents=True, exist_ok=True)
    bundle.replace(ready / BUNDLE)
    write_atomic(ready / ANNOUNCEMENT, wire, 0o640)


@dataclass(frozen=True)
class Done:
    release: OsRelease
    rauc_output: str


def install_ready(ready: Path, trust: TrustStore, state_dir: Path, *, chain: bytes,
                  now: datetime | None = None, keyring_file: Path = KEYRING,
                  rauc: tuple[str, ...] = ("rauc",), compatible: str = COMPATIBLE,
                  timeout: float = 3600.0, record_dir: Path | None = None) -> Done:
    """Root side: take what the daemon left in ``ready`` (emptied either way), check it again,
    write RAUC's keyring and run ``rauc install``. OsUpdateError when anything is refused.

    ``trust`` and ``chain`` (HQ's CA chain, PEM) are the root-owned anchors
    (terminal.field.anchors), never the daemon's copies. ``record_dir`` (root's,
    :data:`ROOT_RECORD_DIR` from the command line) keeps the record of the release installed last
    that the announcement must not be older than; the daemon's ``state_dir`` gets a copy for its
    own check, never read here when ``record_dir`` is given."""
    now = now or datetime.now(UTC)
    with tempfile.TemporaryDirectory(dir=state_dir, prefix=".os-install-") as private:
        work = Path(private)
        try:
            wire = (ready / ANNOUNCEMENT).read_bytes()
            shutil.move(ready / BUNDLE, work / BUNDLE)  # out of the daemon's reach
        except OSError as exc:
            raise OsUpdateError(f"{ready}: no announced bundle to install: {exc}") from None
        finally:
            for leftover in (ready / ANNOUNCEMENT, ready / BUNDLE):
                leftover.unlink(missing_ok=True)
        release = check(wire, trust, record_dir or state_dir, now, compatible)
        bundle = work / BUNDLE
        if bundle.stat().st_size != release.size or sha256_file(bundle) != release.sha256:
            raise OsUpdateError(f"{ready / BUNDLE} is not the announced bundle (size or sha256)")
        write_atomic(keyring_file, keyring(chain, release.crls, now), 0o644)
        result = subprocess.run([*rauc, "install", str(bundle)], capture_output=True,
                                text=True, timeout=timeout, check=False)
        said = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            last = said.splitlines()[-3:] if said else [f"exit {result.returncode}"]
            raise OsUpdateError(f"rauc install refused {release.version}: " + " / ".join(last))
    record = json.dumps(
        {"version": release.version, "issued_at": release.issued_at.isoformat()}).encode()
    for directory in {record_dir or state_dir, state_dir}:
        write_atomic(directory / INSTALLED, record, 0o644)
    return Done(release, said)
