"""A small PKI for a chain on one machine (and the tests): a CA, a server certificate for
loopback, client certificates by CN (``hq``, ``{store}/{terminal}``).

Not a production CA: its key is a plain file beside the certificates. A chain's real CA signs
the requests ``posterm provision`` makes (docs/field.md)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


class CertificateAuthority:
    """A CA that writes PEM files into ``directory``."""

    def __init__(self, directory: Path, name: str = "posterm test CA",
                 days: int = 2) -> None:
        """A new CA valid ``days``; the certificates it issues are valid a day less (at least
        one)."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.issue_days = max(1, days - 1)
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _issue(self, cn: str, file_stem: str, server: bool) -> CertFiles:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = self._certificate(subject, key.public_key(), server)
        files = CertFiles(self.directory / f"{file_stem}.crt", self.directory / f"{file_stem}.key")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, files.key)
        return files

    def _certificate(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
                     server: bool) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=self.issue_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def server(self) -> CertFiles:
        """A server certificate for 127.0.0.1 and localhost."""
        return self._issue("localhost", "server", server=True)

    def client(self, cn: str) -> CertFiles:
        """A client certificate; the broker takes ``cn`` as the username (e.g. ``S001/T01``)."""
        return self._issue(cn, "client-" + cn.replace("/", "_"), server=False)

    def sign_request(self, csr_pem: bytes) -> Path:
        """Sign a terminal's certificate request (as ``posterm provision`` leaves it) as HQ does:
        its subject and key, a client certificate; returns the certificate file."""
        csr = x509.load_pem_x509_csr(csr_pem)
        public_key = csr.public_key()
        if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("not a valid EC certificate request")
        cert = self._certificate(csr.subject, public_key, server=False)
        cn = str(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        path = self.directory / f"signed-{cn.replace('/', '_')}.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path
