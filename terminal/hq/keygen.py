"""`posterm-hq keygen DIR`: the root key (once) and a fresh signing key with its delegation.

Files in DIR: ``root.key`` (private, 0600; keep offline), ``root.pub`` (provision on terminals),
``signing-{id}.key`` (0600) and ``delegation-{id}.json``, plus ``signing.key`` and
``delegation.json`` naming the newest pair. Running it again rotates the signing key.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.protocol import bundle, canonical
from terminal.protocol.keys import load_private, private_pem, public_pem


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="where the keys live (created if missing)")
    parser.add_argument("--days", type=int, default=90,
                        help="how long the new signing key may sign bundles (default 90)")


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("keygen: --days must be at least 1", file=sys.stderr)
        return 2
    directory: Path = args.directory
    directory.mkdir(parents=True, exist_ok=True)
    root_file = directory / "root.key"
    if root_file.exists():
        try:
            root = load_private(root_file)
        except ValueError as exc:
            print(f"keygen: {exc}", file=sys.stderr)
            return 1
    else:
        root = Ed25519PrivateKey.generate()
        write_private(root_file, private_pem(root))
        (directory / "root.pub").write_bytes(public_pem(root.public_key()))
        print(f"root key {bundle.key_id(root.public_key())}: {root_file} (keep it offline)")
    signing = Ed25519PrivateKey.generate()
    now = datetime.now(UTC).replace(microsecond=0)
    delegation = bundle.delegate(root, signing.public_key(), now, now + timedelta(days=args.days))
    wire = canonical.dumps(delegation.to_wire())
    for name in (f"signing-{delegation.key_id}.key", "signing.key"):
        write_private(directory / name, private_pem(signing))
    for name in (f"delegation-{delegation.key_id}.json", "delegation.json"):
        (directory / name).write_bytes(wire)
    print(f"signing key {delegation.key_id}: valid {delegation.not_before.isoformat()} to "
          f"{delegation.not_after.isoformat()}")
    return 0
