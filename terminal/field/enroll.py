"""The box's side of enrollment in one visit: redeem the technician's code for a certificate.

``posterm provision`` calls :func:`enroll` when the provisioning file has an ``[enroll]`` section
and no certificate: with its own key (made once, kept) it makes the request, connects to the
broker under the shared claim identity from the file (which the broker ACL confines to the
enrollment topics), sends request and code, and waits for HQ's answer
(terminal.protocol.enrollment). A certificate is checked (this key, this CN) and returned; a
refusal is recorded in ``{state_dir}/enrollment-refused.json`` for ``posterm provision --status``
and the pole display (the daemon waiting for its config shows it) and raised.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from terminal.core.atomic import write_atomic
from terminal.protocol.enrollment import (
    POLE,
    REFUSALS,
    EnrollAnswer,
    EnrollmentMessageError,
    EnrollRequest,
)
from terminal.protocol.topics import Topics

if TYPE_CHECKING:  # the MQTT stack (asyncio, paho) loads only for an exchange with HQ: provisioning
    # from a file with a certificate, or a request for the technician, never needs it
    from terminal.protocol.mqtt import TlsFiles

REFUSED_FILE = "enrollment-refused.json"
TIMEOUT = 60.0


class EnrollmentRefused(ValueError):
    """HQ refused the code, or did not answer; ``reason`` is a protocol.enrollment reason."""

    def __init__(self, reason: str, detail: str) -> None:
        zh, en = REFUSALS[reason]
        super().__init__(f"enrollment refused: {zh} / {en} ({detail})")
        self.reason = reason
        self.detail = detail


def record_refusal(state_dir: Path, refusal: EnrollmentRefused,
                   owner: tuple[int, int] | None) -> None:
    zh, en = REFUSALS[refusal.reason]
    body = {"reason": refusal.reason, "zh": zh, "en": en, "pole": list(POLE[refusal.reason]),
            "detail": refusal.detail}
    write_atomic(state_dir / REFUSED_FILE, json.dumps(body, ensure_ascii=False).encode(), 0o640,
                 owner)


def read_refusal(state_dir: Path) -> dict[str, Any] | None:
    """The last refusal recorded, or None (also for a damaged record)."""
    try:
        data = json.loads((state_dir / REFUSED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("reason") not in REFUSALS:
        return None
    data["pole"] = POLE[data["reason"]]  # from this release's words, not the file's
    return data


def waiting_lines(state_dir: Path) -> tuple[str, str]:
    """What the pole display says while the box has no config: a refused enrollment in its own
    words (zh, en), else the generic notice."""
    refusal = read_refusal(state_dir)
    if refusal is None:
        return "NOT PROVISIONED", "see posterm-provision"
    zh, en = refusal["pole"]
    return zh, en


def clear_refusal(state_dir: Path) -> None:
    (state_dir / REFUSED_FILE).unlink(missing_ok=True)


async def exchange(host: str, port: int, claim: TlsFiles, request: EnrollRequest,
                   timeout: float = TIMEOUT, topics: Topics | None = None) -> EnrollAnswer:
    """Send ``request`` under the claim identity and return HQ's answer."""
    import asyncio

    from terminal.protocol.mqtt import MqttClient, MqttConfig, MqttError

    topics = topics or Topics()
    nonce = secrets.token_hex(16)
    client = MqttClient(MqttConfig(host, port, f"enroll-{nonce[:12]}", tls=claim,
                                   backoff_initial=0.2, backoff_max=2.0))
    await client.start()
    try:
        async with asyncio.timeout(timeout):
            await client.wait_ready()
            reply = await client.request(topics.enroll_request(), request.to_json(),
                                         response_topic=topics.enroll_response(nonce),
                                         timeout=timeout)
    except (TimeoutError, MqttError) as exc:
        raise EnrollmentRefused("hq_error", f"no answer from {host}:{port}: {exc}") from None
    finally:
        await client.stop()
    try:
        return EnrollAnswer.from_json(reply.payload)
    except EnrollmentMessageError as exc:
        raise EnrollmentRefused("hq_error", f"HQ's answer: {exc}") from None


def accept(answer: EnrollAnswer, key: ec.EllipticCurvePrivateKey,
           identity: str) -> x509.Certificate:
    """The certificate of a granted answer, if it is for this key and this terminal."""
    if not answer.ok:
        raise EnrollmentRefused(answer.reason, answer.detail)
    try:
        cert = x509.load_pem_x509_certificates(answer.certificate.encode())[0]
    except (ValueError, IndexError):
        raise EnrollmentRefused("hq_error", "HQ's certificate is not PEM") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.PEM, spki)
    if cert.public_key().public_bytes(serialization.Encoding.PEM, spki) != ours:
        raise EnrollmentRefused("hq_error", "HQ's certificate is not for this terminal's key")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [str(n.value) for n in names] != [identity]:
        raise EnrollmentRefused("hq_error", f"HQ's certificate does not name {identity}")
    return cert
