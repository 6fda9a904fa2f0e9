"""HQ's enrollment service: answers new boxes on the enrollment topic.

For each request (sent under the shared claim identity, which the broker ACL confines to the
enrollment topics): check the code and the CSR (terminal.hq.enrollment.codes), sign with the
issuing CA, spend the code in the same transaction, add the terminal to HQ's register and the
broker ACL, reload the broker, wait until the broker runs that ACL (terminal.hq.broker_acl), and
only then answer with the certificate and the issuing CA's. A refusal
spends nothing and is answered with its reason, which the box shows.

The response topic comes from the (untrusted) request: only ``Topics.enroll_response`` topics are
answered, so a claim client cannot make HQ publish anywhere else.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from peewee import Database

from terminal.hq import acl
from terminal.hq.broker_acl import CONFIRM_TIMEOUT, BrokerAcl, confirm
from terminal.hq.enrollment import codes
from terminal.hq.models import EnrollmentCode
from terminal.hq.pki.authority import Authority
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.protocol.enrollment import EnrollAnswer, EnrollmentMessageError, EnrollRequest
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, MqttError
from terminal.protocol.topics import Topics

log = logging.getLogger(__name__)


class EnrollmentService:
    def __init__(self, db: Database, authority: Authority, config: MqttConfig,
                 broker_acl: BrokerAcl, topics: Topics | None = None) -> None:
        self.db = db
        self.authority = authority
        self.broker_acl = broker_acl
        self.topics = topics or Topics()
        self.client = MqttClient(config)
        self.thread = LedgerThread(db, name="enrollment")
        self.answered: dict[str, int] = {"granted": 0, "refused": 0}

    async def start(self) -> None:
        await self.client.start()
        await self.client.subscribe(self.topics.enroll_request(), self._on_request)

    async def stop(self) -> None:
        await self.client.stop()
        self.thread.close()

    async def _on_request(self, message: Message) -> None:
        if not self.topics.is_enroll_response(message.response_topic or ""):
            log.warning("enrollment request without a valid response topic (%r): dropped",
                        message.response_topic)
            return
        answer = await self.thread.run(self._decide, message.payload, datetime.now(UTC))
        if answer.ok:
            granted = EnrollRequest.from_json(message.payload)
            terminal = acl.Terminal(granted.store, granted.terminal)
            await self._admit(terminal)
        self.answered["granted" if answer.ok else "refused"] += 1
        await self.client.respond(message, answer.to_json())

    async def _admit(self, terminal: acl.Terminal) -> None:
        """Register ``terminal`` and wait until the broker runs the ACL granting its store's
        bundles, so the box, answered next, subscribes under it (terminal.hq.broker_acl)."""
        try:
            changed = await asyncio.to_thread(self.broker_acl.admit, terminal, self.topics.root)
        except (acl.AclError, OSError, ValueError) as exc:
            # The certificate is signed and the code spent: the terminal connects, and an
            # operator runs `posterm-hq acl --add` to grant its store's bundles.
            log.error("enrolled %s but could not update the ACL: %s", terminal.identity, exc)
            return
        if changed.reloaded is None:
            return  # no broker to reload (the operator reloads it)
        try:
            applied = await confirm(self.client, self.broker_acl, changed.generation)
        except MqttError as exc:
            applied = False
            log.warning("could not check the broker's ACL for %s: %s", terminal.identity, exc)
        if not applied:
            log.warning("the broker did not confirm the ACL granting %s within %.0f s: the box "
                        "may miss its store's bundles until they are pushed again",
                        terminal.identity, CONFIRM_TIMEOUT)

    def _decide(self, payload: bytes, now: datetime) -> EnrollAnswer:
        """On the enrollment thread: check, sign and spend in one transaction."""
        try:
            request = EnrollRequest.from_json(payload)
        except EnrollmentMessageError as exc:
            return EnrollAnswer.refused("bad_request", str(exc))
        with self.db.bind_ctx([EnrollmentCode]):
            try:
                with self.db.atomic():
                    row, csr = codes.check(request, now)
                    cert = self.authority.sign(csr, now=now)
                    codes.mark_used(row, cert.serial_number, now)
            except codes.Refused as exc:
                log.info("enrollment refused (%s): %s", exc.reason, exc.detail)
                return EnrollAnswer.refused(exc.reason, exc.detail)
            except Exception:  # a database or CA failure: the box hears so instead of waiting
                log.exception("enrollment of %s/%s failed", request.store, request.terminal)
                return EnrollAnswer.refused("hq_error", "HQ could not sign now")
        log.info("enrolled %s/%s: serial %x", request.store, request.terminal, cert.serial_number)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return EnrollAnswer.granted((pem + self.authority.chain_pem).decode())
