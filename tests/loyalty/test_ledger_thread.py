"""One thread per ledger database: a process with one ledger binds the models once; with
several, their threads take turns and no call runs against another ledger's database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import Meta, db_proxy

from .conftest import KEY


def _opener(path: Path, rules: Rules, terminal: str) -> Callable[[], LedgerStore]:
    return lambda: LedgerStore.open(path, rules, KEY, Identity("S001", terminal))


def _name() -> str:
    return Meta.get(Meta.key == "name").value


def test_one_ledger_binds_the_models_once(tmp_path: Path, rules: Rules) -> None:
    pointed: list[Any] = []
    watching = [True]
    db_proxy.attach_callback(lambda db: watching[0] and pointed.append(db))

    async def scenario() -> None:
        thread = LedgerThread(name="ledger")
        store = await thread.open(_opener(tmp_path / "a.db", rules, "T01"))
        assert pointed == [store.db]  # opening pointed the models at it
        for _ in range(50):
            await thread.run(lambda: Meta.select().count())
        assert pointed == [store.db]  # and no call did again
        await thread.run(store.close)
        thread.close()
    try:
        asyncio.run(scenario())
    finally:
        watching[0] = False


def test_two_ledgers_take_turns_and_never_cross(tmp_path: Path, rules: Rules) -> None:
    async def scenario() -> None:
        threads = {name: LedgerThread(name=f"ledger-{name}") for name in ("a", "b")}
        stores = {name: await thread.open(_opener(tmp_path / f"{name}.db", rules, name.upper()))
                  for name, thread in threads.items()}
        for name, thread in threads.items():
            await thread.run(lambda name=name: Meta.create(key="name", value=name))
        calls = [(name, threads[name].run(_name)) for _ in range(100) for name in ("a", "b")]
        seen = await asyncio.gather(*(call for _name_, call in calls))
        assert seen == [name for name, _call in calls]
        for name, thread in threads.items():
            await thread.run(stores[name].close)
            thread.close()
    asyncio.run(scenario())


def test_a_model_listed_twice_is_put_back_after_the_block(tmp_path: Path) -> None:
    """``bound`` with a model twice in its list (a caller adding one already in a group) left it
    bound to the block's database afterwards: a later test's ledger then read another file."""
    from peewee import SqliteDatabase

    from terminal.loyalty.store.binding import bound

    before = Meta._meta.database
    other = SqliteDatabase(str(tmp_path / "other.db"))
    with bound(other, (Meta, Meta)):
        assert Meta._meta.database is other
    assert Meta._meta.database is before
