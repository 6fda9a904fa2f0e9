"""What a test sees of a till built by the composition root: its cashier flow and its pole."""

from __future__ import annotations

from typing import Any

from terminal.daemon.bootstrap import Terminal


class TerminalView:
    """For a test's bench holding one ``terminal``."""

    terminal: Terminal

    @property
    def till(self) -> Any:
        return self.terminal.till

    @property
    def pole(self) -> tuple[str, str]:
        pole = self.terminal.pole
        assert pole is not None and pole.simulator is not None
        return pole.simulator.lines
