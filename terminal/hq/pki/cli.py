"""`posterm-hq ca ACTION`: HQ's certificate authority (terminal.hq.pki.authority).

    posterm-hq ca init DIR                      root (take root.key offline) + issuing CA
    posterm-hq ca server HOST... --ca DIR -o /etc/mosquitto/posterm/server
    posterm-hq ca identity {hq,claim} --ca DIR -o PREFIX   HQ's tools / the boxes' shared claim
    posterm-hq ca bundle-signer --ca DIR -o PREFIX      signs the OS update bundles (RAUC)
    posterm-hq ca sign REQUEST.csr --ca DIR -o CERT
    posterm-hq ca revoke CERT --ca DIR [-o CRL] [--broker-pid FILE] [--register FILE
        --static FILE --acl FILE]
    posterm-hq ca crl --ca DIR [-o CRL] [--broker-pid FILE]
    posterm-hq ca root-crl --ca DIR             renew root.crl (needs root.key: offline)

``revoke`` rewrites the CRL the broker reads (``crlfile`` in deploy/mosquitto/posterm.conf), takes
the terminal out of HQ's register and the broker's ACL (unless another certificate of the same
terminal is still valid: a box re-enrolled keeps its grants), and, given the broker's PID file,
reloads it once for both (SIGHUP), all under the register's lock (terminal.hq.broker_acl): from
then on the revoked terminal's TLS handshake fails and its identity has no grants. A refusal
prints its reason on stderr, exits 1 and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from terminal.core.atomic import write_atomic
from terminal.hq import acl
from terminal.hq.broker_acl import BrokerAcl
from terminal.hq.pki import authority
from terminal.hq.pki.authority import CRL_DAYS, TERMINAL_DAYS, CaError
from terminal.hq.pki.revocation import Revoker
from terminal.protocol.topics import DEFAULT_ROOT

CRL = Path("/etc/mosquitto/posterm/crl.pem")


def _ca(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ca", type=Path, required=True, help="the CA directory (ca init)")


def _crl_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, default=CRL,
                        help=f"the CRL file the broker reads (default {CRL})")
    parser.add_argument("--days", type=int, default=CRL_DAYS,
                        help=f"how long the CRL is valid (default {CRL_DAYS}); renew it before")
    parser.add_argument("--broker-pid", type=Path,
                        help="the broker's PID file: reload it (SIGHUP) once the CRL is written")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="make the root and the issuing CA in a new directory")
    init.add_argument("directory", type=Path)
    init.add_argument("--name", default="posterm", help="the chain's name in the CA names")
    server = actions.add_parser("server", help="the broker's server certificate and key")
    server.add_argument("hosts", nargs="+", help="the broker's host names or IP addresses")
    _ca(server)
    server.add_argument("-o", "--output", type=Path, required=True,
                        help="writes OUTPUT.crt and OUTPUT.key")
    identity = actions.add_parser("identity", help="a client certificate and key for hq (HQ's "
                                  "tools) or claim (new boxes' shared enrollment identity)")
    identity.add_argument("name", choices=sorted(authority.SERVICE_IDENTITIES))
    _ca(identity)
    identity.add_argument("-o", "--output", type=Path, required=True,
                          help="writes OUTPUT.crt and OUTPUT.key")
    signer = actions.add_parser("bundle-signer", help="a code-signing certificate and key for "
                                "the operating-system update bundles (image/os-bundle.sh)")
    _ca(signer)
    signer.add_argument("-o", "--output", type=Path, required=True,
                        help="writes OUTPUT.crt and OUTPUT.key")
    signer.add_argument("--name", default="os-bundles", help="the certificate's CN")
    sign = actions.add_parser("sign", help="sign a terminal's request (CN STORE/TERMINAL)")
    sign.add_argument("request", type=Path)
    _ca(sign)
    sign.add_argument("-o", "--output", type=Path, required=True, help="the certificate file")
    sign.add_argument("--days", type=int, default=TERMINAL_DAYS,
                      help=f"validity (default {TERMINAL_DAYS})")
    revoke = actions.add_parser("revoke", help="revoke a certificate, rewrite the CRL, reload")
    revoke.add_argument("certificate", type=Path)
    _ca(revoke)
    _crl_out(revoke)
    revoke.add_argument("--register", type=Path, default=acl.REGISTER,
                        help=f"HQ's register of terminals (default {acl.REGISTER})")
    revoke.add_argument("--static", type=Path, default=acl.STATIC,
                        help=f"the static ACL (default {acl.STATIC})")
    revoke.add_argument("--acl", type=Path, default=acl.OUTPUT,
                        help=f"the broker's acl_file to rewrite (default {acl.OUTPUT})")
    revoke.add_argument("--root", default=DEFAULT_ROOT, help="the topic root of the ACL")
    crl = actions.add_parser("crl", help="write a fresh CRL (run from a timer before it expires)")
    _ca(crl)
    _crl_out(crl)
    root_crl = actions.add_parser("root-crl", help="renew the root's CRL (root.crl), where "
                                  "root.key is: OS updates need a current one")
    _ca(root_crl)


def run(args: argparse.Namespace) -> int:
    try:
        print(ACTIONS[args.action](args), file=sys.stderr)
    except (CaError, acl.AclError) as exc:
        print(f"posterm-hq ca {args.action}: refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"posterm-hq ca {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _init(args: argparse.Namespace) -> str:
    ca = authority.init(args.directory, args.name)
    return (f"CA in {args.directory}: give {args.directory / 'chain.pem'} to the broker (cafile) "
            f"and the terminals; move {args.directory / 'root.key'} offline now "
            f"(issuing CA {ca.cert.subject.rfc4514_string()})")


def _server(args: argparse.Namespace) -> str:
    cert, key = authority.load(args.ca).server(args.hosts)
    crt, key_file = _write_pair(args.output, cert, key)
    return f"broker certificate for {', '.join(args.hosts)}: {crt}, {key_file}"


def _identity(args: argparse.Namespace) -> str:
    cert, key = authority.load(args.ca).identity(args.name)
    crt, key_file = _write_pair(args.output, cert, key)
    return f"{args.name} identity: {crt}, {key_file}"


def _bundle_signer(args: argparse.Namespace) -> str:
    cert, key = authority.load(args.ca).bundle_signer(args.name)
    crt, key_file = _write_pair(args.output, cert, key)
    return (f"bundle signer {args.name} (serial {cert.serial_number:x}, until "
            f"{cert.not_valid_after_utc:%Y-%m-%d}): {crt}, {key_file}; keep the key with the "
            "image builder, revoke the certificate (ca revoke) if it leaks")


def _write_pair(output: Path, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    crt, key_file = output.with_name(output.name + ".crt"), output.with_name(output.name + ".key")
    write_atomic(key_file, key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), 0o600)
    write_atomic(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return crt, key_file


def _days(days: int) -> int:
    if days < 1:
        raise CaError("--days must be at least 1")
    return days


def _sign(args: argparse.Namespace) -> str:
    days = _days(args.days)
    ca = authority.load(args.ca)
    csr = authority.load_request(args.request.read_bytes(), str(args.request))
    cert = ca.sign(csr, days)
    write_atomic(args.output, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return (f"signed {authority.request_identity(csr).identity} (serial "
            f"{cert.serial_number:x}, until {cert.not_valid_after_utc:%Y-%m-%d}): {args.output}; "
            "add it to the ACL register (posterm-hq acl --add-from)")


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise CaError(f"{path}: not a PEM certificate") from None


def _revoke(args: argparse.Namespace) -> str:
    revoker = Revoker(args.ca, args.output, BrokerAcl(args.register, args.static, args.acl,
                                                      args.broker_pid), args.root, _days(args.days))
    cert = _load_certificate(args.certificate)
    ca = authority.load(args.ca)
    done = revoker.certificates(ca, [cert])
    grants = {
        "removed": f"removed from {args.register} and the ACL {args.acl}",
        "kept": (f"kept in the register: its certificate {done.still_valid[0]:x} is still "
                 "valid (revoke that one too to cut it off)" if done.still_valid else ""),
        "absent": f"not a terminal of the register {args.register}",
        "no register": f"no register at {args.register}: the broker's ACL is unchanged",
    }[done.registered]
    said = f"revoked {done.subject} (serial {cert.serial_number:x}); {grants}; " + \
        _crl_said(ca, args)
    if done.reloaded is None:
        return said + "; reload the broker (systemctl reload mosquitto) to apply it"
    return said + f"; broker {done.reloaded} reloading"


def _root_crl(args: argparse.Namespace) -> str:
    crl = authority.write_root_crl(args.ca)
    return (f"root CRL valid until {crl.next_update_utc:%Y-%m-%d %H:%M}Z: "
            f"{args.ca / 'root.crl'}; copy it to HQ's CA machine, take root.key offline again")


def _crl(args: argparse.Namespace) -> str:
    return _publish(authority.load(args.ca), args, _days(args.days))


def _publish(ca: authority.Authority, args: argparse.Namespace, days: int) -> str:
    authority.write_crl(ca, args.output, days)
    return _reloaded(ca, args)


def _crl_said(ca: authority.Authority, args: argparse.Namespace) -> str:
    crl = x509.load_pem_x509_crl(args.output.read_bytes())
    return (f"CRL of {len(ca.revoked)} certificates, valid until "
            f"{crl.next_update_utc:%Y-%m-%d %H:%M}Z: {args.output}")


def _reloaded(ca: authority.Authority, args: argparse.Namespace) -> str:
    done = _crl_said(ca, args)
    if args.broker_pid is None:
        return done + "; reload the broker (systemctl reload mosquitto) to apply it"
    pid = authority.signal_reload(args.broker_pid)
    return done + f"; broker {pid} reloading"


ACTIONS = {"init": _init, "server": _server, "identity": _identity,
           "bundle-signer": _bundle_signer, "sign": _sign,
           "revoke": _revoke, "crl": _crl, "root-crl": _root_crl}
