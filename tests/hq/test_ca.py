"""`posterm-hq ca`: root and issuing CA, signing terminals' requests, revocation at the broker."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from terminal.hq.cli import main as posterm_hq
from terminal.hq.pki import authority
from tests.support.mosquitto import BrokerTls, Mosquitto
from tests.support.mqtt_probe import mqtt_connect


def request(directory: Path, cn: str | None, key: object = None, name: str = "t") -> Path:
    """A terminal's key and CSR as ``posterm provision`` makes them (``cn`` None: no CN)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    names = [] if cn is None else [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
           .sign(key, hashes.SHA256()))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path = directory / f"{name}.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    assert posterm_hq(["ca", "init", str(tmp_path / "ca")]) == 0
    return tmp_path / "ca"


def test_init_makes_a_root_that_signs_only_the_issuing_ca(ca_dir: Path) -> None:
    root = x509.load_pem_x509_certificate((ca_dir / "root.crt").read_bytes())
    issuing = x509.load_pem_x509_certificate((ca_dir / "issuing.crt").read_bytes())
    issuing.verify_directly_issued_by(root)
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert [c.subject for c in x509.load_pem_x509_certificates((ca_dir / "chain.pem")
                                                                .read_bytes())] == [
        issuing.subject, root.subject]
    assert (ca_dir / "root.key").stat().st_mode & 0o777 == 0o600
    assert (ca_dir / "issuing.key").stat().st_mode & 0o777 == 0o600
    # The root's key goes offline: everything after init works without it.
    (ca_dir / "root.key").unlink()
    assert authority.load(ca_dir).cert == issuing
    assert posterm_hq(["ca", "init", str(ca_dir)]) == 1  # never over an existing CA


def test_sign_makes_a_client_certificate_for_the_request_cn(ca_dir: Path, tmp_path: Path) -> None:
    csr = request(tmp_path, "S001/T03")
    assert posterm_hq(["ca", "sign", str(csr), "--ca", str(ca_dir), "-o",
                       str(tmp_path / "t.crt")]) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "t.crt").read_bytes())
    cert.verify_directly_issued_by(authority.load(ca_dir).cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "S001/T03"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (ca_dir / "issued" / f"{cert.serial_number:x}.pem").exists()


@pytest.mark.parametrize(("cn", "why"), [
    ("hq", "must be one '{store}/{terminal}'"),
    ("S001/T01/x", "must be one '{store}/{terminal}'"),
    ("S 001/T01", "S 001/T01"),
    ("S001/T+1", "S001/T+1"),
    (None, "exactly one CN, it has 0"),
])
def test_sign_refuses_a_cn_the_acl_would_not_know(ca_dir: Path, tmp_path: Path, cn: str | None,
                                                   why: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    csr = request(tmp_path, cn)
    assert posterm_hq(["ca", "sign", str(csr), "--ca", str(ca_dir), "-o",
                       str(tmp_path / "t.crt")]) == 1
    assert why in capsys.readouterr().err
    assert not (tmp_path / "t.crt").exists()
    assert list((ca_dir / "issued").iterdir()) == []


def test_sign_refuses_garbage_an_rsa_key_and_a_missing_ca(
        ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "g.csr"
    garbage.write_text("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    rsa_csr = request(tmp_path, "S001/T01", rsa.generate_private_key(65537, 2048), "rsa")
    out = str(tmp_path / "t.crt")
    assert posterm_hq(["ca", "sign", str(garbage), "--ca", str(ca_dir), "-o", out]) == 1
    assert "not a PEM certificate request" in capsys.readouterr().err
    assert posterm_hq(["ca", "sign", str(rsa_csr), "--ca", str(ca_dir), "-o", out]) == 1
    assert "must be EC" in capsys.readouterr().err
    assert posterm_hq(["ca", "sign", str(rsa_csr), "--ca", str(tmp_path / "none"), "-o", out]) == 1
    assert "not a CA directory" in capsys.readouterr().err
    assert not Path(out).exists()


def test_revoke_lists_the_serial_once_and_refuses_a_foreign_certificate(
        ca_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = authority.load(ca_dir)
    cert = ca.sign(authority.load_request(request(tmp_path, "S001/T01").read_bytes(), "t.csr"))
    (tmp_path / "t.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    crl_file = tmp_path / "crl.pem"
    args = ["--ca", str(ca_dir), "-o", str(crl_file)]
    assert posterm_hq(["ca", "revoke", str(tmp_path / "t.crt"), *args]) == 0
    crl = x509.load_pem_x509_crl(crl_file.read_bytes())
    assert crl.is_signature_valid(ca.cert.public_key())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert posterm_hq(["ca", "revoke", str(tmp_path / "t.crt"), *args]) == 1
    assert "already revoked" in capsys.readouterr().err

    other = authority.init(tmp_path / "other")
    foreign = other.sign(authority.load_request(request(tmp_path, "S001/T02", name="f")
                                                .read_bytes(), "f.csr"))
    (tmp_path / "f.crt").write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    before = crl_file.read_bytes()
    assert posterm_hq(["ca", "revoke", str(tmp_path / "f.crt"), *args]) == 1
    assert "not issued by this CA" in capsys.readouterr().err
    assert crl_file.read_bytes() == before
    assert len(authority.load(ca_dir).revoked) == 1


@pytest.mark.slow  # starts Mosquitto itself
def test_a_revoked_terminal_fails_the_tls_handshake_after_one_reload(ca_dir: Path,
                                                                      tmp_path: Path) -> None:
    """The shipped broker config with the CA's chain and CRL: the terminal connects, is revoked
    (CRL rewritten, broker reloaded through its PID file) and its next handshake is refused,
    while another terminal of the same CA still connects."""
    pki = tmp_path / "broker-pki"
    pki.mkdir()
    assert posterm_hq(["ca", "server", "127.0.0.1", "--ca", str(ca_dir), "-o",
                       str(pki / "server")]) == 0
    crl_file = pki / "crl.pem"
    assert posterm_hq(["ca", "crl", "--ca", str(ca_dir), "-o", str(crl_file)]) == 0
    terminals = {}
    for name in ("S001/T01", "S001/T02"):
        stem = name.replace("/", "_")
        csr = request(tmp_path, name, name=stem)
        assert posterm_hq(["ca", "sign", str(csr), "--ca", str(ca_dir), "-o",
                           str(tmp_path / f"{stem}.crt")]) == 0
        terminals[name] = (tmp_path / f"{stem}.crt", tmp_path / f"{stem}.key")
    chain = ca_dir / "chain.pem"
    tls = BrokerTls(chain, pki / "server.crt", pki / "server.key", crl_file)
    with Mosquitto(tmp_path / "broker", tls) as broker:
        def connect(name: str) -> int:
            return mqtt_connect(broker.host, broker.port, chain, *terminals[name],
                                client_id=name.replace("/", "-"))

        assert connect("S001/T01") == 0
        before = broker.reloads()
        assert posterm_hq(["ca", "revoke", str(terminals["S001/T01"][0]), "--ca", str(ca_dir),
                           "-o", str(crl_file), "--broker-pid", str(broker.pid_file)]) == 0
        broker.wait_reloaded(before)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            connect("S001/T01")
        assert connect("S001/T02") == 0
    assert broker.log_text().count("certificate verify failed") == 1
