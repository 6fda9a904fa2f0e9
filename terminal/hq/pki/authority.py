"""HQ's certificate authority in a directory: a root kept offline and an issuing CA for terminals.

``init`` makes both. The root signs only the issuing CA's certificate, so after ``init`` its key
(``root.key``) is carried offline and nothing here reads it again: signing terminals' requests,
revoking and the revocation list (CRL) need the issuing key only. Files::

    root.crt, root.key        the root (move root.key offline)
    root.crl                  the root's revocation list (of issuing CAs: none), valid
                              ROOT_CRL_DAYS; renewed with root.key brought back (root_crl)
    issuing.crt, issuing.key  the issuing CA (0600 key; on HQ's CA machine)
    chain.pem                 issuing + root: the broker's cafile and the terminals' broker CA
    issued/{serial}.pem       every certificate signed, by its serial in hex
    revoked.txt               one revoked certificate a line: serial, time, CN

A terminal's certificate has exactly one CN ``{store}/{terminal}`` (the broker username and the
ACL's identity, checked as ``posterm-hq acl`` does) and is for client authentication only. The
broker checks the issuing CA's CRL at every TLS handshake (``crlfile``), so a revoked terminal is
refused from the broker's next reload on. The CRL expires (``CRL_DAYS``): OpenSSL refuses every
client once it has, so ``posterm-hq ca crl`` runs from a timer well before.

RAUC on the boxes checks the operating-system bundles' signer against both CRLs (``check-crl``:
OpenSSL then wants a current CRL for every CA of the chain), so the root has one too. The root
revokes nothing in normal operation; its CRL lives a year and is renewed in the same offline
ceremony as any other use of the root key.
"""

from __future__ import annotations

import ipaddress
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from terminal.core.atomic import write_atomic
from terminal.hq.acl import AclError, Terminal, parse_identity

ROOT_DAYS = 20 * 365
ISSUING_DAYS = 5 * 365
TERMINAL_DAYS = 2 * 365
SERVER_DAYS = 2 * 365
CRL_DAYS = 30
ROOT_CRL_DAYS = 365  # renewed with the offline root key (`posterm-hq ca root-crl`)
SIGNER_DAYS = 2 * 365  # the OS bundle signer (RAUC): renewed like the broker's certificate
CLAIM_DAYS = 365  # the claim identity ships in HQ's provisioning template: renew it yearly
SERVICE_IDENTITIES = frozenset({"hq", "claim"})
BACKDATE = timedelta(hours=1)  # a terminal whose clock is a little behind still accepts it


class CaError(ValueError):
    """A request, certificate or CA directory that is refused; nothing has been written."""


@dataclass(frozen=True)
class Revoked:
    serial: int
    when: datetime
    identity: str


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_atomic(path, pem, 0o600)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca_certificate(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
                    signer: ec.EllipticCurvePrivateKey, now: datetime, days: int,
                    path_length: int) -> x509.Certificate:
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(public_key).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(signer, hashes.SHA256())
    )


def init(directory: Path, name: str = "posterm", now: datetime | None = None) -> Authority:
    """A new root and issuing CA in ``directory``; refused if it already holds a CA."""
    if (directory / "issuing.key").exists() or (directory / "root.crt").exists():
        raise CaError(f"{directory}: already holds a CA; give an empty or new directory")
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "issued").mkdir(exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root CA")])
    root = _ca_certificate(root_name, root_name, root_key.public_key(), root_key, now, ROOT_DAYS,
                           path_length=1)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} terminal CA")])
    issuing = _ca_certificate(issuing_name, root_name, issuing_key.public_key(), root_key, now,
                              ISSUING_DAYS, path_length=0)
    _write_key(directory / "root.key", root_key)
    write_atomic(directory / "root.crt", _pem(root), 0o644)
    _write_key(directory / "issuing.key", issuing_key)
    write_atomic(directory / "issuing.crt", _pem(issuing), 0o644)
    write_atomic(directory / "chain.pem", _pem(issuing) + _pem(root), 0o644)
    write_atomic(directory / "revoked.txt", b"", 0o644)
    write_root_crl(directory, root_key, now)
    return load(directory)


def _crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, now: datetime, days: int,
         revoked: Sequence[Revoked] = ()) -> x509.CertificateRevocationList:
    """A CRL of ``issuer`` valid ``days``; its number grows with time."""
    now = now.replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
        .last_update(now - BACKDATE).next_update(now + timedelta(days=days))
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(entry.serial)
            .revocation_date(entry.when).build())
    return builder.sign(key, hashes.SHA256())


def write_root_crl(directory: Path, root_key: ec.EllipticCurvePrivateKey | None = None,
                   now: datetime | None = None,
                   days: int = ROOT_CRL_DAYS) -> x509.CertificateRevocationList:
    """``root.crl``: the root's (empty) CRL. Needs ``root.key``, so it runs at ``init`` and
    where the root key is brought back for the purpose."""
    if root_key is None:
        try:
            loaded = serialization.load_pem_private_key(
                (directory / "root.key").read_bytes(), None)
        except FileNotFoundError:
            raise CaError(f"{directory / 'root.key'} is not here: renew the root's CRL where "
                          "the root key is kept offline") from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise CaError(f"{directory / 'root.key'}: not an EC key")
        root_key = loaded
    root = x509.load_pem_x509_certificate((directory / "root.crt").read_bytes())
    crl = _crl(root, root_key, now or datetime.now(UTC), days)
    write_atomic(directory / "root.crl", crl.public_bytes(serialization.Encoding.PEM), 0o644)
    return crl


def load(directory: Path) -> Authority:
    """The issuing CA of ``directory`` (the root's key is not needed, and not read)."""
    try:
        key = serialization.load_pem_private_key((directory / "issuing.key").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((directory / "issuing.crt").read_bytes())
        root = x509.load_pem_x509_certificate((directory / "root.crt").read_bytes())
        revoked_text = (directory / "revoked.txt").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CaError(f"{directory}: not a CA directory (no {Path(exc.filename).name}; "
                      "`posterm-hq ca init` makes one)") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CaError(f"{directory}: a damaged CA file: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"{directory / 'issuing.key'}: not an EC key")
    return Authority(directory, key, cert, root, _parse_revoked(revoked_text, directory))


def _parse_revoked(text: str, directory: Path) -> list[Revoked]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            serial, when, identity = line.split(" ", 2)
            entries.append(Revoked(int(serial, 16), datetime.fromisoformat(when), identity))
        except ValueError:
            raise CaError(f"{directory / 'revoked.txt'}:{number}: not 'SERIAL TIME CN'") from None
    return entries


def request_identity(csr: x509.CertificateSigningRequest) -> Terminal:
    """The terminal a request names by its single CN; CaError if it names none or another form."""
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise CaError(f"the request needs exactly one CN, it has {len(names)}")
    try:
        return parse_identity(str(names[0].value), "CN")
    except AclError as exc:
        raise CaError(str(exc)) from None


def load_request(pem: bytes, source: str) -> x509.CertificateSigningRequest:
    """A PEM request whose self-signature holds and whose key is EC, as terminals make them."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError:
        raise CaError(f"{source}: not a PEM certificate request") from None
    if not csr.is_signature_valid:
        raise CaError(f"{source}: the request's signature does not verify")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise CaError(f"{source}: the request's key must be EC (ECDSA), as terminals make it")
    return csr


@dataclass
class Authority:
    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    root: x509.Certificate
    revoked: list[Revoked]

    @property
    def chain_pem(self) -> bytes:
        return _pem(self.cert) + _pem(self.root)

    def _leaf(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int,
              usage: x509.ObjectIdentifier, names: Sequence[x509.GeneralName] = (),
              now: datetime | None = None, signing: bool = False) -> x509.Certificate:
        now = now or datetime.now(UTC)
        not_after = min(now + timedelta(days=days), self.cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, not signing, False, False,
                                         False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)),
                                            critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        write_atomic(self.directory / "issued" / f"{cert.serial_number:x}.pem", _pem(cert), 0o644)
        return cert

    def sign(self, csr: x509.CertificateSigningRequest, days: int = TERMINAL_DAYS,
             now: datetime | None = None) -> x509.Certificate:
        """A terminal's client certificate for a checked request (``load_request``)."""
        terminal = request_identity(csr)
        public_key = csr.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)  # load_request checked it
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal.identity),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, terminal.store)])
        return self._leaf(subject, public_key, days, ExtendedKeyUsageOID.CLIENT_AUTH, now=now)

    def identity(self, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A client certificate and new key for one of HQ's own identities: ``hq`` (collectors,
        tools) or ``claim`` (shared by new boxes; the ACL confines it to enrollment)."""
        if name not in SERVICE_IDENTITIES:
            raise CaError(f"{name!r}: the CA issues service identities {sorted(SERVICE_IDENTITIES)}"
                          "; terminals send a request (ca sign)")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        days = CLAIM_DAYS if name == "claim" else SERVER_DAYS
        return self._leaf(subject, key.public_key(), days, ExtendedKeyUsageOID.CLIENT_AUTH), key

    def bundle_signer(self, name: str = "os-bundles",
                      days: int = SIGNER_DAYS) -> tuple[x509.Certificate,
                                                       ec.EllipticCurvePrivateKey]:
        """A code-signing certificate and new key for the operating-system bundles (RAUC): the
        boxes' RAUC keyring is this CA's chain and accepts only the codeSigning purpose, so no
        terminal's or service's client certificate can sign a bundle."""
        if not name or any(ch in name for ch in "/+#") or name in SERVICE_IDENTITIES:
            raise CaError(f"{name!r}: a signer's name has no / + #, and is not one of "
                          f"{sorted(SERVICE_IDENTITIES)}")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "bundle signer")])
        return self._leaf(subject, key.public_key(), days, ExtendedKeyUsageOID.CODE_SIGNING,
                          signing=True), key

    def server(self, hosts: Sequence[str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The broker's server certificate and a new key, for host names and IP addresses."""
        if not hosts:
            raise CaError("give at least one host name or IP address for the broker")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        return self._leaf(subject, key.public_key(), SERVER_DAYS, ExtendedKeyUsageOID.SERVER_AUTH,
                          names), key

    def revoke(self, cert: x509.Certificate, now: datetime | None = None) -> Revoked:
        """Record ``cert`` as revoked; refused if this CA did not issue it or already revoked it."""
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):
            raise CaError(f"serial {cert.serial_number:x} was not issued by this CA "
                          f"({self.cert.subject.rfc4514_string()})") from None
        if any(entry.serial == cert.serial_number for entry in self.revoked):
            raise CaError(f"serial {cert.serial_number:x} is already revoked")
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        identity = str(names[0].value) if names else "-"
        entry = Revoked(cert.serial_number, (now or datetime.now(UTC)).replace(microsecond=0),
                        identity.replace(" ", "_"))
        lines = "".join(f"{r.serial:x} {r.when.isoformat()} {r.identity}\n"
                        for r in [*self.revoked, entry])
        write_atomic(self.directory / "revoked.txt", lines.encode(), 0o644)
        self.revoked.append(entry)
        return entry

    def issued(self, serial: int) -> x509.Certificate:
        """The certificate this CA signed with ``serial`` (``issued/``)."""
        try:
            return x509.load_pem_x509_certificate(
                (self.directory / "issued" / f"{serial:x}.pem").read_bytes())
        except (OSError, ValueError):
            raise CaError(f"no certificate {serial:x} in {self.directory / 'issued'}") from None

    def current(self, identity: str, now: datetime | None = None) -> list[int]:
        """The serials of this CA's certificates for ``identity`` still valid: unrevoked and
        unexpired (``issued/``)."""
        now = now or datetime.now(UTC)
        revoked = {entry.serial for entry in self.revoked}
        serials = []
        for path in sorted((self.directory / "issued").glob("*.pem")):
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if (names and names[0].value == identity and cert.serial_number not in revoked
                    and cert.not_valid_after_utc > now):
                serials.append(cert.serial_number)
        return serials

    def crl(self, now: datetime | None = None,
            days: int = CRL_DAYS) -> x509.CertificateRevocationList:
        """The issuing CA's revocation list, valid ``days``; its number grows with time."""
        return _crl(self.cert, self.key, now or datetime.now(UTC), days, self.revoked)


def write_crl(authority: Authority, output: Path,
              days: int = CRL_DAYS) -> x509.CertificateRevocationList:
    """Write the CRL atomically, so the broker never reads half of one."""
    crl = authority.crl(days=days)
    write_atomic(output, crl.public_bytes(serialization.Encoding.PEM), 0o644)
    return crl


def signal_reload(pid_file: Path) -> int:
    """SIGHUP the broker whose PID ``pid_file`` holds (Mosquitto re-reads its CRL and ACL)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise CaError(f"{pid_file}: no broker PID to reload: {exc}") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise CaError(f"{pid_file}: no process {pid} (is the broker running?)") from None
    return pid
