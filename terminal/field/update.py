"""`posterm update`: signed application updates with an automatic trial and rollback.

An update is a wheelhouse (the posterm wheel and its dependencies) with ``release.json``: the
release manifest (package, version, the sha256 of each wheel, issue time and expiry) signed like
a bundle, by HQ's delegated signing key under the root (terminal.protocol.release; ``posterm-hq
release sign`` makes it). It comes as a directory or a tar file, announced over MQTT or on a USB
stick.

On the terminal (root): the update is copied to a private staging directory, the signature chain
is checked against HQ's root key as root keeps it (terminal.field.anchors: never the daemon's
copy) and ``[hq] revoked_keys`` of the daemon's config (which can only refuse more) before the
manifest is used, the release must not have expired (by the later of the clock and the running
release's issue time) nor be issued before the running one, every file's hash is checked and
unlisted files are refused (pip would otherwise pick them up), and the version must be newer than
the running one and not one that failed before. Then a venv is built offline in
``{home}/releases/<version>/``, ``previous`` is pointed at the running release and ``current`` is
switched atomically (a symlink under a temporary name renamed over the old one).

The trial: the daemon writes ``{state_dir}/healthy-<version>`` (:func:`mark_healthy`) once it has
sent READY=1 and connected to the broker. ``posterm update check`` (posterm-update-check.timer,
run from the *previous* release) keeps the release when the marker is there, and switches back by
itself when the trial time passes on one boot, or the box was rebooted too often, without it. The
trial time counts CLOCK_BOOTTIME, never the wall clock, which a Pi without RTC cannot trust.
A rollback, by the check or by hand, is refused (:class:`RollbackRefused`, the current release
kept) when the previous release cannot run on the ledger as the daemon recorded it
(terminal.field.ledger_guard; docs/field.md section 5).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from terminal.core.atomic import fsync_dir, write_atomic
from terminal.core.digest import sha256_file
from terminal.core.subcommands import run_alone
from terminal.field.anchors import TRUST_DIR, AnchorError, Anchors, load_or_seed
from terminal.field.ledger_guard import health_mark, read_level, release_schema, rollback_refusal
from terminal.field.os_update import (
    ANNOUNCEMENT,
    BUNDLE,
    ROOT_RECORD_DIR,
    OsUpdateError,
    install_ready,
)
from terminal.protocol.bundle import BundleRejected, TrustStore
from terminal.protocol.release import MANIFEST, verify_release

HOME = Path("/var/opt/posterm")  # /opt/posterm links here
STATE_DIR = Path("/var/lib/posterm")
CONFIG = STATE_DIR / "posterm.toml"
TRIAL_SECONDS = 600  # READY=1 and the broker within ten minutes of the first start
TRIAL_BOOTS = 3  # or at most this many boots into the new release
SERVICE = "posterm.service"
AB_BOOT = "/usr/lib/posterm/ab-boot"  # the A/B boot backend (image/filesystem)

PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.whl")
SHA256 = re.compile(r"[0-9a-f]{64}")
VERSION = re.compile(r"\d+(\.\d+){0,3}")

Version = tuple[int, ...]


class UpdateError(ValueError):
    """An update that is refused; nothing was installed or switched."""


class RollbackRefused(UpdateError):
    """The previous release cannot run on the ledger (terminal.field.ledger_guard)."""


def parse_version(text: str) -> Version:
    """ "1.2.3" -> (1, 2, 3). Only plain release numbers: they order without ambiguity."""
    if not isinstance(text, str) or not VERSION.fullmatch(text):
        raise UpdateError(f"version {text!r} is not of the form 1.2.3")
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class Manifest:
    package: str
    version: str
    files: dict[str, str]  # wheel file name -> sha256 hex
    issued_at: datetime


def verify(staging: Path, trust: TrustStore, now: datetime,
           floor: datetime | None = None) -> Manifest:
    """Check the signature chain and times, then the manifest, then every file in ``staging``.
    ``floor`` is the running release's issue time."""
    try:
        data = (staging / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise UpdateError(f"the update has no {MANIFEST}") from None
    try:
        release = verify_release(data, trust, now, floor)
    except BundleRejected as exc:
        raise UpdateError(f"{MANIFEST} refused: {exc}") from None
    manifest = _check_manifest(release.package, release.version, release.files,
                               release.issued_at)
    present = {p.name for p in staging.iterdir()} - {MANIFEST}
    if unlisted := sorted(present - manifest.files.keys()):
        raise UpdateError(f"files not in the manifest: {', '.join(unlisted)}")
    for name, digest in manifest.files.items():
        if name not in present:
            raise UpdateError(f"{name} is listed in the manifest but missing")
        if sha256_file(staging / name) != digest:
            raise UpdateError(f"{name} does not match its sha256 in the manifest (corrupted?)")
    return manifest


def _check_manifest(package: str, version: str, files: dict[str, str],
                    issued_at: datetime) -> Manifest:
    if not isinstance(package, str) or not PACKAGE.fullmatch(package):
        raise UpdateError(f"{MANIFEST}: package {package!r} is not a package name")
    parse_version(version)
    if not isinstance(files, dict) or not files:
        raise UpdateError(f"{MANIFEST}: files must list the wheels")
    for name, digest in files.items():
        if (
            not FILE_NAME.fullmatch(name)
            or not isinstance(digest, str)
            or not SHA256.fullmatch(digest)
        ):
            raise UpdateError(f"{MANIFEST}: files: {name!r} needs a wheel name and sha256 hex")
    return Manifest(package, version, dict(files), issued_at)


def stage(source: Path, staging: Path) -> None:
    """Copy an update's regular files (from a directory or a tar file) into ``staging``.

    Only flat regular files: links, devices and sub-directories are refused, so nothing from the
    update can point outside ``staging``."""
    if source.is_dir():
        for entry in source.iterdir():
            if entry.is_symlink() or not entry.is_file():
                raise UpdateError(f"{entry}: only plain files belong in an update")
            shutil.copyfile(entry, staging / entry.name)
        return
    try:
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isdir():
                    continue
                if not member.isfile() or name in ("", ".", ".."):
                    raise UpdateError(
                        f"{source}: {member.name}: only plain files belong in an update"
                    )
                if (staging / name).exists():
                    raise UpdateError(f"{source}: {name} appears twice")
                src = tar.extractfile(member)
                assert src is not None  # a regular file always has contents
                with src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (tarfile.TarError, FileNotFoundError) as exc:
        raise UpdateError(f"{source}: not an update directory or tar file ({exc})") from None


# --- releases, the switch and the trial -------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """What the trial measures time by: this boot's id and the seconds since boot."""

    boot_id: str
    uptime: float

    @classmethod
    def system(cls) -> Clock:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return cls(boot_id, time.clock_gettime(time.CLOCK_BOOTTIME))


@dataclass
class Trial:
    version: str
    previous: str
    seconds: float
    boot_id: str
    started: float  # uptime on boot_id when the trial (re)started counting
    boots: int = 1


class Releases:
    """The tree ``{home}/releases/<version>/``, ``current``, ``previous``, ``trial.json``,
    ``failed/<version>``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.releases = home / "releases"
        self.trial_file = home / "trial.json"
        self.failed = home / "failed"
        self.refused = home / "rollback-refused"  # why the last rollback was refused

    def version(self, link: str) -> str | None:
        """The release ``current`` or ``previous`` points at."""
        try:
            return Path(os.readlink(self.home / link)).name
        except FileNotFoundError:
            return None

    def issued_at(self, version: str | None) -> datetime | None:
        """The issue time of an installed release (its release.json, checked when installed);
        None for a release from before signed manifests or none at all."""
        if version is None:
            return None
        try:
            document = json.loads((self.releases / version / MANIFEST).read_bytes())
            inner = json.loads(base64.b64decode(document["release"]))
            return datetime.fromisoformat(inner["issued_at"])
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            return None

    def point(self, link: str, version: str) -> None:
        """Point ``link`` at ``version`` atomically: a new symlink renamed over the old one."""
        tmp = self.home / f".{link}.new"
        tmp.unlink(missing_ok=True)
        os.symlink(f"releases/{version}", tmp)
        os.replace(tmp, self.home / link)
        fsync_dir(self.home)

    def trial(self) -> Trial | None:
        try:
            return Trial(**json.loads(self.trial_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise UpdateError(
                f"{self.trial_file} is unreadable ({exc}); roll back by hand"
            ) from None

    def save_trial(self, trial: Trial) -> None:
        write_atomic(self.trial_file, json.dumps(asdict(trial)))

    def end_trial(self) -> None:
        self.trial_file.unlink(missing_ok=True)
        fsync_dir(self.home)

    def has_failed(self, version: str) -> bool:
        return (self.failed / version).exists()

    def mark_failed(self, version: str, reason: str) -> None:
        self.failed.mkdir(exist_ok=True)
        (self.failed / version).write_text(reason + "\n")

    def prune(self) -> list[str]:
        """Delete releases other than current and previous; returns their versions."""
        keep = {self.version("current"), self.version("previous")}
        removed = []
        for release in sorted(self.releases.iterdir()):
            if release.name not in keep:
                shutil.rmtree(release)
                removed.append(release.name)
        return removed


def install(
    source: Path,
    home: Path,
    state_dir: Path,
    trust: TrustStore,
    clock: Clock,
    python: str = "/usr/bin/python3",
    trial_seconds: float = TRIAL_SECONDS,
    now: datetime | None = None,
) -> str:
    """Verify and install the update at ``source``, switch to it and start its trial.

    Returns the new version. Raises :class:`UpdateError` with nothing switched."""
    releases = Releases(home)
    releases.releases.mkdir(parents=True, exist_ok=True)
    if (running := releases.trial()) is not None:
        raise UpdateError(f"the trial of {running.version} is still running; wait for it")
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=home) as tmp:
        staging = Path(tmp)
        stage(source, staging)
        current = releases.version("current")
        manifest = verify(staging, trust, now or datetime.now(UTC), releases.issued_at(current))
        if current is not None and parse_version(manifest.version) <= parse_version(current):
            raise UpdateError(f"version {manifest.version} is not newer than the running {current}")
        if releases.has_failed(manifest.version):
            raise UpdateError(f"version {manifest.version} failed its trial before; not again")
        _build_release(releases.releases / manifest.version, staging, manifest, python)
    (state_dir / f"healthy-{manifest.version}").unlink(missing_ok=True)
    if current is not None:
        releases.point("previous", current)
        releases.save_trial(
            Trial(manifest.version, current, trial_seconds, clock.boot_id, clock.uptime)
        )
    releases.point("current", manifest.version)
    releases.refused.unlink(missing_ok=True)
    return manifest.version


def _build_release(target: Path, staging: Path, manifest: Manifest, python: str) -> None:
    """A venv at ``target`` with the update installed offline; removed again if anything fails.

    Built in place: a venv's scripts name its path, so it cannot be built elsewhere and moved."""
    if target.exists():
        shutil.rmtree(target)  # a leftover of an interrupted install, never current or previous
    steps = [
        # System site packages: Debian's python3-evdev (PyPI has no aarch64 wheel).
        [python, "-m", "venv", "--system-site-packages", str(target)],
        [str(target / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--no-cache-dir", "--find-links", str(staging), f"{manifest.package}=={manifest.version}"],
    ]  # fmt: skip
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise UpdateError(f"installing {manifest.version} failed: {' / '.join(detail)}")
    # Kept with the release: its issue time is the floor the next release is judged by.
    shutil.copyfile(staging / MANIFEST, target / MANIFEST)


def mark_healthy(state_dir: Path, version: str, schema: int | None = None) -> None:
    """For the daemon: this version sent READY=1 and reached the broker; the trial may end.
    ``schema``: the highest ledger schema it runs, kept in the mark for a later rollback."""
    marker = state_dir / f"healthy-{version}"
    if not marker.exists() or release_schema(state_dir, version) != schema:
        write_atomic(marker, health_mark(schema), 0o644)


def check(home: Path, state_dir: Path, clock: Clock, boots: int = TRIAL_BOOTS) -> str:
    """One look at the trial: keep the release, keep waiting, or roll back. Says which."""
    releases = Releases(home)
    trial = releases.trial()
    if trial is None:
        return "no update on trial"
    if (state_dir / f"healthy-{trial.version}").exists():
        releases.end_trial()
        pruned = releases.prune()
        return f"kept {trial.version}" + (f" (removed {', '.join(pruned)})" if pruned else "")
    if clock.boot_id != trial.boot_id:
        trial.boots += 1
        trial.boot_id, trial.started = clock.boot_id, clock.uptime
        if trial.boots > boots:
            return _roll_back_failed(home, state_dir,
                                     f"{trial.version} was not healthy in {boots} boots")
        releases.save_trial(trial)
    elif clock.uptime - trial.started >= trial.seconds:
        return _roll_back_failed(
            home, state_dir, f"{trial.version} was not healthy within {trial.seconds:.0f} s")
    left = trial.seconds - (clock.uptime - trial.started)
    return f"{trial.version} on trial, boot {trial.boots} of {boots}, {left:.0f} s left"


def _roll_back_failed(home: Path, state_dir: Path, reason: str) -> str:
    """The trial failed: roll back, or, when the ledger refuses the previous release, end the
    trial keeping the release (the check has nothing left to do) and say so."""
    try:
        return rollback(home, reason, state_dir)
    except RollbackRefused:
        Releases(home).end_trial()
        raise


def rollback(home: Path, reason: str, state_dir: Path) -> str:
    """Switch ``current`` back to ``previous`` and remember the version that failed; refused
    (:class:`RollbackRefused`, the reason kept for ``status``) when the previous release cannot
    run on the ledger as the daemon recorded it in ``state_dir``."""
    releases = Releases(home)
    previous = releases.version("previous")
    current = releases.version("current")
    if previous is None or current is None or previous == current:
        raise UpdateError("there is no previous release to go back to")
    if (refusal := rollback_refusal(state_dir, current, previous)) is not None:
        write_atomic(releases.refused, f"{reason}: {refusal}\n", 0o644)
        raise RollbackRefused(f"{reason}: {refusal}")
    releases.refused.unlink(missing_ok=True)
    releases.point("current", previous)
    releases.mark_failed(current, reason)
    releases.end_trial()
    return f"rolled back to {previous}: {reason}"


# --- command line -------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", type=Path, default=HOME, help=f"releases tree (default {HOME})")
    common.add_argument(
        "--state-dir",
        type=Path,
        default=STATE_DIR,
        help=f"where the daemon writes healthy-<version> (default {STATE_DIR})",
    )
    common.add_argument(
        "--trust-dir",
        type=Path,
        default=TRUST_DIR,
        help=f"HQ's anchors as root keeps them, the only keys trusted (default {TRUST_DIR})",
    )
    common.add_argument(
        "--restart", action="store_true", help=f"restart {SERVICE} after a switch (as the units do)"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    inst = sub.add_parser(
        "install", parents=[common], help="verify, install and switch to an update"
    )
    inst.add_argument("source", type=Path, help="update directory or tar file")
    inst.add_argument(
        "--config",
        type=Path,
        default=CONFIG,
        help=f"daemon config: its [hq] revoked_keys are refused too (default {CONFIG})",
    )
    inst.add_argument(
        "--trial-seconds",
        type=float,
        default=TRIAL_SECONDS,
        help=f"time to become healthy before rollback (default {TRIAL_SECONDS})",
    )
    inst.add_argument("--python", default="/usr/bin/python3", help="interpreter for the venv")
    inst.add_argument(
        "--consume",
        action="store_true",
        help="empty the source directory afterwards, installed or refused",
    )
    os_inst = sub.add_parser(
        "os-install",
        parents=[common],
        help="install the OS bundle HQ announced and the daemon fetched (RAUC), then reboot",
    )
    os_inst.add_argument("source", type=Path, help="the daemon's os-ready directory")
    os_inst.add_argument(
        "--config",
        type=Path,
        default=CONFIG,
        help=f"daemon config: its [hq] revoked_keys are refused too (default {CONFIG})",
    )
    os_inst.add_argument(
        "--reboot",
        action="store_true",
        help="once RAUC has written the other slot, reboot into it once (ab-boot reboot)",
    )
    sub.add_parser("check", parents=[common], help="keep a healthy release on trial or roll back")
    sub.add_parser("rollback", parents=[common], help="go back to the previous release now")
    sub.add_parser("status", parents=[common], help="show current, previous and any trial")


def run(args: argparse.Namespace) -> int:
    try:
        message, switched = _act(args)
    except (UpdateError, OsUpdateError, AnchorError, OSError) as exc:
        print(f"update {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        if getattr(args, "consume", False) and args.source.is_dir():
            _empty(args.source)
    print(message)
    if switched and args.restart:
        subprocess.run(["systemctl", "reset-failed", SERVICE], check=False)
        subprocess.run(["systemctl", "restart", "--no-block", SERVICE], check=True)
    return 0


def _act(args: argparse.Namespace) -> tuple[str, bool]:
    """Runs the action; returns what to say and whether ``current`` changed."""
    if args.action == "install":
        key, _anchors = _trust(args)
        clock = Clock.system()
        version = install(
            args.source, args.home, args.state_dir, key, clock, args.python, args.trial_seconds
        )
        return f"switched to {version}; on trial until healthy", True
    if args.action == "os-install":
        try:
            trust, anchors = _trust(args)
        except (UpdateError, AnchorError):
            for name in (ANNOUNCEMENT, BUNDLE):  # else posterm-os-update.path fires again
                (args.source / name).unlink(missing_ok=True)
            raise
        done = install_ready(args.source, trust, args.state_dir, chain=anchors.chain_pem,
                             record_dir=ROOT_RECORD_DIR)
        version = done.release.version
        if args.reboot:
            reboot_into_trial(version)
        return f"OS {version} written to the other slot, on trial from the next boot", False
    if args.action == "check":
        outcome = check(args.home, args.state_dir, Clock.system())
        return outcome, outcome.startswith("rolled back")
    if args.action == "rollback":
        return rollback(args.home, "rolled back by hand", args.state_dir), True
    return "\n".join(status_lines(args.home, args.state_dir)), False


def status_lines(home: Path, state_dir: Path) -> list[str]:
    """``posterm update status``: the releases, any trial, the ledger and a refused rollback."""
    releases = Releases(home)
    trial = releases.trial()
    lines = [f"current: {releases.version('current')}", f"previous: {releases.version('previous')}"]
    lines.append(f"trial: {trial.version} ({trial.boots} boot(s))" if trial else "trial: none")
    level = read_level(state_dir)
    lines.append(f"ledger: needs schema {level.compatible}, applied {level.applied}"
                 if level else "ledger: schema not recorded")
    with contextlib.suppress(FileNotFoundError):
        lines.append(f"ROLLBACK REFUSED: {releases.refused.read_text().strip()}")
    return lines


def reboot_into_trial(version: str, ab_boot: Sequence[str] = (AB_BOOT,)) -> None:
    """``ab-boot reboot``; its refusal (no posterm-tryboot module: the firmware would never try
    the slot) is the install's failure, said with ab-boot's reason, not a traceback."""
    result = subprocess.run([*ab_boot, "reboot"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise OsUpdateError(f"OS {version} is written to the other slot and on trial, but the "
                            f"box did not restart into it: {said}")


def _empty(directory: Path) -> None:
    """Clear what the daemon left for the installer, so the path unit does not fire again."""
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _trust(args: argparse.Namespace) -> tuple[TrustStore, Anchors]:
    """HQ's root key from the root-owned anchors (terminal.field.anchors), never from the
    daemon's files, and the signing keys revoked: the daemon config's ``[hq] revoked_keys``, if
    it has any, which can only make the installer refuse more. On a box provisioned before the
    anchors existed, the anchors are seeded once from the daemon's copy (anchors.load_or_seed);
    that is said on stderr (the journal), whatever the install then decides."""
    config = args.config
    anchors, seeded = load_or_seed(args.trust_dir, args.home, args.state_dir)
    if seeded:
        print(f"update {args.action}: {seeded}", file=sys.stderr)
    try:
        hq = tomllib.loads(config.read_text()).get("hq", {})
    except FileNotFoundError:
        hq = {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UpdateError(f"{config}: unreadable ({exc!r}); its revocations cannot be honoured"
                          ) from None
    revoked = hq.get("revoked_keys", []) if isinstance(hq, dict) else None
    if not isinstance(revoked, list) or not all(isinstance(k, str) for k in revoked):
        raise UpdateError(f"{config}: [hq] revoked_keys must be a list of key ids")
    return TrustStore.of([anchors.root_key], revoked), anchors


def main(argv: list[str] | None = None) -> int:
    """``python -m terminal.update``: what the units run, independent of the dispatcher."""
    return run_alone(__name__, "posterm update", argv)
