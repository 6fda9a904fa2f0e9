"""Command lines of sub-commands, each in its own module, imported only when chosen.

Each command module defines ``configure(parser)`` and ``run(args) -> int``. Importing lazily keeps
``posterm --help`` and ``posterm --version`` fast on a Pi (python-escpos alone costs 0.4 s).
``posterm`` (:mod:`terminal.daemon.cli`) and ``posterm-hq`` (:mod:`terminal.hq.cli`) both use it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from terminal import __version__


def build_parser(commands: dict[str, tuple[str, str]], prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def dispatch(commands: dict[str, tuple[str, str]], prog: str, argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(commands, prog)
    head = argv[:1] if argv and not argv[0].startswith("-") else argv
    known = parser.parse_args(head)
    if not known.command:
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(commands[known.command][0])
    command_parser = argparse.ArgumentParser(
        prog=f"{prog} {known.command}", description=commands[known.command][1]
    )
    module.configure(command_parser)
    args = command_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


def run_alone(module_name: str, prog: str, argv: list[str] | None = None) -> int:
    """One command module run on its own, as a systemd unit runs ``python -m terminal.update``:
    the same ``configure`` and ``run`` as through the dispatcher."""
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog)
    module.configure(parser)
    return int(module.run(parser.parse_args(argv)) or 0)
