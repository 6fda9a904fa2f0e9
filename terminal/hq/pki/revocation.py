"""Cutting a terminal off: its certificates into the CRL, the terminal out of HQ's register and the
broker's ACL, one broker reload for both (terminal.hq.broker_acl), for `posterm-hq ca revoke` and
the console's enrollment page alike.

A terminal that still has another valid certificate (a box enrolled again with a new key) stays
in the register: revoking its old certificate must not take its new one's grants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from terminal.hq import acl
from terminal.hq.broker_acl import BrokerAcl
from terminal.hq.pki import authority
from terminal.hq.pki.authority import Authority, CaError


@dataclass(frozen=True)
class Revocation:
    subject: str  # the CN revoked
    serials: list[int]
    registered: str  # "removed", "kept" (another certificate still valid), "absent", "no register"
    still_valid: list[int]
    reloaded: int | None  # the broker's PID signalled, or None


@dataclass(frozen=True)
class Revoker:
    """The CA, where its CRL goes, and the broker's register and ACL."""

    ca_dir: Path
    crl: Path
    broker: BrokerAcl
    root: str
    days: int = authority.CRL_DAYS

    def terminal(self, identity: acl.Terminal) -> Revocation:
        """Revoke every valid certificate of ``identity``; CaError if it has none."""
        ca = authority.load(self.ca_dir)
        serials = ca.current(identity.identity)
        if not serials:
            raise CaError(f"{identity.identity} has no valid certificate of this CA")
        return self.certificates(ca, [ca.issued(serial) for serial in serials])

    def certificates(self, ca: Authority, certs: Sequence[x509.Certificate]) -> Revocation:
        """Revoke ``certs`` (of one subject); CaError or AclError before anything is written."""
        subject = _cn(certs[0])
        if any(_cn(cert) != subject for cert in certs):
            raise CaError("revoke one subject's certificates at a time")

        def revoke_and_write_crl() -> None:
            for cert in certs:
                ca.revoke(cert)
            authority.write_crl(ca, self.crl, self.days)

        serials = [cert.serial_number for cert in certs]
        terminal = _terminal(subject)
        if terminal is None or not self.broker.register.exists():
            revoke_and_write_crl()
            pid = (authority.signal_reload(self.broker.pid_file)
                   if self.broker.pid_file is not None else None)
            return Revocation(subject, serials, "absent" if terminal is None else "no register",
                              [], pid)
        others = [serial for serial in ca.current(subject) if serial not in serials]
        listed = terminal in self.broker.registered()
        remove = [subject] if listed and not others else []
        changed = self.broker.change(self.root, remove=remove, before_write=revoke_and_write_crl)
        registered = "removed" if remove else ("kept" if listed else "absent")
        return Revocation(subject, serials, registered, others, changed.reloaded)


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else "-"


def _terminal(subject: str) -> acl.Terminal | None:
    try:
        return acl.parse_identity(subject, "CN")
    except acl.AclError:
        return None  # hq, claim, the broker or a bundle signer: not a terminal of the register
