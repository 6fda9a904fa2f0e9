"""The product catalogue: the till's reference data (operators are in :mod:`.operators`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from peewee import SqliteDatabase

from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.pricing import MAX_UNIT_PRICE_FEN
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.models import Product
from terminal.loyalty.text import text_problem


def catalogue_rows(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The catalogue's rows, every item checked; the first bad item refuses the whole of it."""
    rows = []
    seen: set[str] = set()
    for number, item in enumerate(items, 1):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"catalogue item {number}: not a table", "catalogue")
        sku, name, price = item.get("sku"), item.get("name"), item.get("price_fen")
        if not isinstance(sku, str) or not sku.strip() or sku in seen:
            raise InvalidInput(f"catalogue item {number}: missing or repeated sku", "catalogue")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"catalogue item {number} ({sku!r}): no name", "catalogue")
        if isinstance(price, bool) or not isinstance(price, int) or not (
            0 <= price <= MAX_UNIT_PRICE_FEN
        ):
            raise InvalidInput(f"catalogue item {number} ({sku!r}): price {price!r} is not "
                               f"whole fen from 0 to {MAX_UNIT_PRICE_FEN}", "catalogue")
        barcode = item.get("barcode")
        if barcode is not None and not isinstance(barcode, str):
            raise InvalidInput(f"catalogue item {number} ({sku!r}): barcode must be text",
                               "catalogue")
        category = str(item.get("category", ""))
        for field, value in (("sku", sku), ("name", name), ("category", category),
                             ("barcode", barcode or "")):
            problem = text_problem(value)
            if problem is not None:
                raise InvalidInput(f"catalogue item {number}: {field} {problem}", "catalogue")
        seen.add(sku)
        rows.append({"sku": sku, "barcode": barcode, "name": name, "category": category,
                     "price_fen": price})
    return rows


def load_catalogue(db: SqliteDatabase, items: Iterable[Mapping[str, Any]]) -> int:
    """Replace the catalogue with ``items`` atomically; a bad item refuses the whole load."""
    rows = catalogue_rows(items)
    with write_transaction(db):
        Product.delete().execute()
        for start in range(0, len(rows), 500):
            Product.insert_many(rows[start:start + 500]).execute()
    return len(rows)


def find_product(code: str) -> Product | None:
    """A product by scanned barcode, or by SKU."""
    return Product.get_or_none(Product.barcode == code) or Product.get_or_none(Product.sku == code)
