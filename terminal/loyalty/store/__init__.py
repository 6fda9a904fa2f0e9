"""The only place the points domain is persisted: Peewee models over SQLite."""

from terminal.loyalty.store.database import StorageError, open_database
from terminal.loyalty.store.ledger_store import Identity, LedgerStore

__all__ = ["Identity", "LedgerStore", "StorageError", "open_database"]
