"""paho-mqtt (MQTT 5) driven by the asyncio loop: no paho thread, no ``loop_start``.

The socket is watched with ``add_reader``/``add_writer`` that call ``loop_read``/``loop_write``,
and a task calls ``loop_misc`` every second (keepalive, timeouts), as paho's docs advise for an
external event loop. Every paho callback therefore runs on the loop. Only the blocking TCP connect
and TLS handshake run in a one-thread executor, so an unreachable broker never stalls the till.

``publish`` resolves on PUBACK. It refuses at once while disconnected and fails pending publishes
when the connection drops: the durable outbox, not paho's in-memory queue, owns redelivery
(DESIGN promise 3). Subscriptions are remembered and renewed on every reconnect before the
``on_ready`` callbacks run, so retained bundles arrive after the subscription (promise 5).

Per message cost is what bounds the outbox drain (bench/bench_sync.py), so a readable socket is
read until no bytes wait and what that queued is written at once, and only overlapping
subscriptions carry an MQTT 5 subscription identifier. Everything else is paho's public API:
its in-flight window (``max_inflight_messages_set``), its topic matcher (``MQTTMatcher``) and
``drop_out_messages`` (paho 2.2). Earlier versions buffered TLS writes in an ``SSLSocket``
subclass and kept the in-flight window here; bench_sync showed the same CPU per event without
them (docs/sync.md). paho's private modules are not used: a cheaper Properties put into its
decoder's module cut the event reader's instructions by a third in session 18 and was taken
out again for that reason (docs/hq.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import random
import select
import socket
import ssl
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from terminal.core.executor import DeviceExecutor

log = logging.getLogger(__name__)

MISC_INTERVAL = 1.0
READ_BURST = 64  # reads per readable socket before other callbacks get a turn
# Topics whose matching subscriptions are kept (MqttClient._matching): paho's matcher walks its
# tree for every message (HQ's event reader: some 14 calls of its recursion a message, a tenth
# of the reader's Python under cProfile, session 18), and a chain has one events topic a
# terminal. At most this many, the least recently used forgotten first.
MATCHED_KEPT = 65_536


class MqttError(Exception):
    """Base of the errors this wrapper raises."""


class NotConnected(MqttError):
    pass


class ConnectionLost(MqttError):
    pass


class PublishRefused(MqttError):
    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"broker refused publish to {topic}: {reason}")
        self.reason = reason


class SubscribeRefused(MqttError):
    pass


class RequestTimeout(MqttError, TimeoutError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    """The CA that signed the broker's certificate, and this client's certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    tls: TlsFiles | None = None
    keepalive: int = 30
    connect_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_inflight: int = 100  # QoS 1 publishes awaiting PUBACK; the broker's receive maximum
    clean_start: bool = True
    session_expiry: int = 0  # seconds the broker keeps the session after a drop


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Message], Awaitable[None] | None]


class Backoff:
    """Exponential backoff with jitter: half the step is fixed, half random, so a fleet that lost
    its broker at the same moment does not come back in lockstep."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial, self.maximum = initial, maximum
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        step = min(self.maximum, self.initial * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class _Subscription:
    topic_filter: str
    match_filter: str  # without "$share/{group}/"
    qos: int
    handlers: list[Handler] = field(default_factory=list)
    # MQTT 5 subscription identifier, routing each copy of a message to its own filter's
    # handlers. Only filters that overlap another have one: decoding it costs paho about 8 us a
    # message, a tenth of what receiving an event costs HQ.
    ident: int | None = None
    # MQTT 5 "retain as published": live messages keep their retain flag, so a subscriber can
    # tell (and clear) a message someone left retained where nothing should be.
    as_published: bool = False
    # Whether the broker sends the retained messages matching the filter when it is subscribed.
    retained: bool = True


def _match_filter(topic_filter: str) -> str:
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) < 3:
            raise ValueError(f"shared subscription {topic_filter!r} lacks a group or filter")
        return parts[2]
    return topic_filter


def _no_delay(sock: Any) -> None:
    """Send each packet at once. With Nagle's algorithm a small packet (a PUBACK, an ack) waits
    for the peer's delayed ACK, up to 40 ms on Linux: the outbox drain stalled on it between
    windows (bench/bench_sync.py: 4,500 events/s with it, 6,000 without)."""
    with contextlib.suppress(OSError, AttributeError):  # not TCP: nothing to tune
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _pending(sock: Any) -> int:
    """Decrypted bytes TLS holds for reading (0 for a plain socket)."""
    return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0


def _overlap(a: str, b: str) -> bool:
    """Whether some topic may match both filters (``$`` topics are not treated specially)."""
    levels_a, levels_b = a.split("/"), b.split("/")
    for x, y in zip(levels_a, levels_b, strict=False):
        if "#" in (x, y):
            return True
        if x != y and "+" not in (x, y):
            return False
    longer = max(levels_a, levels_b, key=len)
    return len(levels_a) == len(levels_b) or longer[min(len(levels_a), len(levels_b))] == "#"


def _reason(code: Any) -> str:
    return str(code) if isinstance(code, ReasonCode) else paho.error_string(int(code))


class MqttClient:
    """One MQTT connection kept alive on the running asyncio loop."""

    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self._paho = paho.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id,
                                 protocol=paho.MQTTv5)
        self._paho.connect_timeout = config.connect_timeout
        self._paho.max_inflight_messages_set(config.max_inflight)
        if config.tls is not None:
            context = config.tls.context()
            self._paho.tls_set_context(context)
        for name in ("connect", "disconnect", "publish", "subscribe", "message", "socket_open",
                     "socket_close", "socket_register_write"):
            setattr(self._paho, f"on_{name}", getattr(self, f"_on_{name}"))
        self._subscriptions: dict[str, _Subscription] = {}
        self._routes = MQTTMatcher()  # match filter -> the subscriptions with that filter
        # topic -> the subscriptions it matches (see _match): kept, least recently used first out
        self._matching = functools.lru_cache(maxsize=MATCHED_KEPT)(self._match)
        self._idents = 0  # the last subscription identifier given
        self._ready_callbacks: list[Callable[[], Awaitable[None] | None]] = []
        self._lost_callbacks: list[Callable[[], None]] = []
        self._pending_pub: dict[int, asyncio.Future[None]] = {}
        self._pending_sub: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._requests: dict[bytes, asyncio.Future[Message]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._fd: int | None = None
        self._poll = select.poll()  # the socket's readability, checked without a loop turn
        self._pumping = False  # reading: writes are flushed after the burst, not watched
        self._connack: asyncio.Future[bool] | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._connected = False
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._executor: DeviceExecutor | None = None  # the blocking connect's thread
        self.backoff = Backoff(config.backoff_initial, config.backoff_max)

    # ------------------------------------------------------------ public API

    @property
    def paho(self) -> paho.Client:
        return self._paho

    @property
    def connected(self) -> bool:
        return self._connected

    def set_will(self, will: Will | None) -> None:
        """Set (or clear) the last will; it takes effect from the next connection."""
        if will is None:
            self._paho.will_clear()
        else:
            self._paho.will_set(will.topic, will.payload, will.qos, will.retain)

    def on_ready(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback`` after each (re)connection, once subscriptions are renewed."""
        self._ready_callbacks.append(callback)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when a connection that was ready (its ``on_ready`` callbacks ran)
        ends, lost or stopped, before any reconnection."""
        self._lost_callbacks.append(callback)

    async def start(self) -> None:
        """Begin connecting (and reconnecting) in the background; returns at once."""
        if self._supervisor is not None:
            raise RuntimeError("client already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._executor = DeviceExecutor(f"mqtt-connect-{self.config.client_id}")
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(), name="mqtt-supervisor")
        self._spawn(self._misc())

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def stop(self, timeout: float = 2.0) -> None:
        """Disconnect cleanly (the broker does not publish the will) and stop reconnecting."""
        self._stopping = True
        if self._connected:
            self._paho.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout)
        for task in [t for t in (self._supervisor, *self._tasks) if t is not None]:
            task.cancel()
        await asyncio.gather(*(t for t in (self._supervisor, *self._tasks) if t is not None),
                             return_exceptions=True)
        self._supervisor = None
        if self._paho.socket() is not None:  # never connected fully: drop the socket
            self._drop_socket()
        self._fail_pending(ConnectionLost("client stopped"))
        if self._executor is not None:  # a connect in progress ends within connect_timeout
            await asyncio.to_thread(self._executor.shutdown)
            self._executor = None

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                      properties: Properties | None = None) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1) or the write (QoS 0)."""
        future = self.publish_nowait(topic, payload, qos, retain, properties)
        try:
            await future
        except PublishRefused as exc:
            raise PublishRefused(topic, exc.reason) from None
        finally:
            future.cancel()  # a cancelled caller leaves nothing behind

    def publish_nowait(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                       properties: Properties | None = None) -> asyncio.Future[None]:
        """Hand the message to paho (which sends it once fewer than ``max_inflight`` QoS 1
        publishes await their PUBACK); the future resolves on PUBACK (QoS 1) or the write
        (QoS 0).

        For a stream of publishes (the outbox) this costs no task per message; raises
        :class:`NotConnected` at once while disconnected, and the future fails with
        :class:`ConnectionLost` if the connection drops first.
        """
        if not self._connected:
            raise NotConnected(f"not connected; cannot publish to {topic}")
        future = self._running_loop().create_future()
        info = self._paho.publish(topic, payload, qos, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise NotConnected(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        self._pending_pub[info.mid] = future
        return future

    async def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1,
                        retain_as_published: bool = False, retained: bool = True) -> None:
        """Call ``handler`` on the loop for each message matching ``topic_filter``.

        Remembered across reconnects; while connected, waits for the broker's SUBACK.
        ``retain_as_published``: live messages keep the retain flag they were published with.
        ``retained=False``: live messages only, never the retained copies on subscribing.
        """
        sub = self._subscriptions.get(topic_filter)
        if sub is not None:
            sub.handlers.append(handler)
            return
        sub = _Subscription(topic_filter, _match_filter(topic_filter), qos, [handler],
                            as_published=retain_as_published, retained=retained)
        overlapping = [other for other in self._subscriptions.values()
                       if _overlap(other.match_filter, sub.match_filter)]
        if overlapping:  # identifiers, so that each copy of a message finds its own filter
            for other in (sub, *overlapping):
                if other.ident is None:
                    self._idents += 1
                    other.ident = self._idents
                    if other is not sub and self._connected:  # no retained copies a second time
                        await self._send_subscribe(other, SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        self._subscriptions[topic_filter] = sub
        try:
            self._routes[sub.match_filter].append(sub)
        except KeyError:
            self._routes[sub.match_filter] = [sub]
        self._matching.cache_clear()  # a topic may match this one too
        if self._connected:
            await self._send_subscribe(sub)

    async def request(self, topic: str, payload: bytes, *, response_topic: str,
                      timeout: float) -> Message:
        """MQTT 5 request/response: publish with a response topic and fresh correlation data,
        and return the reply carrying the same correlation data, or raise RequestTimeout."""
        if response_topic not in self._subscriptions:
            await self.subscribe(response_topic, self._on_response)
        correlation = uuid.uuid4().bytes
        future: asyncio.Future[Message] = self._running_loop().create_future()
        self._requests[correlation] = future
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = response_topic
        props.CorrelationData = correlation
        try:
            async with asyncio.timeout(timeout):
                await self.publish(topic, payload, 1, False, props)
                return await future
        except TimeoutError:
            raise RequestTimeout(f"no response on {response_topic} within {timeout}s") from None
        finally:
            self._requests.pop(correlation, None)

    async def respond(self, request: Message, payload: bytes) -> None:
        """Answer a request on its response topic with its correlation data."""
        if not request.response_topic:
            raise ValueError(f"message on {request.topic} has no response topic")
        props = Properties(PacketTypes.PUBLISH)
        if request.correlation_data is not None:
            props.CorrelationData = request.correlation_data
        await self.publish(request.response_topic, payload, 1, False, props)

    # ------------------------------------------------------------ connection upkeep

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("client not started")
        return self._loop

    async def _supervise(self) -> None:
        loop = self._running_loop()
        first = True
        ready = False  # the connection now ending had been ready (its callbacks ran)
        while not self._stopping:
            self._lost.clear()
            self._connack = loop.create_future()
            try:
                if first:
                    await self._executor.run(self._connect_blocking)
                else:
                    await self._executor.run(self._paho.reconnect)
                first = False
                async with asyncio.timeout(self.config.connect_timeout * 2):
                    accepted = await self._connack
                if accepted:
                    self.backoff.reset()
                    await self._renew_subscriptions()
                    self._ready.set()
                    ready = True
                    await self._run_ready_callbacks()
                await self._lost.wait()
            except (OSError, ssl.SSLError, TimeoutError, MqttError) as exc:
                log.warning("MQTT %s:%s: %s", self.config.host, self.config.port, exc)
                self._drop_socket()
            self._ready.clear()
            if ready:
                ready = False
                self._run_lost_callbacks()
            if not self._stopping:
                delay = self.backoff.next()
                log.info("MQTT reconnect in %.1fs", delay)
                await asyncio.sleep(delay)

    def _connect_blocking(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry
        self._paho.connect(self.config.host, self.config.port, self.config.keepalive,
                           clean_start=self.config.clean_start, properties=props)

    def _drop_socket(self) -> None:
        sock = self._paho.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self._paho.loop_read()  # paho sees EOF, closes the socket and reports the loss

    async def _misc(self) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL)
            if self._paho.socket() is not None:
                self._paho.loop_misc()

    async def _renew_subscriptions(self) -> None:
        await asyncio.gather(*(self._send_subscribe(s) for s in self._subscriptions.values()))

    async def _send_subscribe(
            self, sub: _Subscription,
            retain_handling: int = SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE) -> None:
        if not sub.retained:
            retain_handling = SubscribeOptions.RETAIN_DO_NOT_SEND
        props = Properties(PacketTypes.SUBSCRIBE)
        if sub.ident is not None:
            props.SubscriptionIdentifier = sub.ident
        options = SubscribeOptions(qos=sub.qos, retainHandling=retain_handling,
                                   retainAsPublished=sub.as_published)
        rc, mid = self._paho.subscribe(sub.topic_filter, options=options, properties=props)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise NotConnected(f"subscribe failed: {paho.error_string(rc)}")
        future: asyncio.Future[list[ReasonCode]] = self._running_loop().create_future()
        self._pending_sub[mid] = future
        try:
            codes = await future
        finally:
            self._pending_sub.pop(mid, None)
        if not codes or codes[0].is_failure:
            raise SubscribeRefused(f"broker refused subscription to {sub.topic_filter}: "
                                   f"{codes[0] if codes else 'no reason code'}")

    def _run_lost_callbacks(self) -> None:
        for callback in self._lost_callbacks:
            try:
                callback()
            except Exception:
                log.exception("MQTT on_lost callback failed")

    async def _run_ready_callbacks(self) -> None:
        for callback in self._ready_callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("MQTT on_ready callback failed")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail_pending(self, exc: MqttError) -> None:
        for future in [*self._pending_pub.values(), *self._pending_sub.values()]:
            if not future.done():
                future.set_exception(exc)
        self._pending_pub.clear()

    # ------------------------------------------------------------ paho callbacks (on the loop)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        accepted = not reason.is_failure
        self._connected = accepted
        if not accepted:
            log.warning("MQTT broker refused the connection: %s", reason)
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(accepted)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        self._connected = False
        self._ready.clear()
        # Fail every pending publish, and keep paho from sending them again after a reconnect:
        # their senders (the outbox) publish again if they must.
        self._paho.drop_out_messages()
        self._fail_pending(ConnectionLost(f"connection lost: {_reason(reason)}"))
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(False)
        self._lost.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Any) -> None:
        future = self._pending_pub.pop(mid, None)
        if future is not None and not future.done():  # else nobody waits for it any more
            if reason.is_failure:
                future.set_exception(PublishRefused("", str(reason)))
            else:
                future.set_result(None)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Any) -> None:
        future = self._pending_sub.get(mid)
        if future is not None and not future.done():
            future.set_result(reasons)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        message = Message(
            topic=msg.topic, payload=bytes(msg.payload), qos=msg.qos, retain=bool(msg.retain),
            response_topic=getattr(props, "ResponseTopic", None),
            correlation_data=getattr(props, "CorrelationData", None),
            user_properties=tuple(getattr(props, "UserProperty", ()) or ()),
        )
        # Overlapping filters bring one copy per filter; each copy goes only to its own filter.
        idents = set(getattr(props, "SubscriptionIdentifier", None) or ())
        for sub in self._matching(message.topic):
            if not idents or sub.ident in idents:
                for handler in list(sub.handlers):
                    self._dispatch(handler, message)

    def _match(self, topic: str) -> tuple[_Subscription, ...]:
        """The subscriptions whose filter matches ``topic``, in the matcher's order (asked
        through ``_matching``: found once a topic, kept until a subscription is added)."""
        return tuple(sub for subs in self._routes.iter_match(topic) for sub in subs)

    def _dispatch(self, handler: Handler, message: Message) -> None:
        try:
            result = handler(message)
        except Exception:
            log.exception("MQTT handler for %s failed", message.topic)
            return
        if inspect.isawaitable(result):
            self._spawn(self._guard(result, message.topic))

    @staticmethod
    async def _guard(awaitable: Awaitable[None], topic: str) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("MQTT handler for %s failed", topic)

    def _on_response(self, message: Message) -> None:
        future = self._requests.get(message.correlation_data or b"")
        if future is None:
            log.info("MQTT response on %s matches no pending request", message.topic)
        elif not future.done():
            future.set_result(message)

    # Socket watching. paho may open the socket (and queue the CONNECT) from the connect thread;
    # those calls are handed to the loop so that only the loop touches its selectors.

    def _call_on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._running_loop().call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        _no_delay(sock)
        self._call_on_loop(self._watch, sock.fileno())

    def _watch(self, fd: int) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._running_loop().add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        # paho reads at most as many packets per call as it has messages in flight (one, for a
        # client that only receives), and TLS may hold decrypted bytes the selector never
        # reports (paho's own loop checks ``pending()`` too). So read on while bytes wait, up to
        # a burst, then send what reading queued (PUBACKs, publishes freed from the in-flight
        # limit) at once rather than a loop turn later: one turn per burst, not three per packet.
        self._pumping = True
        try:
            for _ in range(READ_BURST):
                self._paho.loop_read()
                sock = self._paho.socket()
                if sock is None or not (_pending(sock) or self._poll.poll(0)):
                    break
        finally:
            self._pumping = False
        self._write()

    def _write(self) -> None:
        """Hand paho's queued packets to the socket; while paho has more than the socket took,
        wait until it is writable."""
        if self._paho.want_write():
            self._paho.loop_write()
        if self._fd is None:
            return
        if self._paho.want_write():
            self._running_loop().add_writer(self._fd, self._write)
        else:
            self._running_loop().remove_writer(self._fd)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._call_on_loop(self._unwatch)

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._running_loop().remove_reader(self._fd)
            self._running_loop().remove_writer(self._fd)
            self._fd = None

    # paho asks for writability when it queues a packet; reading flushes at the end of its burst
    # and ``_write`` decides when to stop watching, so paho's "unregister" needs no handler.

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if not self._pumping:
            self._call_on_loop(self._watch_write, sock.fileno())

    def _watch_write(self, fd: int) -> None:
        if fd == self._fd:
            self._running_loop().add_writer(fd, self._write)
