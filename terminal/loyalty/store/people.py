"""Operators and their PINs, and the product catalogue: the till's reference data.

PINs are short, so they are stretched with scrypt (stdlib) and a per-operator salt; a stolen
database does not give them away cheaply. Verification compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from peewee import SqliteDatabase

from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.pricing import MAX_UNIT_PRICE_FEN
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.models import Operator, Product

ROLES = ("cashier", "manager")
PIN = re.compile(r"[0-9]{4,8}")
# scrypt cost: about 15 ms on a Raspberry Pi 4 class CPU per sign-in, 16 MiB of memory.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class SignedIn:
    name: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"


def _stretch(pin: str, salt: bytes) -> str:
    return hashlib.scrypt(pin.encode(), salt=salt, dklen=32, **_SCRYPT).hex()


def set_operator(db: SqliteDatabase, name: str, role: str, pin: str) -> None:
    """Add an operator or change their role and PIN."""
    if not re.fullmatch(r"[0-9A-Za-z_.-]{1,32}", name or ""):
        raise InvalidInput(f"operator name {name!r} is not 1-32 letters, digits or _.-",
                           "operator.name")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", "operator.role")
    if not PIN.fullmatch(pin or ""):
        raise InvalidInput("a PIN is 4 to 8 digits", "operator.pin")
    salt = os.urandom(16)
    with write_transaction(db):
        Operator.replace(name=name, role=role, pin_salt=salt.hex(),
                         pin_hash=_stretch(pin, salt), active=True).execute()


def check_pin(pin: str, role: str | None = None) -> SignedIn | None:
    """The active operator whose PIN this is (of ``role`` if given), or None."""
    if not PIN.fullmatch(pin or ""):
        return None
    query = Operator.select().where(Operator.active)
    if role is not None:
        query = query.where(Operator.role == role)
    found = None
    for operator in query:  # every row is checked so timing does not reveal which matched
        digest = _stretch(pin, bytes.fromhex(operator.pin_salt))
        if hmac.compare_digest(digest, operator.pin_hash) and found is None:
            found = SignedIn(operator.name, operator.role)
    return found


def load_catalogue(db: SqliteDatabase, items: Iterable[Mapping[str, Any]]) -> int:
    """Replace the catalogue with ``items`` atomically; a bad item refuses the whole load."""
    rows = []
    seen: set[str] = set()
    for number, item in enumerate(items, 1):
        sku, name, price = item.get("sku"), item.get("name"), item.get("price_fen")
        if not isinstance(sku, str) or not sku.strip() or sku in seen:
            raise InvalidInput(f"catalogue item {number}: missing or repeated sku", "catalogue")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"catalogue item {number} ({sku}): no name", "catalogue")
        if isinstance(price, bool) or not isinstance(price, int) or not (
            0 <= price <= MAX_UNIT_PRICE_FEN
        ):
            raise InvalidInput(f"catalogue item {number} ({sku}): price {price!r} is not whole "
                               f"fen from 0 to {MAX_UNIT_PRICE_FEN}", "catalogue")
        barcode = item.get("barcode")
        if barcode is not None and not isinstance(barcode, str):
            raise InvalidInput(f"catalogue item {number} ({sku}): barcode must be text",
                               "catalogue")
        seen.add(sku)
        rows.append({"sku": sku, "barcode": barcode, "name": name,
                     "category": str(item.get("category", "")), "price_fen": price})
    with write_transaction(db):
        Product.delete().execute()
        for start in range(0, len(rows), 500):
            Product.insert_many(rows[start:start + 500]).execute()
    return len(rows)


def find_product(code: str) -> Product | None:
    """A product by scanned barcode, or by SKU."""
    return Product.get_or_none(Product.barcode == code) or Product.get_or_none(Product.sku == code)
