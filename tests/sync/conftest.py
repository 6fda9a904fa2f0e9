"""Fixtures for the sync suite: a PKI, the shipped Mosquitto config on a free port (with the ACL
`posterm-hq acl` writes for the test fleet, tests.support.mosquitto.TEST_FLEET), PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from terminal.protocol.mqtt import MqttClient, MqttConfig, TlsFiles, Will
from tests.support.mosquitto import BrokerTls, Mosquitto
from tests.support.pki import CertificateAuthority

TIMEOUT = 90.0  # a whole scenario's limit: generous, it only ends a broken run


class Pki:
    """One CA for the chain, a second unrelated one, and client certificates on demand."""

    def __init__(self, directory: Path) -> None:
        self.ca = CertificateAuthority(directory / "chain")
        self.other_ca = CertificateAuthority(directory / "rogue", name="rogue CA")
        server = self.ca.server()
        self.broker_tls = BrokerTls(self.ca.ca_file, server.cert, server.key)
        self._clients: dict[tuple[bool, str], TlsFiles] = {}

    def client(self, cn: str, rogue: bool = False) -> TlsFiles:
        key = (rogue, cn)
        if key not in self._clients:
            files = (self.other_ca if rogue else self.ca).client(cn)
            self._clients[key] = TlsFiles(self.ca.ca_file, files.cert, files.key)
        return self._clients[key]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(pki: Pki, tmp_path: Path) -> Iterator[Mosquitto]:
    """A running broker; ``broker.register`` and ``generate_acl``/``reload`` change its ACL."""
    with Mosquitto(tmp_path / "broker", pki.broker_tls) as running:
        yield running


def run(coro: Coroutine[Any, Any, Any], timeout: float = TIMEOUT) -> Any:
    """Run one async scenario on a fresh loop, with an overall time limit."""
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def mqtt_client(pki: Pki, broker: Mosquitto, cn: str, client_id: str | None = None,
                      will: Will | None = None, ready: bool = True,
                      **config: Any) -> AsyncIterator[MqttClient]:
    """A started client with the certificate for ``cn``; stopped on exit."""
    client = MqttClient(MqttConfig(broker.host, broker.port, client_id or cn.replace("/", "-"),
                                   tls=pki.client(cn), backoff_initial=0.1, backoff_max=0.5,
                                   **config))
    client.set_will(will)
    await client.start()
    try:
        if ready:
            await client.wait_ready(10)
        yield client
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def hq_and_terminal(pki: Pki, broker: Mosquitto, cn: str = "S001/T01",
                          **config: Any) -> AsyncIterator[tuple[MqttClient, MqttClient]]:
    """HQ's client and a terminal's (certificate ``cn``, client ``config``), both started."""
    async with mqtt_client(pki, broker, "hq") as hq, \
            mqtt_client(pki, broker, cn, **config) as terminal:
        yield hq, terminal


# Published after the messages a test expects to be dropped, on the same connection: once it
# arrives, the broker has already delivered anything it was going to deliver before it.
SENTINEL = b"sentinel"


class Inbox:
    """Collects messages and lets a test wait for a given number of them."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, message: Any) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages

    async def wait_for_payload(self, payload: bytes, timeout: float = 5.0) -> list[Any]:
        """Wait until a message carrying ``payload`` arrived: a sentinel published after the
        messages a test expects not to see, from the same connection, so the broker would have
        delivered those first."""
        async with asyncio.timeout(timeout):
            while not any(m.payload == payload for m in self.messages):
                self._changed.clear()
                await self._changed.wait()
        return self.messages

    async def before_sentinel(self, timeout: float = 5.0) -> list[Any]:
        """Wait for :data:`SENTINEL`, which must be the last message to have come; take it out
        and return the messages that came before it."""
        await self.wait_for_payload(SENTINEL, timeout)
        assert self.messages.pop().payload == SENTINEL  # the last one
        return self.messages

    @property
    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server for the session; yields it (``.dsn``, ``.port``)."""
    from tests.support.postgres import Postgres

    server = Postgres()
    try:
        server.start()
    except FileNotFoundError as exc:
        server.stop()
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
