"""HQ's answer to a till's catch-up of member states (``publish.catch_up``): the published
messages above the till's version in version order, a page at a time, never skipping a card: a
page stops before a state not yet published, and a full page before its last version (a merge
or a replacement changes two cards at one version, which may straddle the page's end)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from terminal.hq.database import open_hq_database, writing
from terminal.hq.member_ops.publish import catch_up, mark_published
from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS, CardState
from terminal.protocol.member_state import MemberState


def _card(n: int) -> str:
    return f"{n:064x}"


def _published(card: str, version: int, wire: bytes) -> None:
    """As the publisher records a state it published (its message here a stand-in)."""
    mark_published([(MemberState(card, version, datetime.now(UTC), "active", ""), wire)])


def test_pages_follow_the_versions_and_never_skip_a_card(tmp_path: Path) -> None:
    db = open_hq_database(str(tmp_path / "hq.db"))
    # Versions 1-6 one card each, 7 two cards (a merge), 8 and 9 one each; 9 not published.
    cards = [(_card(n), n) for n in range(1, 7)] + [(_card(70), 7), (_card(71), 7),
                                                     (_card(8), 8), (_card(9), 9)]
    with bound(db, MODELS + HQ_MODELS), writing(db):
        for card, version in cards:
            CardState.create(card_hash=card, state="active", reason="", version=version,
                             updated_us=0)
            if version != 9:
                _published(card, version, f"signed {card[-2:]} v{version}".encode())
    with bound(db, MODELS + HQ_MODELS):
        first = catch_up(db, 0, limit=3)
        assert (first.states, first.through, first.more) == (
            ["signed 01 v1", "signed 02 v2", "signed 03 v3"], 3, True)
        # A page ending inside version 7 stops before it: both its cards come next.
        page = catch_up(db, 4, limit=3)
        assert (page.states, page.through, page.more) == (
            ["signed 05 v5", "signed 06 v6"], 6, True)
        page = catch_up(db, 6, limit=3)
        assert (page.states, page.through, page.more) == (
            ["signed 46 v7", "signed 47 v7", "signed 08 v8"], 8, True)
        # Version 9 waits for the publisher: nothing past 8 yet, and no more for now.
        page = catch_up(db, 8, limit=3)
        assert (page.states, page.through, page.more) == ([], 8, False)
        _published(_card(9), 9, b"signed 09 v9")
        page = catch_up(db, 8, limit=3)
        assert (page.states, page.through, page.more) == (["signed 09 v9"], 9, False)
        # A card changed again is answered once, at its newest version, when published.
        CardState.update(version=10).where(CardState.card_hash == _card(2)).execute()
        assert catch_up(db, 9).states == [] and catch_up(db, 9).through == 9
        _published(_card(2), 10, b"signed 02 v10")
        assert catch_up(db, 0).states[-1] == "signed 02 v10"
        assert catch_up(db, 0).through == 10
        assert catch_up(db, 10).states == [] and catch_up(db, 10).through == 10
    db.close()
