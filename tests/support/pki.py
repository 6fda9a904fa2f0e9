"""The PKI the tests use is the one a chain on one machine uses."""

from terminal.hq.localchain.pki import CertFiles, CertificateAuthority

__all__ = ["CertFiles", "CertificateAuthority"]
