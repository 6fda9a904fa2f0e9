"""`posterm-hq os publish BUNDLE --url URL ...`: roll an operating-system update out to the boxes.

Announces the RAUC bundle built by ``image/os-bundle.sh`` (put where the boxes can download it,
at URL) as a signed OS release (terminal.protocol.release.OsRelease), retained on
``{root}/os/chain``: its size and sha256, the current CRLs of HQ's CA (the broker's CRL, which
``posterm-hq ca crl`` renews daily, and the root's ``root.crl``), signed like application
releases by the delegated signing key (``posterm-hq keygen``). Every box fetches it, checks it,
and installs it with RAUC into its other slot (terminal/field/os_update.py). Refused before
anything is published: a CRL missing, not of HQ's chain, or ending before the announcement does
(RAUC would refuse the bundle on the boxes), or a bundle RAUC itself (with the boxes' config and
that keyring) does not accept.

Staged to one store first (``--store S001``), like rules bundles: retained on
``{root}/os/store/{store}``, which the broker ACL lets only that store's terminals read; they take
the newest of their store's and the chain's announcements (terminal.sync.os_releases). Once the
chain has it too, ``posterm-hq os withdraw --store S001`` clears the staged one (a box in that
store that installed it passes over the older chain-wide one quietly either way).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from terminal.core.digest import sha256_file
from terminal.field.os_update import COMPATIBLE, OsUpdateError, keyring
from terminal.hq.bundles import publish_retained
from terminal.hq.member_ops.publish import Signer
from terminal.hq.mqtt_options import add_broker_options, mqtt_config
from terminal.protocol.bundle import BundleRejected, TrustStore
from terminal.protocol.keys import load_public
from terminal.protocol.mqtt import MqttError
from terminal.protocol.release import MAX_LIFETIME, OsRelease, sign_os_release, verify_os_release
from terminal.protocol.topics import Topics

DAYS = 14
SYSTEM_CONF = Path(__file__).resolve().parents[2] / "image/filesystem/etc/rauc/system.conf"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    publish = actions.add_parser("publish", help="announce an OS bundle to every box (or to one "
                                 "store's first, --store), retained")
    publish.add_argument("bundle", type=Path, help="the RAUC bundle (image/os-bundle.sh)")
    publish.add_argument("--url", required=True, help="where the boxes download it (http/https)")
    publish.add_argument("--version", required=True, help="the OS release's version")
    publish.add_argument("--keys", type=Path, required=True,
                         help="directory made by keygen (signing.key, delegation.json, root.pub)")
    publish.add_argument("--chain", type=Path, required=True,
                         help="HQ's CA chain (ca/chain.pem), the boxes' RAUC trust")
    publish.add_argument("--crl", type=Path, default=Path("/etc/mosquitto/posterm/crl.pem"),
                         help="the issuing CA's current CRL (posterm-hq ca crl)")
    publish.add_argument("--root-crl", type=Path, required=True,
                         help="the root's CRL (ca/root.crl, renewed by ca root-crl)")
    publish.add_argument("--days", type=int, default=DAYS,
                         help=f"how long boxes may install it (default {DAYS})")
    publish.add_argument("--store", help="stage it to this store's boxes only (os/store/STORE); "
                         "default: every box (os/chain)")
    publish.add_argument("--compatible", default=COMPATIBLE)
    publish.add_argument("--rauc-conf", type=Path, default=SYSTEM_CONF,
                         help="the boxes' RAUC config, to check the bundle as they will "
                         "(default: the checkout's image/filesystem/etc/rauc/system.conf)")
    publish.add_argument("--timeout", type=float, default=30.0)
    add_broker_options(publish, "posterm-hq-os", ca="--broker-ca")
    withdraw = actions.add_parser("withdraw", help="clear a retained announcement: one store's "
                                  "staged one (--store), or the chain's")
    withdraw.add_argument("--store", help="the store whose staged announcement goes (default: "
                          "the chain-wide one)")
    withdraw.add_argument("--timeout", type=float, default=30.0)
    add_broker_options(withdraw, "posterm-hq-os", ca="--broker-ca")


def announce(bundle: Path, url: str, version: str, signer: Signer, chain: Path, crls: str,
             days: int, compatible: str = COMPATIBLE, rauc_conf: Path = SYSTEM_CONF,
             now: datetime | None = None) -> tuple[OsRelease, bytes]:
    """The signed announcement of ``bundle``; OsUpdateError or ValueError when the boxes would
    refuse it."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    if not 1 <= days <= MAX_LIFETIME.days:
        raise ValueError(f"--days must be 1..{MAX_LIFETIME.days}")
    expires = now + timedelta(days=days)
    ring = keyring(chain.read_bytes(), crls, now)
    ends = min(x509.load_pem_x509_crl(block).next_update_utc or now
               for block in _crl_blocks(crls))
    if ends < expires:
        raise OsUpdateError(f"a CRL ends {ends:%Y-%m-%d %H:%M}Z, before the announcement "
                            f"({expires:%Y-%m-%d %H:%M}Z): renew it (ca crl --days, ca root-crl) "
                            "or announce for fewer --days")
    _rauc_accepts(bundle, ring, rauc_conf)
    release = OsRelease(compatible, version, url, bundle.stat().st_size, sha256_file(bundle),
                        crls, now, expires, "")
    return release, sign_os_release(release, signer.key, signer.delegation)


def _crl_blocks(crls: str) -> list[bytes]:
    end = "-----END X509 CRL-----"
    return [(part + end).strip().encode() for part in crls.split(end) if "BEGIN X509 CRL" in part]


def _rauc_accepts(bundle: Path, ring: bytes, conf: Path) -> None:
    """`rauc info` with the boxes' config (formats, compatible, check-crl) and that keyring."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as keyring_file:
        keyring_file.write(ring)
        keyring_file.flush()
        result = subprocess.run(["rauc", "info", "--conf", str(conf), "--keyring",
                                 keyring_file.name, str(bundle)],
                                capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["(no words)"])[-1]
        raise OsUpdateError(f"{bundle}: RAUC, as the boxes run it, refuses it: {said}")


def run(args: argparse.Namespace) -> int:
    if args.action == "withdraw":
        return _withdraw(args)
    try:
        topic = Topics(args.topic_root).os_release(args.store)
        signer = Signer.load(args.keys)
        crls = args.crl.read_text() + args.root_crl.read_text()
        release, wire = announce(args.bundle, args.url, args.version, signer, args.chain, crls,
                                 args.days, args.compatible, args.rauc_conf)
        trust = TrustStore.of([load_public(args.keys / "root.pub")])
        verify_os_release(wire, trust, datetime.now(UTC))  # what the boxes check, first here
        asyncio.run(publish_retained(mqtt_config(args, backoff_max=2.0, ca=args.broker_ca),
                                     [(topic, wire)], args.timeout))
    except (OSError, ValueError, MqttError, BundleRejected) as exc:
        print(f"os publish: refused: {exc}", file=sys.stderr)
        return 1
    print(f"announced OS {release.version} ({release.size} bytes, sha256 {release.sha256[:12]}…) "
          f"on {topic}, retained, until {release.expires_at:%Y-%m-%d %H:%M}Z", file=sys.stderr)
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    """An empty retained message clears the announcement; boxes ignore an empty one."""
    try:
        topic = Topics(args.topic_root).os_release(args.store)
        asyncio.run(publish_retained(mqtt_config(args, backoff_max=2.0, ca=args.broker_ca),
                                     [(topic, b"")], args.timeout))
    except (OSError, ValueError, MqttError) as exc:
        print(f"os withdraw: failed: {exc}", file=sys.stderr)
        return 1
    print(f"withdrew the OS announcement on {topic}", file=sys.stderr)
    return 0
