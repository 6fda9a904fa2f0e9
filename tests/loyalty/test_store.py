"""The ledger store on real SQLite files: durability settings, atomicity, every operation."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import peewee
import pytest
from playhouse.migrate import SqliteMigrator, migrate

from terminal.loyalty.errors import (
    AdjustRefused,
    DuplicateId,
    InvalidInput,
    PaymentCardRefused,
    RedeemRefused,
    RefundRefused,
    UnknownCard,
    UnknownSale,
)
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore, StorageError, open_database
from terminal.loyalty.store.database import MIGRATIONS, Migration, upgrade
from terminal.loyalty.store.models import Member

from .conftest import at, register, sell

CARD = "8000000001"


def dump(store: LedgerStore) -> list[tuple[object, ...]]:
    """Every row of every table, to prove a refused operation changed nothing."""
    rows: list[tuple[object, ...]] = []
    tables = [r[0] for r in store.db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall()]
    for table in tables:
        rows += [(table, *r) for r in store.db.execute_sql(f"SELECT * FROM {table}").fetchall()]
    return sorted(rows, key=repr)


def test_pragmas_are_set_and_checked(store: LedgerStore) -> None:
    sql = store.db.execute_sql
    assert sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sql("PRAGMA synchronous").fetchone()[0] == 2
    assert sql("PRAGMA foreign_keys").fetchone()[0] == 1


def test_ledger_rows_cannot_be_updated_or_deleted(store: LedgerStore) -> None:
    register(store, CARD)
    store.adjust(CARD, -50, "test", "manager1", store.moment(at("2026-03-02 12:00")))
    for statement in ("UPDATE ledger_entry SET points = 1000", "DELETE FROM ledger_entry",
                      "DELETE FROM audit", "UPDATE allocation SET points = 0"):
        with pytest.raises(peewee.IntegrityError, match="append-only"):
            store.db.execute_sql(statement)


def test_sale_writes_sale_lines_entries_and_outbox_together(store: LedgerStore) -> None:
    register(store, CARD)
    result = sell(store, "S1", [("A", "fresh", 2, 1250)])
    assert result.points_earned == 50 and result.member is not None
    assert result.member.balance == 150
    kinds = [r[0] for r in store.db.execute_sql("SELECT kind FROM outbox ORDER BY seq")]
    assert kinds == ["register", "sale"]
    seqs = [r[0] for r in store.db.execute_sql(
        "SELECT seq FROM ledger_entry UNION ALL SELECT seq FROM sale UNION ALL "
        "SELECT seq FROM outbox")]
    assert len(seqs) == len(set(seqs))  # one sequence, never reused
    assert store.check_invariants() == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"redeem": 200}, RedeemRefused, "below redeem.min_points"),
        ({"card": "9999999999"}, UnknownCard, "card 9999999999 belongs to no member"),
        ({"card": "4111111111111111"}, PaymentCardRefused, "payment card"),
        ({"card": None, "redeem": 500}, RedeemRefused, "anonymous sale cannot redeem"),
    ],
)
def test_refused_sale_changes_nothing(store: LedgerStore, kwargs: dict[str, object],
                                      error: type[Exception], message: str) -> None:
    register(store, CARD)
    before = dump(store)
    with pytest.raises(error, match=message):
        sell(store, "S1", [("A", "fresh", 1, 1250)], **kwargs)  # type: ignore[arg-type]
    assert dump(store) == before


def test_duplicate_sale_id_and_bad_tender(store: LedgerStore) -> None:
    register(store, CARD)
    sell(store, "S1", [("A", "", 1, 1250)])
    before = dump(store)
    with pytest.raises(DuplicateId, match="sale S1 is already recorded"):
        sell(store, "S1", [("A", "", 1, 1250)])
    assert dump(store) == before


def test_redemption_deducts_cash_and_consumes_soonest_lots(store: LedgerStore) -> None:
    register(store, CARD)  # 100 bonus
    sell(store, "S1", [("A", "", 1, 100_000)])  # 1000 yuan -> 1000 points
    result = sell(store, "S2", [("A", "", 1, 10_000)], redeem=600, when="2026-03-03 12:00")
    assert result.deduction_fen == 600 and result.points_earned == 110  # 92 yuan x1.2
    assert result.member is not None and result.member.tier == "silver"  # upgraded after S1
    # S2 was priced at silver: 2% of 10,000 = 200 off, before the deduction.
    assert result.discount_fen == 200 and result.paid_fen == 10_000 - 200 - 600
    allocs = store.db.execute_sql(
        "SELECT a.lot_id, a.points FROM allocation a JOIN ledger_entry e ON e.id = a.entry_id "
        "WHERE e.kind = 'redeem'").fetchall()
    bonus_lot = store.db.execute_sql(
        "SELECT id FROM ledger_entry WHERE kind = 'bonus'").fetchone()[0]
    assert allocs[0] == (bonus_lot, -100)  # the registration bonus expires first
    assert store.check_invariants() == []


def test_refunds_in_parts_add_up_and_restore_to_lots(store: LedgerStore) -> None:
    register(store, CARD)
    sell(store, "S1", [("A", "", 1, 100_000)])
    sell(store, "S2", [("A", "", 3, 1000), ("B", "", 1, 7000)], redeem=1000,
         when="2026-03-03 12:00")
    sale = store.db.execute_sql(
        "SELECT paid_fen, points_earned, points_redeemed FROM sale WHERE id='S2'").fetchone()
    paid, earned, redeemed = sale
    first = store.refund("S2", [("A", 1)], store.moment(at("2026-03-04 10:00")), refund_id="R1")
    second = store.refund("S2", [("A", 2)], store.moment(at("2026-03-04 11:00")), refund_id="R2")
    third = store.refund("S2", None, store.moment(at("2026-03-04 12:00")), refund_id="R3")
    parts = [first, second, third]
    assert sum(p.refunded_fen for p in parts) == paid
    assert sum(p.points_reversed for p in parts) == earned
    assert sum(p.points_restored for p in parts) == redeemed
    again = store.refund("S2", [("A", 1)], store.moment(at("2026-03-05 10:00")), refund_id="R1")
    assert again.repeated and again.refunded_fen == first.refunded_fen
    with pytest.raises(RefundRefused, match="already fully refunded"):
        store.refund("S2", None, store.moment(at("2026-03-05 10:00")))
    with pytest.raises(UnknownSale):
        store.refund("NOPE", None, store.moment(at("2026-03-05 10:00")))
    assert store.check_invariants() == []


def test_refund_of_spent_points_goes_negative_and_is_paid_off(store: LedgerStore) -> None:
    register(store, CARD)
    sell(store, "S1", [("A", "", 1, 100_000)])  # +1000
    sell(store, "S2", [("T", "tobacco", 1, 100_000)], redeem=1100, when="2026-03-02 13:00")
    refund = store.refund("S1", None, store.moment(at("2026-03-02 14:00")))
    view = store.member(CARD, store.moment(at("2026-03-02 14:00")))
    assert refund.points_reversed == 1000 and view.balance < 0 and view.debt == -view.balance
    later = sell(store, "S3", [("A", "", 1, 100_000)], when="2026-03-02 15:00")
    assert later.member is not None and later.member.debt == 0
    assert store.check_invariants() == []


def test_tier_upgrades_at_once_and_downgrades_at_review(store: LedgerStore) -> None:
    register(store, CARD, when="2025-01-05 10:00")
    sell(store, "S1", [("A", "", 1, 100_000)], when="2025-01-10 10:00")
    assert store.member(CARD, store.moment(at("2025-01-10 11:00"))).tier == "silver"
    # Still silver through the month the spend leaves the window...
    late = sell(store, "S2", [("A", "", 1, 100)], when="2026-01-20 10:00")
    assert late.member is not None and late.member.tier == "silver"
    # ...and reviewed down at 00:00 on the 1st.
    after = sell(store, "S3", [("A", "", 1, 100)], when="2026-02-01 00:05")
    assert after.member is not None and after.member.tier == "member"
    assert after.discount_fen == 0


def test_referral_bonus_once_on_first_purchase(store: LedgerStore) -> None:
    register(store, "8000000009")
    register(store, CARD, referrer_card="8000000009")
    sell(store, "S1", [("A", "", 1, 1000)])
    sell(store, "S2", [("A", "", 1, 1000)])
    assert store.member("8000000009", store.moment(at("2026-03-02 13:00"))).balance == 300


@pytest.mark.parametrize(
    ("reg", "error", "message"),
    [
        (Registration(card=CARD), DuplicateId, "already registered"),
        (Registration(card="8000000002", phone="13800000001"), DuplicateId, "phone ending 0001"),
        (Registration(card="8000000002", phone="12ab"), InvalidInput, "is 5 to 15 digits"),
        (Registration(card="8000000002", birthday=date(2030, 1, 1)), InvalidInput, "past date"),
        (Registration(card="4111111111111111"), PaymentCardRefused, "payment card"),
        (Registration(card="8000000002", referrer_card="8000000077"), UnknownCard, "no member"),
    ],
)
def test_registration_refusals_change_nothing(store: LedgerStore, reg: Registration,
                                              error: type[Exception], message: str) -> None:
    register(store, CARD, phone="13800000001")
    before = dump(store)
    with pytest.raises(error, match=message):
        store.register(reg, store.moment(at("2026-03-02 11:00")))
    assert dump(store) == before


def test_exchange_and_adjust_with_audit(store: LedgerStore) -> None:
    register(store, CARD)
    now = store.moment(at("2026-03-02 12:00"))
    view = store.adjust(CARD, 5000, "goodwill: broken bag", "manager1", now)
    assert view.balance == 5100
    result = store.exchange(CARD, "GIFT-UMBRELLA", 1, now)
    assert result.points == 3000 and result.member.balance == 2100
    with pytest.raises(AdjustRefused, match="would overdraw"):
        store.adjust(CARD, -5000, "oops", "manager1", now)
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.adjust(CARD, 10, " ", "manager1", now)
    audit = store.db.execute_sql("SELECT actor, action FROM audit ORDER BY seq").fetchall()
    assert ("manager1", "adjust") in audit
    assert store.check_invariants() == []


def test_phone_lookup_is_audited(store: LedgerStore) -> None:
    register(store, CARD, phone="13800000001")
    now = store.moment(at("2026-03-02 12:00"))
    assert store.member_by_phone("13800000001", "manager1", now).card_last4 == "0001"
    with pytest.raises(UnknownCard):
        store.member_by_phone("13900000000", "manager1", now)
    rows = store.db.execute_sql(
        "SELECT actor, detail FROM audit WHERE action = 'lookup_phone'").fetchall()
    assert rows == [("manager1", "0001"), ("manager1", "0000")]


def test_expiry_never_fires_early_on_an_untrusted_clock(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-02 10:00")  # trusted: floor = 2026-03-02
    # The clock jumps two years ahead, untrusted: nothing may expire past the floor.
    skipped = store.expire(store.moment(at("2028-06-01 00:00"), trusted=False))
    assert skipped.lots == 0
    # A sale on a clock stuck in 1970 dates its lot at the floor, then at trusted time.
    sell(store, "S1", [("A", "", 1, 10_000)], when="1970-01-01 08:00", trusted=False)
    sell(store, "S2", [("A", "", 1, 100)], when="2026-09-01 10:00")  # NTP synced
    expired = store.expire(store.moment(at("2027-03-03 00:00")))
    assert expired.points == 100  # only the registration bonus, not the 1970 sale's lot
    view = store.member(CARD, store.moment(at("2027-03-03 00:00")))
    assert view.balance == 100 + 1 and store.check_invariants() == []


def test_daily_report_and_liability(store: LedgerStore) -> None:
    register(store, CARD)
    sell(store, "S1", [("A", "", 1, 10_000)])
    sell(store, "S2", [("A", "", 1, 5_000)], card=None)
    report = store.daily_report(date(2026, 3, 2))
    assert report["sales"] == {"count": 2, "list_fen": 15_000, "discount_fen": 0,
                               "deduction_fen": 0, "paid_fen": 15_000}
    assert report["points"]["issued"] == 200 and report["liability_points"] == 200


def test_statement_traces_every_point(store: LedgerStore) -> None:
    register(store, CARD)
    sell(store, "S1", [("A", "", 1, 100_000)])
    sell(store, "S2", [("A", "", 1, 10_000)], redeem=500, when="2026-03-03 10:00")
    statement = store.statement(CARD, store.moment(at("2026-03-03 11:00")))
    kinds = [e["kind"] for e in statement["entries"]]
    assert kinds == ["bonus", "earn", "redeem", "earn"]
    redeem = statement["entries"][2]
    assert sum(a["points"] for a in redeem["lots"]) == -500
    assert sum(lot["remaining"] for lot in statement["lots"]) == statement["member"].balance


def test_schema_migrates_and_refuses_newer(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db")

    def add_note(database: peewee.SqliteDatabase, migrator: SqliteMigrator) -> None:
        migrate(migrator.add_column("member", "note", peewee.TextField(default="")))

    following = max(MIGRATIONS) + 1  # the next migration anyone adds, whatever exists now
    assert upgrade(db, {**MIGRATIONS, following: Migration(add_note, additive=False)}) \
        == following
    columns = [c.name for c in db.get_columns("member")]
    assert "note" in columns
    db.close()
    with pytest.raises(StorageError, match=f"schema version {following} is newer"):
        open_database(tmp_path / "old.db")


def test_unsafe_pragmas_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from terminal.loyalty.store import database

    monkeypatch.setitem(database.PRAGMAS, "synchronous", 1)
    with pytest.raises(StorageError, match="unsafe pragmas"):
        open_database(tmp_path / "x.db")


def test_committed_sale_is_in_the_file(open_store: Callable[[Rules], LedgerStore],
                                       rules: Rules, tmp_path: Path) -> None:
    store = open_store(rules)
    register(store, CARD)
    sell(store, "S1", [("A", "", 1, 1000)])
    # Another connection, as after a restart, sees the committed sale without a checkpoint.
    other = sqlite3.connect(tmp_path / "term.db")
    assert other.execute("SELECT count(*) FROM sale").fetchone()[0] == 1
    assert Member.select().count() == 1


def test_catalogue_loads_atomically(store: LedgerStore) -> None:
    from terminal.loyalty.store.people import find_product, load_catalogue

    assert load_catalogue(store.db, [
        {"sku": "6901234567892", "barcode": "6901234567892", "name": "矿泉水 Water",
         "category": "drinks", "price_fen": 200},
    ]) == 1
    product = find_product("6901234567892")
    assert product is not None and product.price_fen == 200
    with pytest.raises(InvalidInput, match="price -1"):
        load_catalogue(store.db, [{"sku": "A", "name": "a", "price_fen": 1},
                                  {"sku": "B", "name": "b", "price_fen": -1}])
    assert find_product("6901234567892") is not None  # the old catalogue stands


def test_full_disk_refuses_the_sale_clearly_and_changes_nothing(store: LedgerStore) -> None:
    """SQLITE_FULL used to surface as "cannot rollback - no transaction is active" (Peewee's
    ROLLBACK after SQLite had rolled back by itself), unhandled by the till."""
    from terminal.loyalty.errors import StorageFull

    register(store, CARD)
    pages = store.db.execute_sql("PRAGMA page_count").fetchone()[0]
    store.db.execute_sql(f"PRAGMA max_page_count = {pages}")  # the file may grow no more
    refused = None
    for number in range(1, 200):  # free pages absorb the first few sales
        before = dump(store)
        try:
            sell(store, f"S{number}", [("A", "fresh", 1, 1250)] * 20)
        except StorageFull as exc:
            refused = exc
            break
    assert refused is not None and "Disk full: nothing was recorded" in str(refused)
    assert dump(store) == before and store.check_invariants() == []
    store.db.execute_sql("PRAGMA max_page_count = 1073741823")  # space returns
    sell(store, "S-after", [("A", "fresh", 1, 1250)])
    assert store.check_invariants() == []
