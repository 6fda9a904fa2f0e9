"""One MQTT 3.1.1 CONNECT over TLS with a client certificate, by hand: what the broker answers.

Used where a test must tell a refused TLS handshake (a revoked or unknown certificate) from an
accepted one, without a client library's reconnect logic in between."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

CONNACK = 0x20


def connect_packet(client_id: str, keepalive: int = 30) -> bytes:
    ident = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big")
    payload = len(ident).to_bytes(2, "big") + ident
    remaining = len(variable) + len(payload)
    assert remaining < 128, "one-byte remaining length is enough for a probe"
    return bytes([0x10, remaining]) + variable + payload


def mqtt_connect(host: str, port: int, ca: Path, cert: Path, key: Path,
                 client_id: str = "probe", timeout: float = 10.0) -> int:
    """The CONNACK return code (0: accepted); ssl.SSLError or OSError if TLS is refused."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    with (socket.create_connection((host, port), timeout=timeout) as raw,
          context.wrap_socket(raw, server_hostname=host) as tls):
        tls.sendall(connect_packet(client_id))
        answer = b""
        while len(answer) < 4:
            chunk = tls.recv(4 - len(answer))
            if not chunk:
                raise ConnectionResetError("the broker closed the connection before CONNACK")
            answer += chunk
    if answer[0] != CONNACK:
        raise ConnectionError(f"not a CONNACK: {answer.hex()}")
    return answer[3]
