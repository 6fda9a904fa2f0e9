"""Commands from HQ on the terminal's ``cmd`` topic: parsed strictly, dispatched by name.

A malformed command, an unknown name or arguments a command does not take are refused with a
reason, reported to HQ (on the status topic) and change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from terminal.protocol.messages import COMMAND_NAMES, Command, MessageError
from terminal.protocol.mqtt import Message

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]
Refusal = Callable[[str, str, str], Awaitable[None]]  # (reason, detail, ref)
Done = Callable[[Command], Awaitable[None]]


async def _nothing(command: Command) -> None:
    return None


class CommandDispatcher:
    def __init__(self, actions: Mapping[str, Action], refuse: Refusal,
                 done: Done = _nothing) -> None:
        missing = COMMAND_NAMES - set(actions)
        if missing:
            raise ValueError(f"no action for the commands {sorted(missing)}")
        self.actions, self.refuse, self.done = dict(actions), refuse, done

    async def handle(self, message: Message) -> None:
        try:
            command = Command.from_json(message.payload)
        except MessageError as exc:
            reason = "unknown_command" if exc.field == "name" else "malformed"
            log.warning("refused a command: %s", exc)
            await self.refuse(reason, str(exc), "")
            return
        if command.args:
            detail = f"{command.name} takes no arguments, got {sorted(command.args)}"
            log.warning("refused command %s: %s", command.id, detail)
            await self.refuse("malformed", detail, command.id)
            return
        log.info("HQ command %s (%s)", command.name, command.id)
        await self.actions[command.name]()
        await self.done(command)  # reported to HQ: the command's result
