"""A new box's first rules: HQ's retained bundle, fetched before the till can start.

A box provisioned as docs/field.md says has a config, credentials and HQ's root key, but no rules:
they come only in HQ's signed bundle. Until it holds one, the daemon connects under its own
certificate, subscribes to its scopes' bundle topics (broadest first, as the link does) and takes
the retained bundles HQ keeps there. Each is checked by the same code as every later bundle
(:func:`terminal.protocol.bundle.verify_bundle`: signature chain to the provisioned root key,
revoked keys, scope, expiry; then the terminal's own parse of its rules). A refused one is logged
and shown with the reason, and the box goes on waiting. Once one verifies, bundles still arriving
in the next ``settle`` seconds are taken too (a store's bundle beside the chain's), and the
verified bundles are returned broadest first; the daemon stores them through
:func:`terminal.sync.bundle_store.receive`, which checks them again in the ledger's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from terminal.loyalty.rules import Rules
from terminal.protocol.bundle import BundleRejected, TrustStore, WrongScope, verify_bundle
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, TlsFiles
from terminal.protocol.topics import DEFAULT_ROOT, TopicError, Topics
from terminal.sync import bundle_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FirstBundle:
    """One verified bundle: its scope, the wire message as received, its parsed rules."""

    scope: str
    wire: bytes
    version: int
    rules: Rules


@dataclass(frozen=True)
class BrokerAccess:
    """How the box reaches the broker (the daemon config's ``[broker]``)."""

    host: str
    port: int
    tls: TlsFiles
    client_id: str
    topic_root: str = DEFAULT_ROOT


def check(wire: bytes, topic_scope: str, trust: TrustStore, scopes: tuple[str, ...],
          clock_trusted: bool) -> FirstBundle:
    """Verify one bundle for a box that holds none; raises BundleRejected with the reason."""
    bundle = verify_bundle(wire, trust, set(scopes), 0, datetime.now(UTC), clock_trusted)
    if bundle.scope != topic_scope:
        raise WrongScope(f"a {bundle.scope!r} bundle arrived on the {topic_scope!r} topic")
    return FirstBundle(bundle.scope, bytes(wire), bundle.version,
                       bundle_store.parse_rules(bundle.payload))


async def await_first_bundles(
    broker: BrokerAccess, store: str, trust: TrustStore, *,
    clock_trusted: Callable[[], bool],
    on_refused: Callable[[str, str], None] = lambda reason, detail: None,
    on_linked: Callable[[], Awaitable[None] | None] | None = None,
    stop: asyncio.Event | None = None, settle: float = 1.0,
    backoff_initial: float = 0.5, backoff_max: float = 30.0,
) -> list[FirstBundle]:
    """Wait for HQ's retained bundles of ``store``'s scopes; the verified ones, broadest scope
    first, or an empty list when ``stop`` is set first. ``on_refused(reason, detail)`` hears
    every refusal (the box keeps waiting); ``on_linked()`` runs each time the box is connected
    under its certificate and subscribed (the daemon marks its release healthy there)."""
    topics = Topics(broker.topic_root)
    scopes = topics.scopes_for(store)
    found: dict[str, FirstBundle] = {}
    first = asyncio.Event()
    stop = stop or asyncio.Event()

    def on_bundle(message: Message) -> None:
        if not message.payload:
            return  # a cleared retained bundle
        try:
            scope = topics.parse_bundle(message.topic)
            got = check(message.payload, scope, trust, scopes, clock_trusted())
        except (BundleRejected, TopicError, ValueError) as exc:
            reason, detail = bundle_store.rejection(exc)
            log.error("HQ's bundle on %s refused (%s): %s; still waiting for HQ's rules",
                      message.topic, reason, detail)
            on_refused(reason, detail)
            return
        held = found.get(got.scope)
        if held is None or got.version > held.version:
            found[got.scope] = got
            log.info("HQ's %s bundle v%d verified", got.scope, got.version)
        first.set()

    client = MqttClient(MqttConfig(broker.host, broker.port, broker.client_id, tls=broker.tls,
                                   backoff_initial=backoff_initial, backoff_max=backoff_max))
    for scope in scopes:
        await client.subscribe(topics.bundle(scope), on_bundle)
    if on_linked is not None:
        client.on_ready(on_linked)
    await client.start()
    try:
        waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if stop.is_set():
            return []
        # The other scope's retained bundle comes with the same subscriptions: take it too.
        await asyncio.sleep(settle)
    finally:
        await client.stop()
    return [found[scope] for scope in scopes if scope in found]
