"""The MQTT topic scheme (DESIGN.md, "Topic scheme"), built and parsed in one place.

Terminal topics live under ``{root}/t/{store}/{terminal}/``; the broker's pattern ACL grants a
terminal exactly that subtree (its certificate's CN is ``{store}/{terminal}``). Member requests and
responses therefore also sit under it (``members/req``, ``members/resp``), so HQ knows from the
topic, which the broker enforces, which terminal asked.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

DEFAULT_ROOT = "posterm/v1"

# Letters, digits, dot, dash, underscore: printable, no MQTT wildcard or separator, no spaces.
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CARD_HASH = re.compile(r"[0-9a-f]{64}")
_NONCE = re.compile(r"[0-9a-f]{32}")

TERMINAL_CHANNELS = ("events", "status", "acks", "cmd", "members/req", "members/resp")
SHARED_GROUP = "posterm-hq"


class TopicError(ValueError):
    """A topic or an id in it is not part of the scheme."""


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid store or terminal id, else raise TopicError."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise TopicError(f"{what} id {value!r} must be 1-64 characters of A-Z a-z 0-9 . _ - "
                         "(no '/', '+', '#', spaces or control characters)")
    return value


def check_root(root: str) -> str:
    parts = root.split("/") if isinstance(root, str) else [""]
    if not all(_ID.fullmatch(part) for part in parts):
        raise TopicError(f"topic root {root!r} must be '/'-separated ids (e.g. {DEFAULT_ROOT})")
    return root


@dataclass(frozen=True)
class TerminalTopic:
    """A parsed ``{root}/t/{store}/{terminal}/{channel}`` topic."""

    store: str
    terminal: str
    channel: str


class Topics:
    """Builders and the parser for one topic root."""

    PARSED_KEPT = 65_536  # terminal topics parsed and kept (see parse_terminal)

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = check_root(root)
        # lru_cache keeps no exception: a refused topic is parsed, and refused, every time.
        self._kept = functools.lru_cache(maxsize=self.PARSED_KEPT)(self._parse_terminal)

    def terminal_base(self, store: str, terminal: str) -> str:
        return f"{self.root}/t/{check_id(store, 'store')}/{check_id(terminal, 'terminal')}"

    def terminal(self, store: str, terminal: str, channel: str) -> str:
        if channel not in TERMINAL_CHANNELS:
            raise TopicError(f"unknown terminal channel {channel!r}")
        return f"{self.terminal_base(store, terminal)}/{channel}"

    def events(self, store: str, terminal: str) -> str:
        return self.terminal(store, terminal, "events")

    def status(self, store: str, terminal: str) -> str:
        return self.terminal(store, terminal, "status")

    def acks(self, store: str, terminal: str) -> str:
        return self.terminal(store, terminal, "acks")

    def cmd(self, store: str, terminal: str) -> str:
        return self.terminal(store, terminal, "cmd")

    def member_request(self, store: str, terminal: str) -> str:
        return self.terminal(store, terminal, "members/req")

    def member_response(self, store: str, terminal: str) -> str:
        return self.terminal(store, terminal, "members/resp")

    def hq_state(self) -> str:
        return f"{self.root}/hq/state"

    def bundle(self, scope: str) -> str:
        return f"{self.root}/bundles/{check_scope(scope)}"

    def os_release(self, store: str | None = None) -> str:
        """HQ's signed announcement of the operating-system bundle, retained
        (terminal.protocol.release.OsRelease): chain-wide, or staged to one store first
        (``os/store/{store}``, which the broker ACL lets only that store's terminals read)."""
        if store is None:
            return f"{self.root}/os/chain"
        return f"{self.root}/os/store/{check_id(store, 'store')}"

    def os_releases_for(self, store: str) -> tuple[str, str]:
        """The OS announcements a terminal of ``store`` follows: its store's first, then the
        chain's (the newest of them wins: terminal.sync.os_releases)."""
        return (self.os_release(store), self.os_release())

    def member_state(self, card_hash: str) -> str:
        """Where HQ publishes a card's signed member state (protocol.member_state)."""
        if not isinstance(card_hash, str) or not _CARD_HASH.fullmatch(card_hash):
            raise TopicError(f"card hash {card_hash!r} must be 64 lower-case hex digits")
        return f"{self.root}/members/state/{card_hash}"

    def member_states(self) -> str:
        """Every card's member state: what a terminal subscribes to."""
        return f"{self.root}/members/state/+"

    def states_notice(self) -> str:
        """Where HQ says it published many member states at once (protocol.member_state's
        ``StatesNotice``): tills take them by their catch-up."""
        return f"{self.root}/members/states"

    def parse_member_state(self, topic: str) -> str:
        """The card hash of a member-state topic."""
        prefix = f"{self.root}/members/state/"
        card_hash = topic[len(prefix):] if isinstance(topic, str) else ""
        if not topic.startswith(prefix) or not _CARD_HASH.fullmatch(card_hash):
            raise TopicError(f"topic {topic!r} is not a member-state topic")
        return card_hash

    def enroll_request(self) -> str:
        """Where a new box, under the shared claim identity, sends its enrollment request (the
        broker ACL confines the claim identity to this topic and the responses)."""
        return f"{self.root}/enroll/req"

    def enroll_response(self, nonce: str) -> str:
        """Where HQ answers one enrollment request; ``nonce`` is the box's random hex."""
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise TopicError(f"enrollment nonce {nonce!r} must be 32 lower-case hex digits")
        return f"{self.root}/enroll/resp/{nonce}"

    def is_enroll_response(self, topic: str) -> bool:
        prefix = f"{self.root}/enroll/resp/"
        return (isinstance(topic, str) and topic.startswith(prefix)
                and bool(_NONCE.fullmatch(topic[len(prefix):])))

    def scopes_for(self, store: str) -> tuple[str, str]:
        """The bundle scopes a terminal of ``store`` belongs to, broadest first."""
        return ("chain", f"store/{check_id(store, 'store')}")

    def all_terminals(self, channel: str, shared: bool = True) -> str:
        """HQ's filter for one channel of every terminal; shared so collectors split the load."""
        if channel not in TERMINAL_CHANNELS:
            raise TopicError(f"unknown terminal channel {channel!r}")
        topic = f"{self.root}/t/+/+/{channel}"
        return f"$share/{SHARED_GROUP}/{topic}" if shared else topic

    def parse_terminal(self, topic: str) -> TerminalTopic:
        """Parse a terminal topic; raise TopicError for anything outside the scheme.

        A topic parsed once is answered from memory after (HQ parses the topic of every event
        it reads, in the event reader and again in the ingest process, and a chain has one
        events topic a terminal): its TerminalTopic is immutable, and a topic refused is
        parsed, and refused, every time. At most PARSED_KEPT are kept, the least recently
        used forgotten first."""
        if not isinstance(topic, str):  # unhashable, maybe: refused unkept
            return self._parse_terminal(topic)
        return self._kept(topic)

    def _parse_terminal(self, topic: str) -> TerminalTopic:
        prefix = f"{self.root}/t/"
        if not isinstance(topic, str) or not topic.startswith(prefix):
            raise TopicError(f"topic {topic!r} is not under {prefix}")
        parts = topic[len(prefix):].split("/", 2)
        if len(parts) != 3:
            raise TopicError(f"topic {topic!r} lacks store, terminal and channel")
        store, terminal, channel = parts
        check_id(store, "store")
        check_id(terminal, "terminal")
        if channel not in TERMINAL_CHANNELS:
            raise TopicError(f"topic {topic!r} has unknown channel {channel!r}")
        return TerminalTopic(store, terminal, channel)

    def parse_bundle(self, topic: str) -> str:
        """Return the scope of a bundle topic."""
        prefix = f"{self.root}/bundles/"
        if not isinstance(topic, str) or not topic.startswith(prefix):
            raise TopicError(f"topic {topic!r} is not under {prefix}")
        return check_scope(topic[len(prefix):])


def check_scope(scope: str) -> str:
    """A scope is ``chain`` or ``store/{store}``."""
    if scope == "chain":
        return scope
    if isinstance(scope, str) and scope.startswith("store/"):
        check_id(scope[len("store/"):], "store")
        return scope
    raise TopicError(f"scope {scope!r} must be 'chain' or 'store/<store id>'")


def identity(store: str, terminal: str) -> str:
    """The certificate CN (and so the broker username) of a terminal: ``{store}/{terminal}``."""
    return f"{check_id(store, 'store')}/{check_id(terminal, 'terminal')}"
