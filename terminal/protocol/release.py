"""Software release manifests, signed like bundles: by a signing key a root key delegated
(terminal.protocol.bundle's chain, revocation list included), with an issue time and an expiry.

Wire form (``release.json`` in an update)::

    {"release": b64(canonical manifest), "signature": b64(Ed25519 by the signing key),
     "delegation": {"statement": ..., "signature": ...}}

The manifest is ``{package, version, files: {wheel name: sha256 hex}, issued_at, expires_at,
key_id}``. The root key stays offline: HQ signs releases with the delegated key that signs bundles
(``posterm-hq keygen``), and the signature covers its own context, so a release can never pass for
a bundle or a member state.

Time: a release is refused once expired at the latest time the terminal trusts, which is the later
of its clock and the issue time of the release it runs (a Pi without RTC that boots in 1970 still
knows a release is not older than the one it installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.protocol import canonical
from terminal.protocol.bundle import (
    BundleMalformed,
    Expired,
    StaleVersion,
    TrustStore,
    _b64,
    _iso,
    _object,
    _time,
    check_signing_key,
    key_id,
    open_signed,
)

MANIFEST = "release.json"  # the signed manifest's file name in an update
RELEASE_CONTEXT = b"posterm release v1\x00"
MAX_LIFETIME = timedelta(days=180)  # a release must be installed within it, or re-signed
_KEYS = ("package", "version", "files", "issued_at", "expires_at", "key_id")


@dataclass(frozen=True)
class Release:
    package: str
    version: str
    files: dict[str, str]
    issued_at: datetime
    expires_at: datetime
    key_id: str


def sign_release(package: str, version: str, files: Mapping[str, str], issued_at: datetime,
                 expires_at: datetime, signing: Ed25519PrivateKey,
                 delegation: Mapping[str, str]) -> bytes:
    """HQ side: the signed ``release.json``; ValueError for an impossible lifetime."""
    if not issued_at < expires_at <= issued_at + MAX_LIFETIME:
        raise ValueError(f"a release expires after it is issued, within {MAX_LIFETIME.days} days")
    raw = canonical.dumps({
        "package": package, "version": version, "files": dict(files),
        "issued_at": _iso(issued_at), "expires_at": _iso(expires_at),
        "key_id": key_id(signing.public_key()),
    })
    return canonical.dumps({"release": _b64(raw),
                            "signature": _b64(signing.sign(RELEASE_CONTEXT + raw)),
                            "delegation": dict(delegation)})


def verify_release(wire: bytes, trust: TrustStore, now: datetime,
                   floor: datetime | None = None) -> Release:
    """The release in ``wire`` if its chain, key and times hold; else a BundleRejected (its
    reason codes: bad_signature, unknown_key, key_revoked, key_not_valid, expired,
    stale_version, malformed). ``floor``: the issue time of the running release."""
    if now.tzinfo is None or (floor is not None and floor.tzinfo is None):
        raise ValueError("now and floor must carry a time zone")
    delegation, raw = open_signed(wire, trust, "release", RELEASE_CONTEXT)
    data = _object(raw, "release", _KEYS)
    issued_at = _time(data["issued_at"], "release issued_at")
    expires_at = _time(data["expires_at"], "release expires_at")
    if not issued_at < expires_at <= issued_at + MAX_LIFETIME:
        raise BundleMalformed(f"a release lives at most {MAX_LIFETIME.days} days")
    latest = max(now, floor) if floor is not None else now
    check_signing_key(delegation, trust, data["key_id"], issued_at, "release",
                      latest_trusted=latest)
    if expires_at <= latest:
        raise Expired(f"release expired at {expires_at.isoformat()} (latest trusted time "
                      f"{latest.isoformat()})")
    if floor is not None and issued_at < floor:
        raise StaleVersion(f"release issued {issued_at.isoformat()}, before the running one "
                           f"({floor.isoformat()})")
    files = data["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleMalformed("release files must map names to sha256 hex")
    if not isinstance(data["package"], str) or not isinstance(data["version"], str):
        raise BundleMalformed("release package and version must be strings")
    return Release(data["package"], data["version"], dict(files), issued_at, expires_at,
                   data["key_id"])
