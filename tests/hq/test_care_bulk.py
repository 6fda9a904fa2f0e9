"""A campaign's bonus granted set-based (terminal.hq.member_ops.bulk) writes exactly the rows
the members' adjustments one by one (``MemberOps.adjust``) write: the same bonus granted both
ways on twin databases, every table compared row for row, on SQLite and on PostgreSQL.

The chain is member care's (tests/hq/care_chain) with members imported beside it so that every
case an adjustment meets is there: lots due to expire (recorded before the bonus), lots not yet
due, a member in debt (the bonus pays it off first), one with nothing, a card replaced (the
member goes on under the new one), a membership merged away (refused: its card is retired), an
erased member and a frozen card (refused: a bonus is not for them), a message naming no member
at all (refused), in chunks of a few members.

Random ids (entries, lots) are compared by the order of the entries' sequence numbers; on
PostgreSQL the sequence numbers themselves by their order (each write transaction takes a
block of the chain sequence: one by one takes two a member, set-based one a chunk), on SQLite
as they are.
"""

from __future__ import annotations

import functools
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from peewee import Database, PostgresqlDatabase

from terminal.hq.care import campaigns
from terminal.hq.care.dispatch import ALL_MODELS
from terminal.hq.care.models import CareCampaign
from terminal.hq.care.service import Care
from terminal.hq.console.roles import Principal
from terminal.hq.database import open_hq_database, writing
from terminal.hq.member_ops.service import MemberOps
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.store.accounts import CardRef
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import CardState, Member
from tests.hq.care_chain import C1, NOW, build_care_chain, clock, rules
from tests.hq.test_analytics import KEY

ANN = Principal("ann", "marketing")
IMPORTED = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)  # their lots: due before NOW
LATER = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # their states set then


def _cards(n: int) -> str:
    return f"82000000{n:02d}"


def prepare(url: str) -> int:
    """The chain at ``url`` with the imported members, their states, and a queued campaign
    of 7 points to every member (and to one that is not); its id."""
    db = open_hq_database(url)
    try:
        old = MemberOps(db, rules(), KEY, lambda: IMPORTED)
        rows = ["card,tier,points,name,expires"]
        for n in range(1, 13):
            expires = "2026-06-01" if n % 3 else ""  # blank: by the rules from the import
            tier = "silver" if n == 10 else "member"
            points = 0 if n == 5 else 100 + n
            rows.append(f"{_cards(n)},{tier},{points},会员{n},{expires}")
        old.import_members("\n".join(rows) + "\n", actor="ann", reason="move")
        ops = MemberOps(db, rules(), KEY, lambda: LATER)
        ops.adjust(_cards(2), 40, actor="ann", reason="a lot not due yet")
        ops.freeze(_cards(3), actor="ann", reason="lost wallet")
        ops.replace_card(_cards(4), _cards(40), actor="ann", reason="lost")
        ops.merge(_cards(6), _cards(7), actor="ann", reason="one person")
        ops.erase(_cards(8), actor="ann", reason="asked")
        ops.adjust(C1, 3, actor="ann", reason="goodwill")
        # In debt: an adjustment HQ posted for a till beyond the balance (the store's reconcile).
        with bound(db, ops_models()), writing(db):
            member = Member.get(Member.card_hash == ops.store._ref(_cards(9)).hash)
            ops.store.adjust(CardRef(member.card_hash), -(member.balance + 25), "till's",
                             "ann", Moment(LATER, True, None), reconcile="hold h9")
        with bound(db, ALL_MODELS), writing(db):
            campaign = campaigns.create("全员礼", "birthday", None, "sms", 7, actor="ann",
                                        at=NOW)
            members = sorted(m.id for m in Member.select(Member.id))
            due = to_micros(NOW)
            campaigns.insert_messages(db, [
                (f"msg-{n:03d}", campaign, member, "sms", "{}", "pending", "", 0, due, None,
                 None) for n, member in enumerate([*members, "no-such-member"])])
            CareCampaign.update(state="queued", queued_by="ann", queued_us=due).where(
                CareCampaign.id == campaign).execute()
        return campaign
    finally:
        db.close()


def ops_models() -> tuple:
    from terminal.hq.models import HQ_MODELS
    from terminal.loyalty.store.models import MODELS

    return (*MODELS, *HQ_MODELS)


def grant(url: str, campaign: int, one_by_one: bool, monkeypatch: pytest.MonkeyPatch) -> int:
    db = open_hq_database(url)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(campaigns, "GRANT_CHUNK", 4)
            patch.setattr(campaigns, "grant", functools.partial(campaigns.grant,
                                                                one_by_one=one_by_one))
            return Care(db, rules(), KEY, clock).grant(ANN, campaign)
    finally:
        db.close()


# -- the comparison ----------------------------------------------------------------------------

SEQ_COLUMNS = ("seq", "earned_seq")
NOT_SEQ = {"member_op", "care_message", "care_consent", "care_campaign", "console_audit"}
SKIP = {("console_audit", "at_us")}  # the console's audit row's wall clock


def tables(db: Database) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    if isinstance(db, PostgresqlDatabase):
        names = [name for (name,) in db.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
    else:
        names = [name for (name,) in db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY 1").fetchall()]
    found = {}
    for name in names:
        cursor = db.execute_sql(f'SELECT * FROM "{name}"')
        columns = [column[0] for column in cursor.description]
        found[name] = (columns, [tuple(row) for row in cursor.fetchall()])
    return found


def canonical(db: Database, exact_seq: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, entry and lot ids named by the entries' order, the sequence
    numbers by their order unless ``exact_seq``."""
    found = tables(db)
    columns, rows = found["ledger_entry"]
    seq_at, id_at = columns.index("seq"), columns.index("id")
    ids = {row[id_at]: f"entry#{n}" for n, row in enumerate(sorted(rows,
                                                                   key=lambda r: r[seq_at]))}
    numbers = sorted({int(row[columns.index(column)]) for name, (columns, rows) in found.items()
                      if name not in NOT_SEQ for column in SEQ_COLUMNS if column in columns
                      for row in rows if row[columns.index(column)] is not None})
    rank = {number: f"seq#{n}" for n, number in enumerate(numbers)}

    def value(table: str, column: str, key: Any, item: Any) -> Any:
        if isinstance(item, str) and item in ids:
            return ids[item]
        if exact_seq:
            return item
        if column in SEQ_COLUMNS and table not in NOT_SEQ and item is not None:
            return rank[int(item)]
        if table == "meta" and column == "value" and key == "seq":
            return rank.get(int(item), item)
        return item

    out = {}
    for name, (columns, rows) in found.items():
        out[name] = sorted(
            (tuple(value(name, column, row[0], item) for column, item in zip(columns, row,
                                                                              strict=True)
                   if (name, column) not in SKIP) for row in rows), key=repr)
    return out


def compare(one: Database, other: Database, exact_seq: bool) -> None:
    left, right = canonical(one, exact_seq), canonical(other, exact_seq)
    assert sorted(left) == sorted(right)
    for name in left:
        if name != "agg_queue":
            assert left[name] == right[name], name
    for db in (one, other):
        check_queued_for_rollups(db)


def check_queued_for_rollups(db: Database) -> None:
    """PostgreSQL's ``agg_queue`` (migration 15) holds the span of the chain sequence each
    INSERT statement added, for the roll-ups to catch up: one span a statement, so one by one
    leaves many and set-based few; either way every entry lies in a span."""
    if not isinstance(db, PostgresqlDatabase):
        return
    spans = db.execute_sql("SELECT first_seq, last_seq FROM agg_queue").fetchall()
    seqs = [seq for (seq,) in db.execute_sql("SELECT seq FROM ledger_entry").fetchall()]
    assert spans and all(any(first <= seq <= last for first, last in spans) for seq in seqs)


def check_twins(url_one: str, url_bulk: str, campaign: int,
                monkeypatch: pytest.MonkeyPatch, exact_seq: bool) -> None:
    taken = grant(url_one, campaign, True, monkeypatch), grant(url_bulk, campaign, False,
                                                               monkeypatch)
    assert taken[0] == taken[1] == 17  # 16 members and one that is none, 4 a chunk
    one, bulk = open_hq_database(url_one), open_hq_database(url_bulk)
    try:
        compare(one, bulk, exact_seq)
        check_what_was_granted(bulk)
    finally:
        one.close()
        bulk.close()


def check_what_was_granted(db: Database) -> None:
    """The cases the chain holds came out as an adjustment makes them (on the bulk twin)."""
    ops = MemberOps(db, rules(), KEY, clock)

    def member(card: str) -> Member:
        return Member.get(Member.card_hash == ops.store._ref(card).hash)

    def statement(card: str) -> dict:
        return ops.store.statement(card, Moment(NOW, True, None))

    with bound(db, ops_models()):
        kinds = [entry["kind"] for entry in statement(_cards(1))["entries"]]
        assert kinds[-2:] == ["expire", "adjust"]  # the due lot first, then the bonus
        assert member(_cards(1)).balance == 7
        assert member(_cards(2)).balance == 47  # the lot not due stays
        assert member(_cards(9)).debt == 127 == -member(_cards(9)).balance  # 134 owed, 7 paid
        assert member(_cards(5)).balance == 7
        frozen = CardState.get_by_id(member(_cards(3)).card_hash)
        assert (frozen.state, frozen.reason) == ("frozen", "lost wallet")
        assert member(_cards(3)).balance == 103  # its opening points, no bonus
        assert member(_cards(8)).balance == 108  # erased: no bonus either
        assert member(_cards(40)).balance == 7  # the replaced card's member, under the new card
        assert CardState.get_by_id(ops.store._ref(_cards(7)).hash).state == "retired"
        assert statement(C1)["entries"][-1]["kind"] == "adjust"
    with bound(db, ALL_MODELS):
        refused = {m.member: (m.state, m.why, m.bonus_op) for m in
                   campaigns.CareMessage.select().where(campaigns.CareMessage.bonus_op == 0)}
    # merged away, frozen, erased, no member at all
    assert len(refused) == 4 and set(refused.values()) == {("skipped", "bonus_refused", 0)}


def test_a_bulk_grant_writes_the_rows_of_one_adjustment_a_member_on_sqlite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "base"
    base.mkdir()
    url = build_care_chain(base)
    campaign = prepare(url)
    twins = []
    for name in ("one", "bulk"):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(url, path)
        twins.append(str(path))
    check_twins(*twins, campaign, monkeypatch, exact_seq=True)


@pytest.mark.slow  # PostgreSQL
def test_a_bulk_grant_writes_the_rows_of_one_adjustment_a_member_on_postgresql(
        postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hq.test_postgres_collector import fresh_database

    url = build_care_chain(tmp_path, fresh_database(postgres))
    campaign = prepare(url)
    name = url.rsplit("/", 1)[1]
    admin = PostgresqlDatabase("posterm", host="127.0.0.1", port=postgres.port,
                               user="postgres")
    twins = []
    try:
        for twin in ("one", "bulk"):
            admin.execute_sql(f"CREATE DATABASE {name}_{twin} TEMPLATE {name}")
            twins.append(f"{url}_{twin}")
    finally:
        admin.close()
    check_twins(*twins, campaign, monkeypatch, exact_seq=False)

