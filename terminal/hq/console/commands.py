"""Commands to terminals (print status page, resync, reload rules, report health) and their
results, over the project's MQTT client on the console's event loop.

A command is recorded (``console_command``, state ``sent``) and audited, then published with QoS 1
on the terminal's ``cmd`` topic. The console reads every terminal's status itself, with a plain
(not shared) subscription, so it never takes statuses from the collectors' share group: a status
whose ``done.ref`` names the command marks it ``done``, one whose ``rejected.ref`` names it marks
it ``refused`` with the terminal's reason. Each status's backlog is kept as a sample for the
"growing backlog" alert, and every ``health_interval`` seconds the console asks each online
terminal for a fresh report (``report_health``, not recorded: no person asked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from terminal.hq.console import audit
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.fleet import record_answer, record_sample
from terminal.hq.console.models import ConsoleCommand
from terminal.hq.console.roles import Principal
from terminal.hq.models import TerminalSeen
from terminal.loyalty.clock import to_micros
from terminal.protocol.messages import COMMAND_NAMES, Command, MessageError, Status
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, MqttError
from terminal.protocol.topics import TopicError, Topics

log = logging.getLogger(__name__)

# What a person may send from the console (report_health is the console's own poll).
PERSON_COMMANDS = ("print_status", "resync", "reload_rules")
assert set(PERSON_COMMANDS) <= COMMAND_NAMES


class CommandError(Exception):
    """The command could not be sent (the broker is unreachable): recorded as failed.
    ``reason`` names why for a person's words: ``not_taken`` (the broker did not take it) or
    ``no_broker`` (this console was started without one)."""

    def __init__(self, message: str, reason: str = "not_taken") -> None:
        super().__init__(message)
        self.reason = reason


class Commander:
    def __init__(self, db: ConsoleDb, config: MqttConfig, topics: Topics | None = None, *,
                 health_interval: float = 300.0) -> None:
        self.db, self.topics = db, topics or Topics()
        self.client = MqttClient(config)
        self.health_interval = health_interval
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.client.subscribe(self.topics.all_terminals("status", shared=False),
                                    self._on_status)
        await self.client.start()
        if self.health_interval > 0:
            self._tasks.append(asyncio.create_task(self._poll(), name="console-health"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.stop()

    @property
    def connected(self) -> bool:
        return self.client.connected

    async def send(self, who: Principal, store: str, terminal: str, name: str) -> str:
        """Send ``name`` to the terminal for ``who`` (its permission and scope checked by the
        caller); the command's id."""
        if name not in PERSON_COMMANDS:
            raise ValueError(f"unknown command {name!r}")
        command = Command(str(uuid.uuid4()), name)
        await self.db.run(_record, who, store, terminal, command)
        try:
            await asyncio.wait_for(self.client.publish(self.topics.cmd(store, terminal),
                                                       command.to_json()), 5.0)
        except (MqttError, TimeoutError) as exc:
            await self.db.run(record_answer, command.id, "failed", f"not sent: {exc}",
                              audit.now_us())
            raise CommandError(f"the broker did not take the command: {exc}") from None
        return command.id

    async def _on_status(self, message: Message) -> None:
        if not message.payload:
            return
        try:
            source = self.topics.parse_terminal(message.topic)
            status = Status.from_json(message.payload)
        except (TopicError, MessageError) as exc:
            log.warning("ignored a status on %s: %s", message.topic, exc)
            return
        await self.db.run(_note_status, source.store, source.terminal, status)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            if not self.client.connected:
                continue
            online = await self.db.run(lambda: list(
                TerminalSeen.select(TerminalSeen.store, TerminalSeen.terminal)
                .where(TerminalSeen.online == True).tuples()))  # noqa: E712
            for store, terminal in online:
                with contextlib.suppress(MqttError, TimeoutError, TopicError):
                    await asyncio.wait_for(self.client.publish(
                        self.topics.cmd(store, terminal),
                        Command(str(uuid.uuid4()), "report_health").to_json()), 5.0)


def _record(who: Principal, store: str, terminal: str, command: Command) -> None:
    ConsoleCommand.create(id=command.id, store=store, terminal=terminal, name=command.name,
                          actor=who.name, sent_us=audit.now_us(), state="sent")
    audit.record(who, "terminal.command", f"{store}/{terminal}", detail=f"{command.name} "
                 f"{command.id}")


def _note_status(store: str, terminal: str, status: Status) -> None:
    now = to_micros(datetime.now(UTC))
    if status.state == "online":
        record_sample(store, terminal, now, status.backlog)
    if status.done and status.done.get("ref"):
        record_answer(status.done["ref"], "done", "", now)
    if status.rejected and status.rejected.get("what") == "command" \
            and status.rejected.get("ref"):
        record_answer(status.rejected["ref"], "refused",
                      f"{status.rejected.get('reason', '')}: {status.rejected.get('detail', '')}",
                      now)
