"""The tests' broker: the shipped Mosquitto configuration (terminal.hq.localchain.broker) on a
free loopback port, its ACL generated for the test fleet."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from terminal.hq.localchain import broker
from terminal.hq.localchain.broker import SHIPPED_ACL, BrokerTls, free_port

# The terminals the broker's generated ACL knows (HQ's register in the tests): two per store.
TEST_FLEET = ("S001/T01", "S001/T02", "S002/T01", "S002/T02")

__all__ = ["SHIPPED_ACL", "TEST_FLEET", "BrokerTls", "Mosquitto", "free_port"]


class Mosquitto(broker.Mosquitto):
    def __init__(self, directory: Path, tls: BrokerTls, acl: Path | None = None,
                 port: int | None = None, terminals: Iterable[str] = TEST_FLEET) -> None:
        super().__init__(directory, tls, acl, port, terminals)
