"""The outside world of member care, started by the tests on free loopback ports: an SMS
gateway (a real HTTP server) and an SMTP server (aiosmtpd).

The gateway answers ``POST`` like a real one: it records every request, takes a message once per
``Idempotency-Key`` (a request repeating a key is answered 200 and not delivered again), fails
the next requests on demand (``fail(n, status)``) and can hold a request unanswered
(``hold_at(n)``: the n-th request waits until ``release()``), for a sender killed mid-message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.support.mosquitto import free_port


@dataclass(frozen=True)
class GatewayRequest:
    key: str
    authorization: str
    body: dict[str, Any]


class Gateway:
    API_KEY = "test-gateway-key"

    def __init__(self) -> None:
        self.requests: list[GatewayRequest] = []
        self.delivered: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> body, once each
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._failures: list[int] = []
        self._hold_at: int | None = None
        self.holding = threading.Event()
        self._release = threading.Event()
        self.replies: list[dict[str, Any]] = []  # members' texts back, in the order received
        self.reads: list[str] = []  # the ``after`` of each read of the replies, in order
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        self.replies_url = f"http://127.0.0.1:{self.server.server_port}/replies"

    def reply(self, phone: str, text: str, at_us: int) -> None:
        """A member texts ``text`` back from ``phone``: listed at ``replies_url``."""
        with self.lock:
            self.replies.append({"id": str(len(self.replies) + 1), "from": phone,
                                 "text": text, "at_us": at_us})

    def fail(self, count: int, status: int = 503) -> None:
        with self.lock:
            self._failures += [status] * count

    def hold_at(self, number: int) -> None:
        """The ``number``-th request (1-based, counting from now on all requests) is held."""
        with self.lock:
            self._hold_at = len(self.requests) + number

    def release(self) -> None:
        self._release.set()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                """The replies after ``?after=N`` (their ids are 1, 2, ...), two at a time."""
                asked = parse_qs(urlsplit(self.path).query).get("after", [""])[0]
                after = int(asked or 0)
                with gateway.lock:
                    gateway.reads.append(asked)
                if self.headers.get("Authorization") != f"Bearer {gateway.API_KEY}":
                    self.send_response(401)
                    self.end_headers()
                    return
                with gateway.lock:
                    page = gateway.replies[after:after + 2]
                body = json.dumps({"replies": page, "next": str(after + len(page))}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = GatewayRequest(self.headers.get("Idempotency-Key", ""),
                                         self.headers.get("Authorization", ""), body)
                with gateway.changed:
                    gateway.requests.append(request)
                    held = len(gateway.requests) == gateway._hold_at
                    status = gateway._failures.pop(0) if gateway._failures else 200
                    if status == 200 and not held:
                        gateway.delivered.setdefault(request.key, body)
                    gateway.changed.notify_all()
                if held:
                    gateway.holding.set()
                    gateway._release.wait()
                    return  # the connection closes unanswered
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` requests have arrived."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"the gateway saw {len(self.requests)} of {count} requests")


@contextmanager
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    thread = threading.Thread(target=server.server.serve_forever, name="sms-gateway",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release()
        server.server.shutdown()
        server.server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, _Mailbox]]:
    """An SMTP server on a free loopback port; yields its port and the mailbox it fills."""
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()
