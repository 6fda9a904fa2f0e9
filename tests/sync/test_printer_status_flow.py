"""A till's printer state reaches HQ as a code beside its words, through a real Mosquitto and
the real collector; a till from before the code (words only) is still recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from terminal.hq.models import TerminalSeen
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, until


def test_the_printers_code_is_recorded_and_an_older_tills_words_alone(pki: Any, broker: Any,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    printer: dict[str, Any] = {"code": "paper_out", "waiting": 2}

    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        hq = chain.hq()
        new = chain.till("S001", "T01", printer_state=lambda: printer)
        chain.till("S001", "T02")  # an older till: no printer_state at all

        def seen() -> dict[str, tuple[str, str]]:
            return {row.terminal: (json.loads(row.devices)["printer"], row.printer_state)
                    for row in TerminalSeen.select()}

        async def recorded() -> dict[str, tuple[str, str]]:
            return await hq.ledger.thread.run(seen)

        async def both() -> bool:
            return len(await recorded()) == 2

        async def reprinted() -> bool:
            state = (await recorded())["T01"][1]
            return json.loads(state) == {"code": "ok", "waiting": 0}

        async with chain:
            await until(both, 30)
            rows = await recorded()
            assert json.loads(rows["T01"][1]) == {"code": "paper_out", "waiting": 2}
            assert rows["T02"] == ("ok", "")  # its words, and no code
            printer.update(code="ok", waiting=0)  # the roll changed and the receipts reprinted
            await new.link.publish_status()
            await until(reprinted, 30)

    run(scenario(), timeout=120)
