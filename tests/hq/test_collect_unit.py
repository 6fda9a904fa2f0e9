"""What the shipped systemd unit runs (deploy/hq/posterm-hq-collect@.service): its command line,
parsed by ``posterm-hq collect``'s own options, asks for member requests apart, and by the
defaults the ingest process is niced (session 14, issue 11 (c): a till's hold gets a CPU before
the backlog's bulk work) and holds are answered on the member-request process's event loop."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

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
