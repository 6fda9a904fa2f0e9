"""A chain in one process for the sync tests: terminals (ledger + MqttHqLink), HQ collectors,
signing keys and bundles, all against the broker the test started."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.hq.bundles import read_toml
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.collector import Collector, Flag, Ready
from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.publish import Signer
from terminal.hq.models import AppliedEvent
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest, SaleResult
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import LedgerEntry, Member, Outbox
from terminal.protocol import bundle
from terminal.protocol.keys import public_pem
from terminal.protocol.mqtt import MqttConfig
from terminal.sync.link import MqttHqLink
from tests.support.mosquitto import Mosquitto
from tests.support.shared import EXAMPLES

CARD_KEY = b"chain-card-key-0123456789abcdef"


def rules_data(**redeem: Any) -> dict[str, Any]:
    data = read_toml(EXAMPLES / "rules.toml")
    data = copy.deepcopy(data)
    data["redeem"].update(redeem)
    return data


def now() -> datetime:
    return datetime.now(UTC)


async def until(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.05) -> None:
    """Wait until ``check()`` (sync or async) is true. The deadline is generous: it only
    matters when something is broken, and a loaded CI machine must not fail a healthy run."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(every)


class Keys:
    """A root key, a delegated signing key, and bundles signed with them."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.root = Ed25519PrivateKey.generate()
        self.signing = Ed25519PrivateKey.generate()
        start = now() - timedelta(days=30)
        self.delegation = bundle.delegate(self.root, self.signing.public_key(), start,
                                          start + timedelta(days=60))
        self.root_pub = directory / "root.pub"
        self.root_pub.write_bytes(public_pem(self.root.public_key()))

    def bundle(self, scope: str, version: int, payload: dict[str, Any], *,
               issued: datetime | None = None, expires: datetime | None = None,
               signing: Ed25519PrivateKey | None = None) -> bytes:
        issued = issued or now() - timedelta(minutes=1)
        raw = bundle.bundle_bytes(scope, version, issued, expires or issued + timedelta(days=7),
                                  bundle.key_id(self.signing.public_key()), payload)
        return bundle.envelope(raw, bundle.sign(raw, signing or self.signing),
                               self.delegation.to_wire())


@dataclass
class Till:
    """One terminal: its ledger and its link to HQ."""

    store: LedgerStore
    link: MqttHqLink
    printed: list[str] = field(default_factory=list)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.link.ledger.run(fn, *args)

    async def register(self, card: str) -> None:
        await self.run(self.store.register, Registration(card=card, operator="ann"),
                       Moment(now()))
        self.link.events_written()

    async def sell(self, fen: int, card: str | None = None, redeem: int = 0,
                   online: bool = True, category: str = "") -> SaleResult:
        request = SaleRequest(str(uuid.uuid4()), [Line("SKU1", 1, fen, "item", category)],
                              card=card, redeem_points=redeem, operator="ann")
        result = await self.run(self.store.sale, request, Moment(now()), online)
        self.link.events_written()
        return result

    async def backlog(self) -> int:
        return await self.link.outbox.backlog()

    async def events(self) -> list[str]:
        return await self.run(lambda: [r.id for r in Outbox.select().order_by(Outbox.seq)])

    async def balance(self, card: str) -> int:
        return (await self.run(self.store.member, card, Moment(now()))).balance


class Chain:
    """Everything one scenario needs; open tills and HQs first, then ``start`` them."""

    def __init__(self, tmp: Path, pki: Any, broker: Mosquitto, **redeem: Any) -> None:
        self.tmp, self.pki, self.broker = tmp, pki, broker
        self.rules_data = rules_data(**redeem)
        self.rules = Rules.from_mapping(self.rules_data)
        self.keys = Keys(tmp / "keys")
        self.tills: list[Till] = []
        self.hqs: list[Collector] = []

    def till(self, store_id: str = "S001", terminal_id: str = "T01", **options: Any) -> Till:
        store = LedgerStore.open(self.tmp / f"{store_id}-{terminal_id}.db", self.rules,
                                 CARD_KEY, Identity(store_id, terminal_id))
        files = self.pki.client(f"{store_id}/{terminal_id}")
        printed: list[str] = []
        thread = LedgerThread(store.db, name=f"ledger-{store_id}-{terminal_id}")
        link = MqttHqLink(
            store, thread, host=self.broker.host, port=self.broker.port, ca=files.ca,
            cert=files.cert,
            key=files.key, root_keys=[self.keys.root_pub], software_version="0.1.0-test",
            device_health=lambda: {"printer": "ok", "reader": "present"},
            print_status=lambda: printed.append("status page"), clock_trusted=lambda: True,
            backoff_initial=0.05, backoff_max=0.3, **options)
        till = Till(store, link, printed)
        self.tills.append(till)
        return till

    def hq(self, db_url: str | None = None, client_id: str = "hq-1",
           ledger: ChainLedger | None = None, member_states: bool = False,
           serves: str = "all", answering: Flag | None = None,
           ready: Ready | None = None, holds_on_loop: bool = False) -> Collector:
        """A collector; with ``member_states`` it also publishes the member states HQ's member
        operations change, signed with the chain's signing key; ``serves``, ``answering`` and
        ``ready`` as ``Collector`` takes them (the two sides of ``--member-requests apart``);
        ``holds_on_loop`` too (on PostgreSQL only; off here, where posterm-hq collect's default
        is on since session 14)."""
        if ledger is None:
            db = open_hq_database(db_url or str(self.tmp / "hq.db"))
            ledger = ChainLedger(db, self.rules, CARD_KEY)
        files = self.pki.client("hq")
        signer = Signer(self.keys.signing, self.keys.delegation.to_wire()) \
            if member_states else None
        collector = Collector(ledger, MqttConfig(self.broker.host, self.broker.port, client_id,
                                                 tls=files, backoff_initial=0.05,
                                                 backoff_max=0.3), state_interval=0.5,
                              signer=signer, serves=serves, answering=answering,
                              ready=ready, holds_on_loop=holds_on_loop)
        self.hqs.append(collector)
        return collector

    async def start(self) -> None:
        for hq in self.hqs:
            await hq.start()
        for till in self.tills:
            await till.link.start()

    async def ready(self, timeout: float = 30.0) -> None:
        """Until every till and HQ is connected with its subscriptions in place: what a test
        publishes after this reaches them live (before it, only the last retained copy would)."""
        clients = [hq.client for hq in self.hqs] + [till.link.client for till in self.tills]
        await asyncio.gather(*(client.wait_ready(timeout) for client in clients))

    async def __aenter__(self) -> Chain:
        """Started and ready (:meth:`ready`); a test that starts with the broker down calls
        :meth:`start` itself."""
        await self.start()
        await self.ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        for till in self.tills:
            await till.link.stop()
            till.link.ledger.close()
            till.store.close()
        for hq in self.hqs:
            await hq.stop()
        closed = set()
        for hq in self.hqs:
            if id(hq.ledger) not in closed:
                closed.add(id(hq.ledger))
                await asyncio.to_thread(hq.ledger.close)

    async def drained(self, timeout: float = 20.0) -> None:
        async def empty() -> bool:
            return all([await till.backlog() == 0 for till in self.tills])
        await until(empty, timeout)


async def hq_applied(hq: Collector) -> dict[str, str]:
    """HQ's applied-event rows: id -> outcome."""
    return await hq.ledger.thread.run(
        lambda: {row.id: row.outcome for row in AppliedEvent.select()})


async def hq_snapshot(hq: Collector) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """HQ's ledger entries and member balances, to compare before and after."""
    def read() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        entries = list(LedgerEntry.select(LedgerEntry.id, LedgerEntry.kind, LedgerEntry.points,
                                          LedgerEntry.reason).order_by(LedgerEntry.seq).tuples())
        members = list(Member.select(Member.card_hash, Member.balance, Member.debt)
                       .order_by(Member.card_hash).tuples())
        return entries, members
    return await hq.ledger.thread.run(read)
