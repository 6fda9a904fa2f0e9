"""Resources: the disk fills up under a selling till (a loop-mounted ext4, else a size-limited
tmpfs): new sales are refused with a message on the display, nothing already stored is
damaged, and selling resumes once space returns."""

from __future__ import annotations

import io
from pathlib import Path

from terminal.daemon.bootstrap import build
from terminal.daemon.config import load_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY

from .chain import IDENTITY, RULES, till_files
from .disk import fill, small_disk
from .scripts import SIGN_IN
from .support import SALE_SHOWN, Counts, ledger_problems

SALE = ("25.00 dept1", "cash")


def test_full_disk_refuses_sales_clearly_and_recovers(tmp_path: Path) -> None:
    counts = Counts("disk-full")
    with small_disk(tmp_path) as (disk, kind):
        files = till_files(disk)
        ballast = disk / "ballast"
        out = io.StringIO()

        async def sell(console: Console) -> str | None:
            """One sale: its id when the display showed it completed, else None."""
            start = len(out.getvalue())
            for line in SALE:
                await console.command(line)
            shown = SALE_SHOWN.findall(out.getvalue()[start:])
            counts.sales += bool(shown)
            return shown[0] if shown else None

        async def scenario() -> tuple[set[str], str]:
            terminal = await build(load_config(files.config), prepare=seed_demo)
            try:
                console = Console(terminal, out)
                await console.command(SIGN_IN)
                shown = {await sell(console) for _ in range(3)}
                assert None not in shown
                fill(ballast)
                refused = ""
                for _ in range(30):  # free pages in the WAL may take a few sales
                    sale = await sell(console)
                    if sale is None:
                        refused = terminal.till.message
                        break
                    shown.add(sale)
                assert refused, f"no sale was refused on a full disk ({kind})"
                ballast.unlink()
                resumed = await sell(console)
                assert resumed is not None, f"selling did not resume: {terminal.till.message}"
                shown.add(resumed)
                return shown, refused
            finally:
                await terminal.close()

        shown, refused = run(scenario(), timeout=120)
        problems = ledger_problems(files.database, RULES, CARD_KEY, IDENTITY, shown)
    counts.sales_lost = sum("shown but not stored" in p for p in problems)
    counts.notes = f"disk filled on a {kind}; refused with: {refused}"
    counts.write()
    assert not problems, problems
    assert "full" in refused.lower() or "space" in refused.lower(), refused
