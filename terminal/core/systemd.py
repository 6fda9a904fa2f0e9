"""systemd's notify protocol over $NOTIFY_SOCKET with a plain datagram socket (no libsystemd).

``READY=1`` once the devices and store are up, ``STATUS=`` with what the terminal is doing,
``WATCHDOG=1`` from the event loop itself after a health check, every half ``WatchdogSec``: if the
loop hangs, the pings stop and systemd restarts the service. The same task warns when the loop
wakes late, which is how a blocking call that slipped onto the loop shows up in the journal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

LATE_WARNING_SECONDS = 0.1  # a till loop is idle most of the time; 100 ms late is felt at the keys


class Notifier:
    """Sends notify messages; a no-op when not started by systemd (no $NOTIFY_SOCKET)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._socket: socket.socket | None = None
        if address:
            # "@name" is an abstract socket: a leading NUL byte in the kernel's namespace.
            self._target = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @classmethod
    def from_environment(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET"))

    def send(self, *assignments: str) -> bool:
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(assignments).encode(), self._target)
        except OSError as exc:  # systemd went away or the socket is full: never stop the till
            log.warning("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between pings (half of $WATCHDOG_USEC), or None when no watchdog is asked for."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def watchdog_loop(notifier: Notifier, interval: float,
                        healthy: Callable[[], Awaitable[bool]]) -> None:
    """Ping every ``interval`` while ``healthy()`` says so; warn when the loop wakes late."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        late = loop.time() - due
        if late > LATE_WARNING_SECONDS:
            log.warning("event loop woke %.0f ms late: something blocked it", late * 1000)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result when the
        # task is cancelled just as the health check answers, swallowing the cancellation, and
        # this loop went on pinging while the daemon's shutdown waited for it forever (seen
        # under load: tests/app/test_daemon.py, a daemon that never stopped after SIGTERM).
        try:
            async with asyncio.timeout(interval):
                ok = await healthy()
        except TimeoutError:
            ok = False
            log.error("health check did not answer within %.1f s", interval)
        if ok:
            notifier.watchdog()
        else:
            log.error("health check failed: watchdog not pinged")
        due = max(due + interval, loop.time())
