"""Changing whom the broker admits, one change at a time and in order.

Three writers change the broker's view of the fleet: the enrollment service (a new terminal into
the register and the ACL), ``posterm-hq ca revoke`` (a certificate into the CRL, its terminal out
of the register and the ACL) and ``posterm-hq acl`` (by hand). Each change here:

1. takes an exclusive lock on the register's directory (``flock``; every writer takes it), so two
   changes never plan from the same register and the later one never drops what the earlier
   added;
2. plans from the register as it is now (``acl.plan``: everything validated, nothing written);
3. runs the caller's step that must come before the reload (revoke: the CA's record and the CRL);
4. replaces the register, then the ACL (each atomically);
5. reloads the broker once (SIGHUP through its PID file), so the CRL and the ACL of one change
   take effect together;

and returns the ACL's *generation topic* (``acl.generation_topic``): a topic that only this ACL
lets HQ publish to. Mosquitto reloads asynchronously on its own loop, so a SIGHUP sent is not an
ACL applied; :func:`confirm` publishes there (QoS 1) until the broker stops refusing it, i.e. it
runs this ACL (or a later one, which holds this change too). The enrollment service answers a
new box only then: before, the box's subscription to its store's bundles would be checked
against the old ACL and its retained bundle never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from terminal.core.atomic import write_atomic
from terminal.hq import acl
from terminal.hq.pki.authority import signal_reload
from terminal.protocol.mqtt import MqttClient, PublishRefused

CONFIRM_TIMEOUT = 10.0


@dataclass(frozen=True)
class Changed:
    plan: acl.Plan
    generation: str  # the topic only the ACL written lets HQ publish to
    reloaded: int | None  # the broker's PID signalled, or None (no PID file given)


@dataclass(frozen=True)
class BrokerAcl:
    """Where HQ's register and the broker's ACL live, and how to reload the broker."""

    register: Path
    static: Path
    output: Path
    pid_file: Path | None = None

    def change(self, root: str, add: Sequence[str] = (), remove: Sequence[str] = (),
               before_write: Callable[[], None] | None = None) -> Changed:
        """Steps 1-5 above; AclError (nothing written, ``before_write`` not run) if the
        register, the static part or an identity is refused."""
        with acl.locked(self.register):
            plan = acl.plan(self.register, self.static, root, add=add, remove=remove)
            if before_write is not None:
                before_write()
            if plan.register is not None:
                write_atomic(self.register, plan.register)
            write_atomic(self.output, plan.acl)
            pid = signal_reload(self.pid_file) if self.pid_file is not None else None
        return Changed(plan, acl.generation_of(plan.acl), pid)

    def admit(self, terminal: acl.Terminal, root: str) -> Changed:
        """Add ``terminal`` to the register, rewrite the ACL, reload the broker."""
        return self.change(root, add=[terminal.identity])

    def registered(self) -> list[acl.Terminal]:
        """The register's terminals now ([] when there is no register yet)."""
        try:
            text = self.register.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return acl.parse_register(text, str(self.register))


async def confirm(client: MqttClient, broker_acl: BrokerAcl, generation: str,
                  timeout: float = CONFIRM_TIMEOUT) -> bool:
    """Whether the broker runs the ACL of ``generation``, or a later one, within ``timeout``:
    HQ's publish to a generation topic is refused until the broker runs that ACL. A later change
    (planned after this one, under the lock) replaces the topic: its ACL holds this change too,
    so from then on the latest generation is the one waited for. ``client`` is HQ's (CN hq)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.publish(generation, b"", qos=1)
            return True
        except PublishRefused:
            if loop.time() >= deadline:
                return False
        with contextlib.suppress(OSError, UnicodeDecodeError, acl.AclError):  # else: the same
            generation = acl.generation_of(broker_acl.output.read_text(encoding="utf-8"))
        await asyncio.sleep(0.02)  # the broker's next loop turn; the condition is re-checked
