"""How an ingest batch's statements are planned on PostgreSQL (BatchStatements.plan_reads): its
reads over arrays for the arrays at hand, its kept writes of entries, lots, applied events and
day counters (and the foreign-key checks and trigger statements they run) by the server's own
setting (buffered.SERVER_PLANNED), its sales and their lines by the server's setting too but with
sequential scans off (buffered.INDEX_PLANNED: since session 16; for their parameters before); a
read after a flush planned for its parameters again with sequential scans on, also after an
event's savepoint took a setting back with it."""

from __future__ import annotations

import contextlib
from typing import Any

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import HqPostgresDatabase, pipelined_writing, unit
from terminal.protocol.messages import Event
from tests.hq.test_batch_kept import a_chain_of_40

MODE = "SELECT current_setting('plan_cache_mode')"
MODE_AND_SCANS = ("SELECT current_setting('plan_cache_mode') || ' ' || "
                  "current_setting('enable_seqscan')")
# A statement trigger on the tables a sale writes records the setting its statements ran under.
PROBE = """
CREATE TABLE plan_probe (tbl text, mode text);
CREATE FUNCTION plan_probe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO plan_probe VALUES (TG_TABLE_NAME,
      current_setting('plan_cache_mode') || ' ' || current_setting('enable_seqscan'));
  RETURN NULL;
END $$;
"""
BY_SERVER = ("ledger_entry", "lot", "applied_event", "member_day")
BY_SERVER_INDEXED = ("sale", "sale_line")


def modes_of_reads(ledger: ChainLedger, batch: list[Event]) -> list[tuple[bool, str]]:
    """Apply ``batch``; for each SELECT it sends, whether the batch had sent kept writes
    before it and the setting it ran under (asked on the same connection right after it)."""
    db = ledger.db
    assert isinstance(db, HqPostgresDatabase)
    seen: list[tuple[bool, str]] = []
    execute = db.execute_sql

    def probing(sql: str, params: Any = None) -> Any:
        cursor = execute(sql, params)
        if sql.lstrip().upper().startswith("SELECT"):
            writes = ledger.sql.writes
            seen.append((writes is not None and writes.statements > 0,
                         execute(MODE_AND_SCANS).fetchone()[0]))
        return cursor

    db.execute_sql = probing  # type: ignore[method-assign]
    try:
        outcomes = ledger.thread.call(ledger.apply, batch)
    finally:
        db.execute_sql = execute  # type: ignore[method-assign]
    assert {o.result for o in outcomes} == {"applied"}, outcomes
    return seen


def test_kept_writes_planned_by_the_server_and_reads_for_their_arrays(postgres) -> None:
    ledger, till = a_chain_of_40(postgres)
    try:
        def install() -> str:
            ledger.db.execute_sql(PROBE)
            for table in (*BY_SERVER, *BY_SERVER_INDEXED):
                ledger.db.execute_sql(
                    f"CREATE TRIGGER plan_probe AFTER INSERT ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION plan_probe()")
            return ledger.db.execute_sql(MODE).fetchone()[0]

        server = ledger.thread.call(install)
        assert server != "force_custom_plan"
        # Sixty sales (the kept writes go out every SEND_EVERY events), and refunds of sales
        # this batch records: each reads its sale from the database during the replay, after
        # the writes before it were sent.
        batch = [till.sale(n % 40, 20_000 + n, sale=f"plans-{n}") for n in range(60)]
        batch += [till.refund(n % 40, f"plans-{n}", 20_000 + n) for n in (3, 45)]
        batch.append(till.sale(7, 30_000))
        reads = modes_of_reads(ledger, batch)
        assert {mode for _, mode in reads} == {"force_custom_plan on"}, reads
        assert any(after for after, _ in reads), "no read after a flush"
        written = ledger.thread.call(lambda: ledger.db.execute_sql(
            "SELECT tbl, mode FROM plan_probe").fetchall())
        expected = {table: f"{server} on" for table in BY_SERVER}
        expected.update((table, f"{server} off") for table in BY_SERVER_INDEXED)
        assert set(written) == set(expected.items()), written
    finally:
        ledger.close()


def test_a_read_after_a_rolled_back_event_is_planned_for_its_parameters(postgres) -> None:
    """An event's read sent its setting inside the event's savepoint; the event failed and
    the rollback took the setting back: the next read is planned for its parameters all the
    same."""
    ledger, _ = a_chain_of_40(postgres)
    db, sql = ledger.db, ledger.sql

    def scenario() -> str:
        with pipelined_writing(db):
            sql.plan_reads()
            with sql.batch():
                mark = sql.mark()
                with contextlib.suppress(RuntimeError), unit(db):
                    sql.insert_rows("audit", ("seq", "wall_us", "trusted", "actor", "action",
                                              "subject", "detail"),
                                    [(10**12, 1, True, "test", "probe", "plans", "")])
                    db.execute_sql("SELECT 1").fetchone()  # sends the audit row first
                    raise RuntimeError("the event fails after its read")
                sql.restore(mark)
                return db.execute_sql(MODE).fetchone()[0]

    try:
        assert ledger.thread.call(scenario) == "force_custom_plan"
    finally:
        ledger.close()
