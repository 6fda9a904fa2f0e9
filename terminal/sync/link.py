"""``MqttHqLink``: the cashier flow's :class:`terminal.app.hqlink.HqLink` over MQTT.

It composes the sync parts on the daemon's asyncio loop: the outbox publisher, bundle apply,
member requests, HQ commands and the retained status (birth, and death as the will, both with the
session epoch). The ledger is touched only on its thread (:class:`LedgerThread`), which the
composition root makes and shares with the till.

On each connection the client renews its subscriptions first (HQ state, acks, commands, the
bundles of both scopes, every card's member state) and only then publishes the birth and the
backlog, so retained bundles are taken after subscribing (DESIGN promise 5). Member states come
live (a few at a time; HQ retains none) and by the till's own catch-up by version after each
connection, when HQ comes online, when HQ's notice says it published many at once (a
campaign's bonus: they would fill the broker's queue for the till, its acks and HQ's answers
with them) and every ``state_catch_up`` seconds (:class:`member_states.CatchUp`): what the
broker dropped is taken there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from terminal.app.hqlink import Hold, RemoteBalance
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore, held_bundles
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.protocol.bundle import BundleRejected
from terminal.protocol.member_state import MemberState
from terminal.protocol.messages import Command, HqState, MessageError, Status
from terminal.protocol.mqtt import (
    Backoff,
    Message,
    MqttClient,
    MqttConfig,
    MqttError,
    TlsFiles,
    Will,
)
from terminal.protocol.topics import DEFAULT_ROOT, TopicError, Topics
from terminal.sync import bundle_store, member_states
from terminal.sync.commands import CommandDispatcher
from terminal.sync.members import MemberClient
from terminal.sync.os_releases import OsReleases
from terminal.sync.outbox import OutboxPublisher

log = logging.getLogger(__name__)


class MqttHqLink:
    """HQ over MQTT for one terminal. Construct, then ``await start()`` inside the loop.

    ``device_health()`` returns the till's words for each device, e.g. ``{"printer": "ok" |
    "2 receipts waiting" | "absent (lost: ...)", "reader": "present" | "absent"}``;
    ``printer_state()`` the printer's state as a code, ``{"code": "paper_out", "waiting": 2}``
    (``Status.printer_state``; None: not known);
    ``print_status()`` prints the status page (HQ's ``print_status``);
    ``on_settings(settings)`` receives the settings of each bundle put in force.
    """

    def __init__(
        self,
        store: LedgerStore,
        ledger: LedgerThread,
        *,
        host: str,
        port: int,
        ca: Path,
        cert: Path,
        key: Path,
        root_keys: Sequence[Path],
        software_version: str,
        device_health: Callable[[], Mapping[str, str]],
        print_status: Callable[[], None],
        clock_trusted: Callable[[], bool],
        on_settings: Callable[[dict[str, Any]], None] = lambda settings: None,
        printer_state: Callable[[], Mapping[str, Any] | None] = lambda: None,
        revoked_keys: Sequence[str] = (),
        topic_root: str = DEFAULT_ROOT,
        client_id: str | None = None,
        request_timeout: float = 1.5,
        balance_cache_ttl: float = 30.0,
        window: int = 500,
        ack_timeout: float = 15.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        state_dir: Path | None = None,
        state_catch_up: float = 30.0,
    ) -> None:
        self.store = store
        ident = store.identity
        self.topics = Topics(topic_root)
        self.scopes = self.topics.scopes_for(ident.store)
        self.trust = bundle_store.trust_store(root_keys, revoked_keys)
        self.software_version = software_version
        self.device_health, self.print_status = device_health, print_status
        self.printer_state = printer_state
        self.clock_trusted, self.on_settings = clock_trusted, on_settings
        self.ledger = ledger  # the ledger's thread, the till's too; its owner closes it
        self.client = MqttClient(MqttConfig(
            host, port, client_id or f"{ident.store}-{ident.terminal}",
            tls=TlsFiles(ca, cert, key), backoff_initial=backoff_initial,
            backoff_max=backoff_max))
        self._status_topic = self.topics.status(ident.store, ident.terminal)
        self.outbox = OutboxPublisher(
            self.client, self.ledger, store, self.topics.events(ident.store, ident.terminal),
            window=window, ack_timeout=ack_timeout,
            backoff=Backoff(backoff_initial, backoff_max), on_drained=self._drained)
        self.members = MemberClient(
            self.client, self.topics, ident.store, ident.terminal, timeout=request_timeout,
            cache_ttl=balance_cache_ttl, reachable=lambda: self.reachable,
            on_hq_time=self._hq_time)
        self.catch_up = member_states.CatchUp(
            self.members, self.ledger, store, self.trust, self.clock_trusted,
            self._state_applied, self.report, interval=state_catch_up)
        self._catching_up: asyncio.Task[None] | None = None
        self.commands = CommandDispatcher({
            "resync": self.resync,
            "print_status": self._print_status,
            "reload_rules": self.reload_rules,
            "report_health": self.publish_status,
        }, self._refuse_command, self._command_done)
        # OS updates (terminal.sync.os_releases) where the box keeps state for the installer.
        self.os_releases = (OsReleases(self.trust, state_dir, self.report)
                            if state_dir is not None else None)
        self.rule_version = 0
        # The till's own copy of the rules (redemption, goods, receipt header) follows too; the
        # composition root sets this once the till exists.
        self.on_rules: Callable[[Rules], None] = lambda rules: None
        self.rejected: dict[str, str] | None = None
        self.done: dict[str, str] | None = None  # the latest command carried out
        self._status_lock = asyncio.Lock()
        self._reported_backlog: int | None = None
        self._epoch = 0

    # -- HqLink --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def reachable(self) -> bool:
        return self.client.connected and self.outbox.hq_online

    async def start(self) -> None:
        self._epoch = await self.ledger.run(lambda: self.store.epoch)
        await self.reload_rules()
        ident = self.store.identity
        will = await self._status("offline", self.rejected)
        self.client.set_will(Will(self._status_topic, will.to_json()))
        await self.client.subscribe(self.topics.hq_state(), self._on_hq_state)
        await self.client.subscribe(self.topics.acks(ident.store, ident.terminal),
                                    self.outbox.handle_ack)
        await self.client.subscribe(self.topics.cmd(ident.store, ident.terminal),
                                    self.commands.handle)
        for scope in self.scopes:
            await self.client.subscribe(self.topics.bundle(scope), self._on_bundle)
        await self.client.subscribe(self.topics.member_states(), self._on_member_state,
                                    retained=False)
        await self.client.subscribe(self.topics.states_notice(), self._on_states_notice,
                                    retained=False)
        if self.os_releases is not None:  # the store's staged announcement first, then the chain's
            for topic in self.topics.os_releases_for(ident.store):
                await self.client.subscribe(topic, self.os_releases.handle)
        self.client.on_ready(self._on_ready)
        await self.outbox.start()
        self._catching_up = asyncio.create_task(self.catch_up.run(), name="state-catch-up")
        await self.client.start()

    async def stop(self) -> None:
        if self._catching_up is not None:
            self._catching_up.cancel()
            await asyncio.gather(self._catching_up, return_exceptions=True)
            self._catching_up = None
        await self.outbox.stop()
        if self.client.connected:
            # A clean disconnect sends no will, so say goodbye ourselves.
            try:
                await asyncio.wait_for(self._publish_status("offline"), 2.0)
            except (MqttError, TimeoutError) as exc:
                log.info("could not publish the offline status: %s", exc)
        await self.client.stop()

    async def member_balance(self, card_hash: str) -> RemoteBalance | None:
        return await self.members.balance(card_hash)

    async def find_member(self, card_hash: str) -> RemoteBalance | None:
        return await self.members.find(card_hash)

    async def hold(self, card_hash: str, points: int, sale_id: str, kind: str = "sale") -> Hold:
        return await self.members.hold(card_hash, points, sale_id, kind)

    async def void(self, hold: Hold) -> None:
        await self.members.void(hold)

    def events_written(self) -> None:
        self.outbox.wake()

    # -- commands ------------------------------------------------------------------------------

    async def resync(self) -> None:
        """Publish the whole unacknowledged backlog again, and the status."""
        self.outbox.rewind()
        await self.publish_status()

    async def reload_rules(self) -> None:
        """Put the held bundle in force again, its catalogue too (at start, and on HQ's
        command)."""
        try:
            found = await self.ledger.run(bundle_store.effective, self.scopes)
            if found is not None:
                await self.ledger.run(bundle_store.restore_catalogue, self.store, found)
        except BundleRejected as exc:  # a held bundle that no longer parses: keep what runs
            await self.report("reload_rules", exc.reason_code, exc.message, "")
            return
        if found is not None:
            self._put_in_force(found)

    async def _print_status(self) -> None:
        self.print_status()

    async def _refuse_command(self, reason: str, detail: str, ref: str) -> None:
        await self.report("command", reason, detail, ref)

    async def _command_done(self, command: Command) -> None:
        """Tell HQ the command was carried out (in the retained status, like a refusal)."""
        self.done = {"ref": command.id, "name": command.name,
                     "at": datetime.now(UTC).isoformat()}
        await self.publish_status()

    # -- status --------------------------------------------------------------------------------

    async def _status(self, state: str, rejected: dict[str, str] | None) -> Status:
        backlog = await self.outbox.backlog()
        self._reported_backlog = backlog
        held = await self.ledger.run(held_bundles.versions)
        printer = self.printer_state()
        return Status(state, max(self._epoch, 1), self.software_version, self.rule_version,
                      backlog, dict(self.device_health()), rejected, self.done, held,
                      None if printer is None else dict(printer))

    async def _publish_status(self, state: str) -> None:
        # Every refusal gets a status of its own (HQ hears each one, not just the last), and the
        # FIFO lock publishes them in the order they happened, so the status the broker retains
        # is always the newest.
        rejected = self.rejected
        async with self._status_lock:
            status = await self._status(state, rejected)
            await self.client.publish(self._status_topic, status.to_json(), qos=1, retain=True)

    async def publish_status(self) -> None:
        """The retained birth, now (device health, backlog, rule version, last refusal)."""
        try:
            await self._publish_status("online")
        except MqttError as exc:
            log.info("status not published: %s", exc)

    async def report(self, what: str, reason: str, detail: str, ref: str) -> None:
        """Report a refusal to HQ: logged, and carried in the retained status."""
        log.warning("refused %s %s: %s: %s", what, ref, reason, detail)
        self.rejected = {"what": what, "reason": reason, "detail": detail[:500], "ref": ref,
                         "at": datetime.now(UTC).isoformat()}
        await self.publish_status()

    def _drained(self) -> None:
        if self._reported_backlog != 0:
            self._reported_backlog = 0
            asyncio.get_running_loop().create_task(self.publish_status())

    # -- inbound -------------------------------------------------------------------------------

    async def _on_ready(self) -> None:
        self.outbox.rewind()  # paho's queue died with the connection: publish again from the DB
        self.catch_up.wake()  # what was published while this till was away
        await self.publish_status()

    def _on_hq_state(self, message: Message) -> None:
        try:
            state = HqState.from_json(message.payload)
        except MessageError as exc:
            log.warning("HQ state unreadable, treating HQ as offline: %s", exc)
            self.outbox.set_hq_online(False)
            return
        online = state.state == "online"
        if online != self.outbox.hq_online:
            log.info("HQ is %s", "online" if online else "offline")  # what a technician asks first
            if online:
                self.catch_up.wake()  # HQ answers again: ask for what it published meanwhile
        self.outbox.set_hq_online(online)

    def _hq_time(self, at: datetime) -> None:
        asyncio.get_running_loop().create_task(
            self.ledger.run(self.store.observe_trusted_time, at))

    async def _on_bundle(self, message: Message) -> None:
        if not message.payload:
            return  # HQ cleared the retained bundle: nothing to apply
        try:
            scope = self.topics.parse_bundle(message.topic)
            found = await self.ledger.run(bundle_store.receive, self.store, message.payload,
                                          scope, self.trust, self.scopes, self.clock_trusted())
        except (BundleRejected, TopicError) as exc:
            reason, detail = bundle_store.rejection(exc)
            await self.report("bundle", reason, detail, message.topic)
            return
        if found is not None:
            self._put_in_force(found)
        await self.publish_status()

    async def _on_member_state(self, message: Message) -> None:
        if not message.payload:
            return  # HQ cleared the retained state: nothing to apply
        try:
            card_hash = self.topics.parse_member_state(message.topic)
            state = await self.ledger.run(member_states.receive, self.store, message.payload,
                                          card_hash, self.trust, self.clock_trusted())
        except (BundleRejected, TopicError) as exc:
            reason, detail = bundle_store.rejection(exc)
            await self.report("member_state", reason, detail, message.topic)
            return
        if state is not None:
            self._state_applied(state)
            log.info("card %s… is %s at HQ (v%d)", state.card_hash[:12], state.state,
                     state.version)

    async def _on_states_notice(self, message: Message) -> None:
        if not message.payload:
            return
        try:
            lacking = await self.ledger.run(member_states.receive_notice, self.store,
                                            message.payload, self.trust, self.clock_trusted())
        except BundleRejected as exc:
            reason, detail = bundle_store.rejection(exc)
            await self.report("member_state", reason, detail, message.topic)
            return
        if lacking:
            self.catch_up.wake()  # HQ published many at once: take them at the till's pace

    def _state_applied(self, state: MemberState) -> None:
        self.members.forget(state.card_hash)  # HQ's balance or tier may have changed
        if state.replaced_by is not None:
            self.members.forget(state.replaced_by)

    def _put_in_force(self, found: bundle_store.Effective) -> None:
        # After the commit: the till's next operation uses the new rules.
        self.store.rules = found.rules
        self.rule_version = found.version
        self.on_rules(found.rules)
        self.on_settings(found.settings)
        log.info("rules %s v%d in force", found.scope, found.version)
