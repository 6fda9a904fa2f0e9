"""`posterm-hq release sign DIR --keys KEYS --version V`: sign a wheelhouse as a release.

Writes ``DIR/release.json`` (terminal.protocol.release): the sha256 of every wheel in DIR, the
package and version, an issue time and an expiry, signed with the delegated signing key in KEYS
(``posterm-hq keygen``; the root key stays offline). Terminals verify it as they verify bundles,
and refuse it once expired, when its key is revoked, or when it is older than what they run.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.core.digest import sha256_file
from terminal.hq.member_ops.publish import Signer
from terminal.protocol.release import MANIFEST, MAX_LIFETIME, sign_release

DAYS = 30


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    sign = actions.add_parser("sign", help="write release.json for the wheels in DIR")
    sign.add_argument("directory", type=Path, help="the wheelhouse (posterm wheel and its deps)")
    sign.add_argument("--keys", type=Path, required=True,
                      help="directory made by keygen (signing.key, delegation.json)")
    sign.add_argument("--version", required=True, help="the release's version, e.g. 0.3.0")
    sign.add_argument("--package", default="posterm")
    sign.add_argument("--days", type=int, default=DAYS,
                      help=f"how long terminals may install it (default {DAYS}, at most "
                      f"{MAX_LIFETIME.days})")


def write_release(directory: Path, package: str, version: str, signing: Ed25519PrivateKey,
                  delegation: dict[str, str], issued_at: datetime, expires_at: datetime) -> Path:
    """Hash the wheels in ``directory`` and write its signed release.json."""
    files = {path.name: sha256_file(path) for path in sorted(directory.glob("*.whl"))}
    target = directory / MANIFEST
    target.write_bytes(sign_release(package, version, files, issued_at, expires_at, signing,
                                    delegation))
    return target


def run(args: argparse.Namespace) -> int:
    if not list(args.directory.glob("*.whl")):
        print(f"release sign: {args.directory}: no wheels to sign", file=sys.stderr)
        return 1
    try:
        signer = Signer.load(args.keys)
        now = datetime.now(UTC).replace(microsecond=0)
        write_release(args.directory, args.package, args.version, signer.key,
                      signer.delegation, now, now + timedelta(days=args.days))
    except (OSError, ValueError) as exc:
        print(f"release sign: refused: {exc}", file=sys.stderr)
        return 1
    print(f"signed {args.package} {args.version}, valid {args.days} days: "
          f"{args.directory / 'release.json'}", file=sys.stderr)
    return 0
