"""The `posterm` command line: one sub-command per module, imported only when chosen
(:mod:`terminal.core.subcommands`)."""

from __future__ import annotations

import sys

from terminal.core.subcommands import dispatch

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("terminal.tools.replay", "run a scenario file against the real engine and store"),
    "member": ("terminal.tools.member", "show a member or their statement"),
    "report": ("terminal.tools.report", "print the daily report"),
    "doctor": ("terminal.field.doctor", "check the store hardware and say what works"),
    "run": ("terminal.daemon.run", "run the terminal (add --simulate for simulated hardware)"),
    "provision": ("terminal.field.provision", "provision this terminal from the technician's file"),
    "update": ("terminal.field.update", "install, check or roll back an application update"),
    "operator": ("terminal.field.operators", "list, add, change or retire the till's operators"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch(COMMANDS, "posterm", argv)


if __name__ == "__main__":
    sys.exit(main())
