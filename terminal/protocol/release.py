"""Software releases, signed like bundles: by a signing key a root key delegated
(terminal.protocol.bundle's chain, revocation list included), with an issue time and an expiry.
Two kinds, checked by one function (:func:`_open_dated`):

- an application release (``release.json`` in an update)::

    {"release": b64(canonical manifest), "signature": b64(Ed25519 by the signing key),
     "delegation": {"statement": ..., "signature": ...}}

  The manifest is ``{package, version, files: {wheel name: sha256 hex}, issued_at, expires_at,
  key_id}``.
- an operating-system release (HQ's retained announcement on ``{root}/os/chain``,
  ``posterm-hq os publish``): ``{"os_release": b64(...), "signature", "delegation"}`` over
  ``{compatible, version, url, size, sha256, crls, issued_at, expires_at, key_id}``: where the
  RAUC bundle is, its size and digest (checked before RAUC sees the file), and the current CRLs
  of HQ's CA (issuing and root, PEM) that RAUC's ``check-crl`` needs to refuse a revoked bundle
  signer. RAUC then checks the bundle's own X.509 signature against HQ's CA chain.

The root key stays offline: HQ signs releases with the delegated key that signs bundles
(``posterm-hq keygen``), and the signature covers its own context, so a release can never pass for
a bundle, a member state or the other kind of release.

Time: a release is refused once expired at the latest time the terminal trusts, which is the later
of its clock and the issue time of the release it runs (a Pi without RTC that boots in 1970 still
knows a release is not older than the one it installed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.protocol import canonical
from terminal.protocol.bundle import (
    BundleMalformed,
    Expired,
    StaleVersion,
    TrustStore,
    _iso,
    _object,
    _time,
    check_signing_key,
    key_id,
    open_signed,
    seal_signed,
)

MANIFEST = "release.json"  # the signed manifest's file name in an update
RELEASE_CONTEXT = b"posterm release v1\x00"
OS_RELEASE_CONTEXT = b"posterm os-release v1\x00"
MAX_LIFETIME = timedelta(days=180)  # a release must be installed within it, or re-signed
_KEYS = ("package", "version", "files", "issued_at", "expires_at", "key_id")
_OS_KEYS = ("compatible", "version", "url", "size", "sha256", "crls", "issued_at", "expires_at",
            "key_id")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_BUNDLE_SIZE = 1 << 30  # RAUC's max-bundle-download-size on the box (system.conf)


@dataclass(frozen=True)
class Release:
    package: str
    version: str
    files: dict[str, str]
    issued_at: datetime
    expires_at: datetime
    key_id: str


@dataclass(frozen=True)
class OsRelease:
    compatible: str  # RAUC's compatible: the boxes' system.conf must say the same
    version: str
    url: str  # http(s) URL of the RAUC bundle
    size: int
    sha256: str
    crls: str  # PEM: the current CRLs of HQ's issuing CA and root, for RAUC's check-crl
    issued_at: datetime
    expires_at: datetime
    key_id: str


def _lifetime(issued_at: datetime, expires_at: datetime) -> None:
    if not issued_at < expires_at <= issued_at + MAX_LIFETIME:
        raise ValueError(f"a release expires after it is issued, within {MAX_LIFETIME.days} days")


def sign_release(package: str, version: str, files: Mapping[str, str], issued_at: datetime,
                 expires_at: datetime, signing: Ed25519PrivateKey,
                 delegation: Mapping[str, str]) -> bytes:
    """HQ side: the signed ``release.json``; ValueError for an impossible lifetime."""
    _lifetime(issued_at, expires_at)
    raw = canonical.dumps({
        "package": package, "version": version, "files": dict(files),
        "issued_at": _iso(issued_at), "expires_at": _iso(expires_at),
        "key_id": key_id(signing.public_key()),
    })
    return seal_signed("release", RELEASE_CONTEXT, raw, signing, delegation)


def sign_os_release(release: OsRelease, signing: Ed25519PrivateKey,
                    delegation: Mapping[str, str]) -> bytes:
    """HQ side: the signed announcement of an OS bundle; ValueError for an impossible lifetime
    or a field a terminal would refuse."""
    _lifetime(release.issued_at, release.expires_at)
    raw = canonical.dumps({
        "compatible": release.compatible, "version": release.version, "url": release.url,
        "size": release.size, "sha256": release.sha256, "crls": release.crls,
        "issued_at": _iso(release.issued_at), "expires_at": _iso(release.expires_at),
        "key_id": key_id(signing.public_key()),
    })
    try:
        _os_fields(canonical.loads(raw))
    except BundleMalformed as exc:
        raise ValueError(str(exc)) from None
    return seal_signed("os_release", OS_RELEASE_CONTEXT, raw, signing, delegation)


def _open_dated(wire: bytes, trust: TrustStore, name: str, context: bytes,
                keys: tuple[str, ...], now: datetime,
                floor: datetime | None) -> tuple[dict[str, Any], datetime, datetime]:
    """The fields of a release of either kind once its chain, key and times hold: signed by a
    delegated key under the root, not revoked, issued within the key's delegation, not expired
    by the latest trusted time, not issued before ``floor``."""
    if now.tzinfo is None or (floor is not None and floor.tzinfo is None):
        raise ValueError("now and floor must carry a time zone")
    what = name.replace("_", " ")
    delegation, raw = open_signed(wire, trust, name, context)
    data = _object(raw, what, keys)
    issued_at = _time(data["issued_at"], f"{what} issued_at")
    expires_at = _time(data["expires_at"], f"{what} expires_at")
    if not issued_at < expires_at <= issued_at + MAX_LIFETIME:
        raise BundleMalformed(f"a {what} lives at most {MAX_LIFETIME.days} days")
    latest = max(now, floor) if floor is not None else now
    check_signing_key(delegation, trust, data["key_id"], issued_at, what, latest_trusted=latest)
    if expires_at <= latest:
        raise Expired(f"{what} expired at {expires_at.isoformat()} (latest trusted time "
                      f"{latest.isoformat()})")
    if floor is not None and issued_at < floor:
        raise StaleVersion(f"{what} issued {issued_at.isoformat()}, before the running one "
                           f"({floor.isoformat()})")
    return data, issued_at, expires_at


def verify_release(wire: bytes, trust: TrustStore, now: datetime,
                   floor: datetime | None = None) -> Release:
    """The release in ``wire`` if its chain, key and times hold; else a BundleRejected (its
    reason codes: bad_signature, unknown_key, key_revoked, key_not_valid, expired,
    stale_version, malformed). ``floor``: the issue time of the running release."""
    data, issued_at, expires_at = _open_dated(wire, trust, "release", RELEASE_CONTEXT, _KEYS,
                                              now, floor)
    files = data["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleMalformed("release files must map names to sha256 hex")
    if not isinstance(data["package"], str) or not isinstance(data["version"], str):
        raise BundleMalformed("release package and version must be strings")
    return Release(data["package"], data["version"], dict(files), issued_at, expires_at,
                   data["key_id"])


def verify_os_release(wire: bytes, trust: TrustStore, now: datetime,
                      floor: datetime | None = None) -> OsRelease:
    """The OS release in ``wire`` if its chain, key and times hold (as :func:`verify_release`),
    else a BundleRejected. ``floor``: the issue time of the OS release the box last installed."""
    data, issued_at, expires_at = _open_dated(wire, trust, "os_release", OS_RELEASE_CONTEXT,
                                              _OS_KEYS, now, floor)
    _os_fields(data)
    return OsRelease(data["compatible"], data["version"], data["url"], data["size"],
                     data["sha256"], data["crls"], issued_at, expires_at, data["key_id"])


def _os_fields(data: dict[str, Any]) -> None:
    for name in ("compatible", "version", "url", "crls"):
        if not isinstance(data[name], str) or not data[name]:
            raise BundleMalformed(f"os release {name} must be a non-empty string")
    if not data["url"].startswith(("https://", "http://")):
        raise BundleMalformed(f"os release url {data['url']!r} is not an http(s) URL")
    size = data["size"]
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_BUNDLE_SIZE:
        raise BundleMalformed(f"os release size must be 1..{MAX_BUNDLE_SIZE} bytes")
    if not isinstance(data["sha256"], str) or not _SHA256.fullmatch(data["sha256"]):
        raise BundleMalformed("os release sha256 must be 64 lower-case hex digits")
    if "-----BEGIN X509 CRL-----" not in data["crls"]:
        raise BundleMalformed("os release crls must hold PEM CRLs")
