"""HQ reckons an event's time itself (issue 16, break 3).

A till says when an event happened and whether its clock was trusted; HQ's own clock (NTP) is the
only one it trusts. An event cannot have happened after HQ received it, so the receive time
bounds every claim: a claim past it is dated at the receive time, as an untrusted clock's would
be, and a claim more than :data:`AHEAD` past it is noted for review (a till whose clock is wrong,
or one that lies to earn on days to come). Untrusted claims take the receive time as their floor,
so a till's claim never moves HQ's trusted-time floor beyond HQ's own clock.

"Received" is when the collector starts the event's batch: a bound a few hundred milliseconds
looser than the MQTT delivery, on HQ's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from terminal.loyalty.clock import Moment

AHEAD = timedelta(minutes=5)  # NTP-synchronised tills agree with HQ far better than this


def reckon(claimed: datetime, trusted: bool, received: datetime) -> tuple[Moment, str]:
    """HQ's moment for an event claiming ``claimed`` (``trusted`` or not), received at
    ``received``, and a note for review ("" when the claim is plausible)."""
    if claimed > received:
        note = ""
        if claimed - received > AHEAD:
            note = (f"wall_time {claimed.isoformat()} is ahead of HQ, which received it at "
                    f"{received.isoformat()}: dated at HQ's receive time")
        return Moment(received, False, received), note
    if trusted:
        return Moment(claimed, True), ""
    return Moment(claimed, False, received), ""
