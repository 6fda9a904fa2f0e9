"""Version 24: member care reads the SMS gateway's replies (回复TD退订) from where it stopped,
and finds the contacts a reply is from through an index (issue 13).

- ``care_state``: small named values member care keeps across restarts; ``sms_replies_after``
  is the gateway's cursor of the replies already applied, saved in the transaction that records
  their opt-outs, so a sender restarted neither misses a reply nor applies one twice.
- ``care_contact.phone_tail``: the last 11 digits of the contact's number (a ``+86`` or other
  prefix aside), indexed: a reply's number is looked up by equality instead of a
  ``LIKE '%digits'`` that read every contact. Filled here for the contacts already kept.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.care.models import CareContact, CareState, number_tail
from terminal.hq.migrations import add_columns
from terminal.loyalty.store.binding import bound


def both(db: Database) -> None:
    with bound(db, (CareState,)):
        db.create_tables([CareState], safe=True)
    add_columns(db, CareContact, CareContact.phone_tail)
    p = db.param
    for member, phone in db.execute_sql(
            "SELECT member, phone FROM care_contact WHERE phone IS NOT NULL").fetchall():
        db.execute_sql(f"UPDATE care_contact SET phone_tail = {p} WHERE member = {p}",
                       (number_tail(phone), member))
    db.execute_sql("CREATE INDEX IF NOT EXISTS care_contact_phone_tail "
                   "ON care_contact (phone_tail)")
