"""What the shipped systemd unit runs (deploy/hq/posterm-hq-collect@.service): its command line,
parsed by ``posterm-hq collect``'s own options, asks for member requests apart, and by the
defaults the ingest process is niced (session 14, issue 11 (c): a till's hold gets a CPU before
the backlog's bulk work) and holds are answered on the member-request process's event loop."""

from __future__ import annotations

import argparse
import gc
import re
import shlex
from pathlib import Path

import pytest

from terminal.hq import collect

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "hq" / "posterm-hq-collect@.service"


def test_the_units_collector_nices_its_bulk_work_by_default() -> None:
    text = UNIT.read_text()
    command = re.search(r"^ExecStart=(.*?)(?<!\\)$", text.replace("\\\n", " "), re.M)
    assert command is not None
    argv = shlex.split(command.group(1))
    assert argv[:2] == ["/usr/bin/posterm-hq", "collect"]
    parser = argparse.ArgumentParser()
    collect.configure(parser)
    args = parser.parse_args(argv[2:])
    assert args.member_requests == "apart"
    assert args.ingest_nice == 10
    assert args.holds == "loop"


def test_the_ingest_process_collects_its_young_objects_less_often(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest process (collect._collect) keeps its start-up heap out of collections and
    from then on collects the young generation every INGEST_GC_YOUNG allocations, not Python's
    700 (session 15: a replayed sale makes and drops hundreds of objects); the older
    generations keep their thresholds."""
    served: list[tuple[int, int, int]] = []

    class Ledger:
        batch_seconds: float | None = None

        def close(self) -> None:
            pass

    async def serve(collector: object, alive: object = None) -> None:
        served.append(gc.get_threshold())

    monkeypatch.setattr(collect, "open_ledger", lambda *args: Ledger())
    monkeypatch.setattr(collect, "Collector", lambda *args, **kwargs: object())
    monkeypatch.setattr(collect, "serve", serve)
    parser = argparse.ArgumentParser()
    collect.configure(parser)
    args = parser.parse_args(["--db", "hq.db", "--rules", "rules.toml", "--card-key-file",
                              "card.key", "--host", "127.0.0.1", "--ca", "ca.crt", "--cert",
                              "hq.crt", "--key", "hq.key"])
    before = gc.get_threshold()
    try:
        assert collect._collect(args, None) == 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    assert served == [(collect.INGEST_GC_YOUNG, *before[1:])]
    assert before[0] < collect.INGEST_GC_YOUNG
