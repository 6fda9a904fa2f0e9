"""A member-care request refused (nothing was changed), worded for both of its readers."""

from __future__ import annotations


class CareRefusal(ValueError):
    """A care request that cannot be done (nothing was changed).

    ``kind`` names the refusal for a person's words in the console (``care.error.KIND``, filled
    with ``values``); the message is the command line's (English)."""

    def __init__(self, message: str, kind: str = "refused", **values: object) -> None:
        super().__init__(message)
        self.kind = kind
        self.values = {key: str(value) for key, value in values.items()}
