"""HQ's batched ingest (ChainLedger.apply) on SQLite and on a real PostgreSQL: the guarantees the
per-batch caches and psycopg's pipeline mode must keep, and the schema created by any number of
collectors starting together."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from peewee import Database, OperationalError, PostgresqlDatabase, __exception_wrapper__

from terminal.hq import chain_ledger, database
from terminal.hq.chain_ledger import ChainLedger, Outcome
from terminal.hq.database import HqPostgresDatabase, open_hq_database
from terminal.hq.models import HQ_MODELS, AppliedEvent
from terminal.hq.policy import TrustPolicy
from terminal.loyalty import ids
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import Refused
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.models import (
    MODELS,
    LedgerEntry,
    Member,
    Meta,
    Outbox,
    Sale,
    SaleLine,
)
from terminal.protocol.messages import Event
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data

CARDS = ("6200000000000018", "6200000000000026", "6200000000000034")
# HQ's register: ann, who approves till_events' adjustment, manages both stores, and each
# store may adjust the other's members (both register the same cards).
TRUST = TrustPolicy.from_mapping({
    "operators": {store: {"ann": "manager"} for store in ("S001", "S002")},
    "adjust": {"cross_store": {"S001": ["*"], "S002": ["*"]}}})


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request, tmp_path) -> Callable[[], str]:
    """Makes a fresh, empty HQ database of the kind the test runs on."""
    if request.param == "sqlite":
        return lambda: str(tmp_path / f"hq-{uuid.uuid4().hex[:8]}.db")
    server = request.getfixturevalue("postgres")
    return lambda: fresh_database(server)


def a_till(tmp_path: Path, store: str) -> tuple[LedgerStore, Callable[[], Moment]]:
    """A till of ``store`` and its clock: each moment a second after the last, from an hour
    ago."""
    rules = Rules.from_mapping(rules_data())
    till = LedgerStore.open(tmp_path / f"{store}.db", rules, CARD_KEY, Identity(store, "T01"))
    at = datetime.now(UTC) - timedelta(hours=1)

    def moment() -> Moment:
        nonlocal at
        at += timedelta(seconds=1)
        return Moment(at)

    return till, moment


def outbox_events(till: LedgerStore) -> list[Event]:
    """What the till has for HQ, in its order; the till closed."""
    with till.db.bind_ctx([Outbox]):
        events = [Event.from_json(row.payload) for row in Outbox.select().order_by(Outbox.seq)]
    till.close()
    return events


def till_events(tmp_path: Path, store: str = "S001") -> list[Event]:
    """A till's real events: registrations, member and anonymous sales, a redemption, a refund,
    an adjustment, in the till's order."""
    till, moment = a_till(tmp_path, store)
    sales = []
    for card in CARDS:
        till.register(Registration(card=card, operator="ann"), moment())
    for n in range(12):
        card = CARDS[n % 3] if n % 4 else None
        # Names as tills send them, quotes, backslashes and a parameter mark too.
        sale = SaleRequest(str(uuid.uuid4()), [Line("SKU1", 1, 40000 + n, "伞 'x' \\%s", "")],
                           card=card, operator="O'Brien \\ 张" if n % 2 else "ann")
        sales.append(till.sale(sale, moment()).id)
    till.sale(SaleRequest(str(uuid.uuid4()), [Line("SKU1", 1, 60000, "item", "")],
                          card=CARDS[1], redeem_points=500, operator="ann"), moment())
    till.refund(sales[1], None, moment(), operator="ann", refund_id="r1")
    till.adjust(CARDS[2], -50, "damaged card", "ann", moment())
    return outbox_events(till)


def bound(db: Database) -> Any:
    return db.bind_ctx(MODELS + HQ_MODELS)


def snapshot(ledger: ChainLedger) -> tuple[list[Any], ...]:
    with bound(ledger.db):
        return (
            sorted(AppliedEvent.select(AppliedEvent.id, AppliedEvent.outcome,
                                       AppliedEvent.points_in, AppliedEvent.points_out).tuples()),
            list(LedgerEntry.select(LedgerEntry.seq, LedgerEntry.kind, LedgerEntry.points,
                                    LedgerEntry.reason).order_by(LedgerEntry.seq).tuples()),
            sorted(Member.select(Member.card_hash, Member.balance, Member.debt).tuples()),
            sorted(Meta.select(Meta.key, Meta.value).where(
                Meta.key.in_(["seq", "trusted_floor_us"])).tuples()),
        )


def apply(ledger: ChainLedger, events: list[Event]) -> Counter[str]:
    return Counter(o.result for o in ledger.thread.call(ledger.apply, events))


def test_batches_apply_each_event_once_and_count_its_points(new_url, tmp_path) -> None:
    events = till_events(tmp_path)
    rules = Rules.from_mapping(rules_data())
    ledger = ChainLedger(open_hq_database(new_url()), rules, CARD_KEY, trust=TRUST)
    try:
        # In two batches, the second starting with the last event of the first again.
        assert apply(ledger, events[:9]) == {"applied": 9}
        assert apply(ledger, events[8:]) == {"applied": len(events) - 9, "duplicate": 1}
        first = snapshot(ledger)
        assert apply(ledger, events) == {"duplicate": len(events)}
        assert apply(ledger, [events[0], events[0]]) == {"duplicate": 2}
        assert snapshot(ledger) == first
        applied, entries, members, meta = first
        seqs = [seq for seq, *_ in entries]
        assert seqs == sorted(set(seqs)) and int(dict(meta)["seq"]) >= max(seqs)
        assert {outcome for _, outcome, *_ in applied} == {"applied"}
        # What each event moved is what its entries say, and the totals are the ledger's.
        assert sum(p for *_, p, _ in applied) == sum(p for _, _, p, _ in entries if p > 0)
        assert sum(p for *_, p in applied) == -sum(p for _, _, p, _ in entries if p < 0)
        by_id = {row[0]: row for row in applied}
        redeeming = next(e for e in events if e.kind == "sale" and e.body["redeem_points"])
        assert by_id[redeeming.id][3] == 500
        refund = next(e for e in events if e.kind == "refund")
        assert by_id[refund.id][2:] == (0, 400)  # the refunded sale's 400 points reversed
        assert sum(balance for _, balance, _ in members) == sum(p for _, _, p, _ in entries)
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()


def _two_tills_two_ledgers(new_url: Any, tmp_path: Path
                           ) -> tuple[list[Event], ChainLedger, ChainLedger]:
    """Two tills' events, and two ledgers to apply them: in one transaction, and split."""
    events = till_events(tmp_path) + till_events(tmp_path, "S002")
    rules = Rules.from_mapping(rules_data())
    whole, split = (ChainLedger(open_hq_database(new_url()), rules, CARD_KEY, trust=TRUST)
                    for _ in range(2))
    return events, whole, split


def test_a_time_bound_splits_a_batch_into_transactions_that_leave_the_same_rows(
        new_url, tmp_path, monkeypatch) -> None:
    """With ``batch_seconds`` a batch goes in consecutive transactions (each locks only its own
    events' members until it commits: a hold waits for one of them, not the whole batch), sized
    by the time the events before took; the rows are those of one transaction."""
    events, whole, split = _two_tills_two_ledgers(new_url, tmp_path)
    monkeypatch.setattr(chain_ledger, "FIRST_SLICE", 4)
    monkeypatch.setattr(chain_ledger, "MIN_SLICE", 3)
    split.batch_seconds = 1e-9  # less than any event takes: the fewest events a transaction
    transactions: list[int] = []
    split.in_batch = lambda part: transactions.append(len(part))
    try:
        results = [whole.thread.call(whole.apply, events), split.thread.call(split.apply, events)]
        assert [(o.event.id, o.result) for o in results[1]] == [
            (o.event.id, o.result) for o in results[0]]
        assert transactions == [4] + [3] * ((len(events) - 4) // 3) + (
            [(len(events) - 4) % 3] if (len(events) - 4) % 3 else [])
        assert snapshot(split) == snapshot(whole)
        assert split.thread.call(split.store.check_invariants) == []
    finally:
        whole.close()
        split.close()


def test_a_transaction_cut_short_by_its_batch_sets_no_pace(tmp_path, monkeypatch) -> None:
    """The seconds an event takes are learned from transactions of as many events as the pace
    asked for: a batch of one event (a backlog's first event, come alone) spends a transaction's
    own cost on that one, and the backlog after it went in transactions of MIN_SLICE. A clock
    of the test's own: each transaction takes 20 ms plus 10 ms an event (a bound of 100 ms
    then holds 8)."""
    events = till_events(tmp_path)
    ledger = ChainLedger(open_hq_database(str(tmp_path / "hq.db")),
                         Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    monkeypatch.setattr(chain_ledger, "FIRST_SLICE", 4)
    monkeypatch.setattr(chain_ledger, "MIN_SLICE", 2)
    now = [0.0]
    monkeypatch.setattr(chain_ledger, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    one = ledger._apply_one_transaction
    transactions: list[int] = []

    def timed(part: list[Event]) -> list[Outcome]:
        transactions.append(len(part))
        now[0] += 0.02 + 0.01 * len(part)
        return one(part)

    monkeypatch.setattr(ledger, "_apply_one_transaction", timed)
    ledger.batch_seconds = 0.1
    try:
        assert apply(ledger, events[:1]) == {"applied": 1}
        assert apply(ledger, events[1:15]) == {"applied": 14}
        # 4 (FIRST_SLICE: no pace yet), then 6 (0.1 / (0.06 / 4)), then the batch's last 4 of
        # the 7 asked (0.1 / the mean of 0.015 and 0.08 / 6); with the pace learned from the
        # first transaction (30 ms for its one event) they were 3, 4, 5, 2.
        assert transactions == [1, 4, 6, 4]
        assert ledger._per_event == pytest.approx((0.06 / 4 + 0.08 / 6) / 2)
        assert apply(ledger, events[15:18]) == {"applied": 3}
        assert transactions[-1] == 3
        assert ledger._per_event == pytest.approx((0.06 / 4 + 0.08 / 6) / 2)
    finally:
        ledger.close()


@pytest.mark.parametrize("holds", ["none", "always", "from the 14th event"])
def test_transactions_take_longer_while_tills_ask_no_hold(new_url, tmp_path, monkeypatch,
                                                          holds) -> None:
    """With ``holds_answered`` (the member-request process's counts of the holds and voids it
    is answering now and has begun) a transaction may take UNWAITED times ``batch_seconds``
    when none is answered and none was begun since the last one began; one under way ends
    between two events once it has taken ``batch_seconds`` while a hold is answered, the rest
    going in the next. The same rows as one transaction. A clock of the test's own: each
    transaction takes 1/32 s plus 1/64 s an event (exact in binary), the bound is 1/8 s."""
    events, whole, split = _two_tills_two_ledgers(new_url, tmp_path)
    monkeypatch.setattr(chain_ledger, "FIRST_SLICE", 4)
    monkeypatch.setattr(chain_ledger, "MIN_SLICE", 2)
    now, replayed = [0.0], [0]
    monkeypatch.setattr(chain_ledger, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    one, replay = split._apply_one_transaction, split._apply_one
    transactions: list[int] = []

    def transaction(part: list[Event]) -> list[Outcome]:
        now[0] += 1 / 32
        before = replayed[0]
        try:
            return one(part)
        finally:
            transactions.append(replayed[0] - before)

    def event(*args: Any) -> Outcome:
        now[0] += 1 / 64
        replayed[0] += 1
        return replay(*args)

    monkeypatch.setattr(split, "_apply_one_transaction", transaction)
    monkeypatch.setattr(split, "_apply_one", event)
    split.batch_seconds = 1 / 8
    split.holds_answered = {  # (answering now, begun so far)
        "none": lambda: (0, 0),
        "always": lambda: (1, replayed[0]),  # a new one at every look
        "from the 14th event": lambda: (1, 1) if replayed[0] >= 14 else (0, 0)}[holds]
    try:
        results = [whole.thread.call(whole.apply, events), split.thread.call(split.apply, events)]
        assert sorted((o.event.id, o.result) for o in results[1]) == sorted(
            (o.event.id, o.result) for o in results[0])
        # 4 (FIRST_SLICE), learning 3/128 s an event; then ...
        assert transactions == {
            # ... up to 4 / 8 / (3/128) = 21, learning (3/128 + 23/(64*21)) / 2: 24 asked
            "none": [4, 21, 11],
            # ... 1 / 8 / (3/128) = 5 (taking 7/64 s: not ended), and so on, as without counts
            "always": [4, 5, 5, 5, 5, 5, 5, 2],
            # ... 21 asked, ended at the 10th (past 1/8 s: 1/32 + 10/64) as the hold came, 5s
            "from the 14th event": [4, 10, 5, 5, 5, 5, 2]}[holds]
        assert snapshot(split) == snapshot(whole)
        assert split.thread.call(split.store.check_invariants) == []
    finally:
        whole.close()
        split.close()


class _RefusingLate(ChainLedger):
    """Refuses an adjustment after the store has written it: its writes and the sequence numbers
    it took must vanish with its savepoint (and with the in-memory counters)."""

    def _replay_adjust(self, event: Event, body: dict[str, Any], where: str,
                       moment: Moment) -> str:
        super()._replay_adjust(event, body, where, moment)
        raise Refused("refused after writing", "test.late")


def test_an_event_refused_after_writing_leaves_nothing_and_the_batch_goes_on(
        new_url, tmp_path) -> None:
    events = till_events(tmp_path)
    rules = Rules.from_mapping(rules_data())
    late = _RefusingLate(open_hq_database(new_url()), rules, CARD_KEY, trust=TRUST)
    adjust = next(e for e in events if e.kind == "adjust")
    others = [e for e in events if e is not adjust]
    plain = ChainLedger(open_hq_database(new_url()), rules, CARD_KEY, trust=TRUST)
    try:
        # The adjustment in the middle of the batch: refused, recorded, acked; the rest applied.
        outcomes = late.thread.call(late.apply, [*others[:-3], adjust, *others[-3:]])
        assert Counter(o.result for o in outcomes) == {"applied": len(others), "refused": 1}
        assert [o.ack for o in outcomes] == [True] * len(events)
        assert apply(plain, others) == {"applied": len(others)}
        got, want = snapshot(late), snapshot(plain)
        assert got[1] == want[1]  # the same entries, with the same sequence numbers
        assert got[2] == want[2] and dict(got[3])["seq"] == dict(want[3])["seq"]
        refused = [row for row in got[0] if row[1] == "refused"]
        assert [row[0] for row in refused] == [adjust.id]
        assert late.thread.call(late.store.check_invariants) == []
    finally:
        late.close()
        plain.close()


class _FailingWrite(ChainLedger):
    """A sale whose replay also sends a write the database refuses (a duplicate key): pipelined,
    the error surfaces at a later statement, so the batch as a whole fails."""

    fail_on: str = ""

    def _replay_sale(self, event: Event, body: dict[str, Any], where: str,
                     moment: Moment) -> str:
        detail = super()._replay_sale(event, body, where, moment)
        if event.id == self.fail_on:
            for value in ("1", "2"):
                self.db.send("INSERT INTO meta (key, value) VALUES (%s, %s)",  # type: ignore[attr-defined]
                             ("dup", value))
        return detail


class _CrossedWriters(ChainLedger):
    """A batch that PostgreSQL undoes ``crossings`` times (a deadlock broken between two
    collectors' batches: psycopg's TransactionRollback) before it runs."""

    crossings = 0
    attempts = 0

    def _apply_batch(self, events: list[Event]) -> list[chain_ledger.Outcome]:
        self.attempts += 1
        if self.attempts <= self.crossings:
            # As peewee raises it: its OperationalError, psycopg's inside.
            with __exception_wrapper__:
                raise psycopg.errors.DeadlockDetected("deadlock detected (planted)")
        return super()._apply_batch(events)


def test_a_batch_undone_by_crossed_writers_runs_again(tmp_path) -> None:
    """Undone fewer than RETRIES times, the batch runs again whole and is applied once; undone
    every time, it is the database's trouble: nothing is refused, the batch is left unacked
    (the collector's caller sends it again). Before, psycopg 3's DeadlockDetected was not taken
    for a deadlock (database.retryable), and the first one ended the batch."""
    events = till_events(tmp_path)
    ledger = _CrossedWriters(open_hq_database(str(tmp_path / "hq.db")),
                             Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    try:
        ledger.crossings = 2
        assert apply(ledger, events) == {"applied": len(events)}
        assert ledger.attempts == 3
        ledger.crossings, ledger.attempts = chain_ledger.RETRIES, 0
        with pytest.raises(OperationalError, match="planted"):
            apply(ledger, events)
        assert ledger.attempts == chain_ledger.RETRIES
        assert apply(ledger, events) == {"duplicate": len(events)}
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()


def test_a_real_deadlock_is_taken_for_one(postgres) -> None:
    """Two connections of HQ's database taking two members' locks in crossed order: the one
    PostgreSQL undoes raises what database.retryable takes for a deadlock (as peewee wraps it)."""
    url = fresh_database(postgres)
    first, second = open_hq_database(url), open_hq_database(url)
    both_hold_one = threading.Barrier(2)
    failures: list[BaseException] = []

    def cross(db: Any, mine: int, theirs: int) -> None:
        try:
            with db.atomic():
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (mine,))
                both_hold_one.wait(timeout=30)
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (theirs,))
        except Exception as exc:  # the one undone; the other then commits
            failures.append(exc)

    threads = [threading.Thread(target=cross, args=(first, 1, 2)),
               threading.Thread(target=cross, args=(second, 2, 1))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        first.close()
        second.close()
    assert len(failures) == 1, failures
    assert isinstance(failures[0], OperationalError)
    assert database.retryable(failures[0])
    assert not database.retryable(OperationalError(psycopg.errors.QueryCanceled("cancelled")))


class _DeadlockOnce(ChainLedger):
    """The first time ``victim``'s sale is replayed, the server undoes the transaction with
    SQLSTATE 40P01, as it does to break a deadlock (sent pipelined, among the batch's writes)."""

    victim: str = ""
    batches: list[int]  # each transaction's events

    def _apply_batch(self, events: list[Event]) -> list[Outcome]:
        self.batches.append(len(events))
        return super()._apply_batch(events)

    def _replay_sale(self, event: Event, body: dict[str, Any], where: str,
                     moment: Moment) -> str:
        detail = super()._replay_sale(event, body, where, moment)
        if event.id == self.victim:
            self.victim = ""
            self.db.send("DO $$ BEGIN RAISE EXCEPTION 'deadlock (planted)' "  # type: ignore[attr-defined]
                         "USING ERRCODE = 'deadlock_detected'; END $$")
            # The replay's next read fetches the error, by psycopg's own cursor as kept.py's
            # reads do (without it, it may surface only when the pipeline ends).
            self.db.connection().execute("SELECT 1").fetchall()  # type: ignore[attr-defined]
        return detail


def test_a_batch_postgresql_undoes_for_a_deadlock_loses_and_refuses_nothing(postgres,
                                                                            tmp_path) -> None:
    """On a real server: the batch the server undid mid-way is applied again, whole, on the
    same connection, every event once and none refused, the balances and each event's points
    those of an undisturbed batch. The deadlock's error reaches the next fetch, here the
    replay's own read (before, met there as psycopg's error, not Peewee's, it was taken for
    that event's own failure, the pipeline then reported only that it was aborted, and the
    events went one by one)."""
    events = till_events(tmp_path)
    rules = Rules.from_mapping(rules_data())
    ledger = _DeadlockOnce(open_hq_database(fresh_database(postgres)), rules, CARD_KEY,
                           trust=TRUST)
    calm = ChainLedger(open_hq_database(fresh_database(postgres)), rules, CARD_KEY, trust=TRUST)
    try:
        ledger.victim = next(e.id for e in events[3:] if e.kind == "sale")
        ledger.batches = []
        assert apply(ledger, events) == {"applied": len(events)}
        assert not ledger.victim  # the deadlock was raised
        assert ledger.batches == [len(events), len(events)]  # undone, then again whole
        assert apply(calm, events) == {"applied": len(events)}
        assert apply(ledger, events) == {"duplicate": len(events)}
        undone, undisturbed = snapshot(ledger), snapshot(calm)
        assert undone[0] == undisturbed[0]  # each event's outcome and points
        assert undone[2] == undisturbed[2]  # each member's balance and debt
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()
        calm.close()


def test_a_database_error_refuses_its_event_alone(postgres, tmp_path) -> None:
    """The batch fails and is rolled back; applied again one event at a time, the event whose
    write the database refuses is refused alone (recorded, acked) and the rest commit."""
    events = till_events(tmp_path)
    ledger = _FailingWrite(open_hq_database(fresh_database(postgres)),
                           Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    try:
        assert apply(ledger, events[:3]) == {"applied": 3}
        failing = next(e.id for e in events[3:] if e.kind == "sale")
        ledger.fail_on = failing
        outcomes = ledger.thread.call(ledger.apply, events)
        assert Counter(o.result for o in outcomes) == {
            "duplicate": 3, "refused": 1, "applied": len(events) - 4}
        refused = next(o for o in outcomes if o.result == "refused")
        assert refused.event.id == failing and "duplicate key" in refused.detail
        recorded = ledger.thread.call(lambda: AppliedEvent.get_by_id(failing))
        assert recorded.outcome == "refused" and "duplicate key" in recorded.detail
        ledger.fail_on = ""
        assert apply(ledger, events) == {"duplicate": len(events)}
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()


def test_pipelined_savepoints_roll_back_what_was_sent_before_and_after_a_read(postgres) -> None:
    """Peewee's savepoints in psycopg's pipeline mode: a rolled-back one takes its writes with
    it whether or not a read made the pipeline wait for them; nested ones as an event's and the
    store's transactions nest."""
    db = open_hq_database(fresh_database(postgres))
    assert isinstance(db, HqPostgresDatabase)
    insert = "INSERT INTO meta (key, value) VALUES (%s, %s)"
    try:
        with db.bind_ctx([Meta]), db.atomic(), db.pipelined():
            assert db.in_pipeline
            for key, fail, read in (("a", False, False), ("b", True, False),
                                    ("c", True, True), ("d", False, True)):
                try:
                    with db.atomic():
                        db.send(insert, (key, "1"))
                        if read:  # the pipeline waits for what was sent
                            assert db.execute_sql("SELECT 1").fetchone() == (1,)
                        if fail:
                            raise RuntimeError(key)
                except RuntimeError:
                    pass
            for key, read in (("e", False), ("g", True)):
                with db.atomic():
                    try:
                        with db.atomic():
                            db.send(insert, (key, "1"))
                            if read:
                                db.execute_sql("SELECT 1")
                            raise RuntimeError(key)
                    except RuntimeError:
                        pass
                    db.send(insert, (key + "2", "1"))
        assert not db.in_pipeline
        with db.bind_ctx([Meta]):
            keys = Meta.select(Meta.key).where(Meta.key.in_(["a", "b", "c", "d", "e", "e2", "g",
                                                             "g2"])).tuples()
            assert sorted(keys) == [("a",), ("d",), ("e2",), ("g2",)]
    finally:
        db.close()


def test_collectors_starting_together_create_the_schema_once(postgres) -> None:
    url = fresh_database(postgres)
    count = 6
    start = threading.Barrier(count)
    errors: list[BaseException] = []
    opened: list[Database] = []

    def open_one() -> None:
        try:
            start.wait(10)
            opened.append(open_hq_database(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == [] and len(opened) == count
        tables = set(opened[0].get_tables())
        assert {m._meta.table_name for m in MODELS + HQ_MODELS} <= tables
        assert isinstance(opened[0], PostgresqlDatabase)
    finally:
        for db in opened:
            db.close()


def test_postgresql_ingest_agrees_with_sqlite(postgres, tmp_path) -> None:
    """One batch holding registrations, earning sales that lift members to silver (the ORM's
    tier writes: the member rows kept in memory must be read again), a redemption, a refund and
    an adjustment: PostgreSQL (pipelined, rows kept) ends exactly where SQLite does."""
    events = till_events(tmp_path) + till_events(tmp_path, "S002")
    rules = Rules.from_mapping(rules_data())
    ledgers = [ChainLedger(open_hq_database(url), rules, CARD_KEY, trust=TRUST)
               for url in (str(tmp_path / "hq.db"), fresh_database(postgres))]
    try:
        results = []
        for ledger in ledgers:
            # S002's till earned for members S001 paid that day too: HQ's chain-wide day cap
            # gives less than the till said, and flags those sales for review.
            outcomes = apply(ledger, events)
            assert outcomes["applied"] + outcomes["flagged"] == len(events)
            with bound(ledger.db):
                tiers = sorted(Member.select(Member.card_hash, Member.tier).tuples())
            results.append((snapshot(ledger)[1:3], tiers))
            assert ledger.thread.call(ledger.store.check_invariants) == []
        assert results[0] == results[1]
        assert {tier for _, tier in results[0][1]} == {"silver"}
        lines = []
        for ledger in ledgers:
            with bound(ledger.db):
                lines.append(sorted(SaleLine.select(SaleLine.sale, SaleLine.name).tuples()))
                operators = {sale.operator for sale in Sale.select()}
            assert operators == {"ann", "O'Brien \\ 张"}
        assert lines[0] == lines[1] and "伞 'x' \\%s" in {name for _, name in lines[0]}
        # PostgreSQL's sweep reads its order off the lot (migration 14): each lot carries its
        # earning entry's number.
        lots, unnumbered = ledgers[1].thread.call(lambda: ledgers[1].db.execute_sql(
            "SELECT count(*), count(*) FILTER (WHERE l.earned_seq IS DISTINCT FROM e.seq) "
            "FROM lot l JOIN ledger_entry e ON e.id = l.id").fetchone())
        assert lots > 0 and unnumbered == 0
        # The expiry sweep (COPY on PostgreSQL) takes every lot, the same on both.
        swept = [ledger.thread.call(ledger.expire, datetime.now(UTC) + timedelta(days=1200))
                 for ledger in ledgers]
        assert swept[0].lots == swept[1].lots > 0 and swept[0].points == swept[1].points
        after = [snapshot(ledger)[1:3] for ledger in ledgers]
        assert after[0] == after[1] and {debt for _, _, debt in after[0][1]} == {0}
        assert all(ledger.thread.call(ledger.store.check_invariants) == [] for ledger in ledgers)
    finally:
        for ledger in ledgers:
            ledger.close()


def test_every_copy_of_the_ledger_sweeps_alike(tmp_path, monkeypatch) -> None:
    """Member and lot ids are random, so each copy of the chain ledger holds the same events under
    different ids: the sweep must number its entries by what the events say (expiry, then the
    earning entry's sequence), never by ids or row order."""
    events = till_events(tmp_path) + till_events(tmp_path, "S002")
    # Ids minted in one millisecond order at random (PostgreSQL's pipeline registers three
    # members that fast): here every id is.
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: 1_764_900_000_000_000_000))
    rules = Rules.from_mapping(rules_data())
    swept = []
    for n in range(4):
        ledger = ChainLedger(open_hq_database(str(tmp_path / f"copy{n}.db")), rules, CARD_KEY,
                             trust=TRUST)
        try:
            outcomes = apply(ledger, events)  # flagged: applied, HQ's arithmetic differing
            assert outcomes["applied"] + outcomes["flagged"] == len(events)
            assert ledger.thread.call(
                ledger.expire, datetime.now(UTC) + timedelta(days=1200)).lots > 0
            with bound(ledger.db):
                swept.append(list(
                    LedgerEntry.select(LedgerEntry.seq, LedgerEntry.kind, LedgerEntry.points,
                                       Member.card_hash)
                    .join(Member).where(LedgerEntry.kind == "expire")
                    .order_by(LedgerEntry.seq).tuples()))
        finally:
            ledger.close()
    assert len({card for *_, card in swept[0]}) == len(swept[0]) == 3
    assert all(copy == swept[0] for copy in swept[1:])


def test_collect_bounds_its_transactions_by_batch_ms() -> None:
    """``posterm-hq collect --batch-ms`` (ChainLedger.batch_seconds): 100 ms unless told, 0 for a
    batch in one transaction, a negative time refused by name."""
    import argparse

    from terminal.hq import collect

    parser = argparse.ArgumentParser()
    collect.configure(parser)
    needed = ["--db", "x", "--rules", "r", "--card-key-file", "k", "--ca", "c", "--cert", "c",
              "--key", "k"]
    assert parser.parse_args(needed).batch_ms == collect.BATCH_MS == 100
    assert parser.parse_args([*needed, "--batch-ms", "0"]).batch_ms == 0
    with pytest.raises(SystemExit):
        parser.parse_args([*needed, "--batch-ms", "-5"])


def test_a_batch_plans_its_statements_for_their_parameters_on_postgresql(
        postgres, tmp_path) -> None:
    """Inside an ingest transaction on PostgreSQL every statement is planned for the arrays it
    is run with (plan_cache_mode force_custom_plan, for that transaction only): a generic plan
    psycopg's prepared statement kept from when ``sale`` and ``refund`` were empty scanned them
    whole as they grew (database.plan_for_parameters). Other transactions keep the default."""
    events = till_events(tmp_path)
    ledger = ChainLedger(open_hq_database(fresh_database(postgres)),
                         Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    seen: list[str] = []

    def setting() -> str:
        return ledger.db.execute_sql("SELECT current_setting('plan_cache_mode')").fetchone()[0]

    ledger.in_batch = lambda part: seen.append(setting())
    try:
        outcomes = ledger.thread.call(ledger.apply, events)
        assert {o.result for o in outcomes} <= {"applied", "flagged"}
        assert seen and set(seen) == {"force_custom_plan"}
        assert ledger.thread.call(setting) == "auto"  # the transaction's own, gone with it
    finally:
        ledger.close()


def test_the_parallel_sweep_numbers_its_entries_as_one_sweep_does(postgres, tmp_path) -> None:
    """PostgreSQL's sweep through several connections (parallel_sweep: chunks numbered before
    they are handed out) leaves the entries, numbers, balances and counters of one sweep and
    of SQLite's, with chunks of two lots so members span chunks that commit in any order."""
    events = till_events(tmp_path) + till_events(tmp_path, "S002")
    rules = Rules.from_mapping(rules_data())
    urls = (str(tmp_path / "hq.db"), fresh_database(postgres), fresh_database(postgres))
    ledgers = [ChainLedger(open_hq_database(url), rules, CARD_KEY, trust=TRUST) for url in urls]
    at = datetime.now(UTC) + timedelta(days=1200)
    try:
        results = []
        for ledger, workers in zip(ledgers, (1, 1, 3), strict=True):
            outcomes = apply(ledger, events)
            assert outcomes["applied"] + outcomes["flagged"] == len(events)
            swept = ledger.thread.call(ledger.expire, at, 2, workers)
            with bound(ledger.db):
                expired = list(
                    LedgerEntry.select(LedgerEntry.seq, LedgerEntry.points, Member.card_hash)
                    .join(Member).where(LedgerEntry.kind == "expire")
                    .order_by(LedgerEntry.seq).tuples())
            results.append(((swept.lots, swept.points, swept.members), expired,
                            snapshot(ledger)[1:]))
            assert ledger.thread.call(ledger.store.check_invariants) == []
        assert results[0][0][0] > 4 and len(results[0][1]) > 4
        assert results[2] == results[1] == results[0]
        # Once only: a second parallel sweep finds nothing due and numbers nothing.
        again = ledgers[2].thread.call(ledgers[2].expire, at, 2, 3)
        assert (again.lots, again.points) == (0, 0)
        assert snapshot(ledgers[2])[1:] == results[2][2]
    finally:
        for ledger in ledgers:
            ledger.close()


def test_a_batch_sends_its_kept_writes_as_it_goes_and_leaves_the_same_rows(
        postgres, tmp_path, monkeypatch) -> None:
    """On PostgreSQL a batch sends the writes it kept every SEND_EVERY events, without waiting
    (the server inserts them while the next events are replayed, instead of all at the
    COMMIT); the rows are those of SQLite's ledger."""
    from terminal.hq import buffered

    events = till_events(tmp_path) + till_events(tmp_path, "S002")
    rules = Rules.from_mapping(rules_data())
    sent: list[int] = []
    flush = buffered.Writes.flush

    def counting(self: buffered.Writes, *plan: Any) -> None:
        sent.append(self.pending)
        flush(self, *plan)

    monkeypatch.setattr(buffered.Writes, "flush", counting)
    results, sends = [], []
    for url, every in ((str(tmp_path / "hq.db"), 2), (fresh_database(postgres), 10**9),
                       (fresh_database(postgres), 2)):
        monkeypatch.setattr(chain_ledger, "SEND_EVERY", every)
        ledger = ChainLedger(open_hq_database(url), rules, CARD_KEY, trust=TRUST)
        sent.clear()
        try:
            outcomes = apply(ledger, events)
            assert outcomes["applied"] + outcomes["flagged"] == len(events)
            results.append(snapshot(ledger)[1:])
            assert ledger.thread.call(ledger.store.check_invariants) == []
        finally:
            ledger.close()
        sends.append(sum(sent))
    assert results[0] == results[1] == results[2]
    assert sends[2] > sends[1]  # sent as it went, not only before a read and at the end


def test_a_parallel_sweep_whose_chunk_fails_raises_and_the_next_run_expires_the_rest(
        postgres, tmp_path, monkeypatch) -> None:
    """A worker's failure stops the parallel sweep and is raised once every worker has stopped;
    the chunks committed stay, and the next sweep expires the rest, ending where one sweep
    does (entries, balances, invariants)."""
    from terminal.hq import parallel_sweep

    events = till_events(tmp_path)
    rules = Rules.from_mapping(rules_data())
    ledgers = [ChainLedger(open_hq_database(fresh_database(postgres)), rules, CARD_KEY,
                           trust=TRUST) for _ in range(2)]
    at = datetime.now(UTC) + timedelta(days=1200)
    chunk = parallel_sweep._expire_chunk
    calls: list[int] = []

    def failing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the second chunk fails")
        return chunk(*args)

    try:
        for ledger in ledgers:
            apply(ledger, events)
        whole = ledgers[0].thread.call(ledgers[0].expire, at, 2, 1)
        monkeypatch.setattr(parallel_sweep, "_expire_chunk", failing)
        with pytest.raises(RuntimeError, match="second chunk"):
            ledgers[1].thread.call(ledgers[1].expire, at, 2, 2)
        monkeypatch.setattr(parallel_sweep, "_expire_chunk", chunk)
        rest = ledgers[1].thread.call(ledgers[1].expire, at, 2, 2)
        assert 0 < rest.lots < whole.lots
        with bound(ledgers[1].db):
            balances = sorted(Member.select(Member.card_hash, Member.balance).tuples())
        with bound(ledgers[0].db):
            assert balances == sorted(Member.select(Member.card_hash, Member.balance).tuples())
        assert ledgers[1].thread.call(ledgers[1].store.check_invariants) == []
    finally:
        for ledger in ledgers:
            ledger.close()
