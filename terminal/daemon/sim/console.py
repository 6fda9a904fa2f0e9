"""The simulation's console: typed commands stand in for the keypad, card reader and scanner.

One command a line, read on the event loop from a terminal or a pipe (tests and tmux drive it):
keypad words and numbers become key events of the configured keymap, ``s`` swipes a card and
``b`` scans a barcode. Every input goes through the same ``InputPort`` decoding as the hardware;
the pole display is read back from its pseudo-terminal, and receipts land in the state folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from terminal.core.configfile import ConfigError
from terminal.daemon.bootstrap import Terminal, system_clock
from terminal.daemon.config import load_config
from terminal.daemon.run import serve
from terminal.daemon.sim.demo import (
    CASHIER,
    CASHIER_PIN,
    DEMO_CARD,
    MANAGER,
    MANAGER_PIN,
    demo_config,
    seed_demo,
)
from terminal.drivers.keymap import load_keymap
from terminal.drivers.keys import events_for_keys, events_for_text
from terminal.drivers.textwidth import align

ALIASES = {"dept1": "department_1", "dept2": "department_2", "sign": "sign_in_out",
           ".": "decimal_point", "esc": "clear"}
_AMOUNT = re.compile(r"[0-9.]+")

HELP = f"""\
posterm simulation: one command a line (the keyboard stands in for keypad, reader and scanner)
  s [CARD]      swipe a member card (the demo card {DEMO_CARD} when no number is given)
  t TRACKS      swipe raw track text, e.g. t ;80001234   (a partial swipe)
  b CODE        scan a barcode, e.g. b 6901234567892
  WORDS         keypad keys: numbers (12.50) and actions (enter, member, subtotal, cash, card,
                redeem, void, refund, reprint, balance, quantity, add, discount, price_check,
                clear, backspace, sign, dept1, dept2), any number per line
  help, quit
A member sale with a redemption, line by line:
  {CASHIER} enter {CASHIER_PIN} enter sign in: operator no. {CASHIER}, then PIN {CASHIER_PIN}
                     (the demo cashier; the manager is no. {MANAGER}, PIN {MANAGER_PIN})
  s                  swipe the demo member card: the pole shows the points
  b 6901234567892    scan a cola; 25 dept1 keys 25.00 on department 1 (fresh)
  subtotal           the balance and the most points that may be redeemed
  redeem             redeem that most (or e.g. 500 redeem)
  100 cash           pay 100.00 cash: change shown, drawer opens, receipt printed
"""


def _key_names(keymap_keys: dict[str, str], words: list[str]) -> list[str]:
    """Keypad words -> evdev key names through the keymap (``KEY_...`` passes through)."""
    names: list[str] = []
    for word in words:
        if word.startswith("KEY_"):
            names.append(word)
        elif _AMOUNT.fullmatch(word):
            names += [keymap_keys["decimal_point" if c == "." else f"digit_{c}"] for c in word]
        else:
            action = ALIASES.get(word.lower(), word.lower())
            if action not in keymap_keys:
                raise ValueError(f"{word!r} is no keypad key here; type help")
            names.append(keymap_keys[action])
    return names


class Console:
    def __init__(self, terminal: Terminal, out: TextIO) -> None:
        self.terminal = terminal
        self.out = out
        keypad = terminal.port("keypad").config
        self.keys: dict[str, str] = {}
        for key, action in load_keymap(keypad.keymap).items():
            self.keys.setdefault(action, key)  # the first key of each action (KP digits)
        self.printed = 0

    async def command(self, line: str) -> bool:
        """Run one command line; False when the user asked to quit."""
        words = line.split()
        if not words:
            return True
        head, rest = words[0], line.strip()[len(words[0]):].strip()
        try:
            if head in ("quit", "exit", "q"):
                return False
            if head in ("help", "?", "h"):
                self.out.write(HELP)
                return True
            if head == "s":
                card = rest or DEMO_CARD
                self._inject("msr", events_for_text(
                    f"%B{card}^DEMO/MEMBER^3012101?;{card}=3012101?\n"))
            elif head == "t":
                self._inject("msr", events_for_text(rest + "\n"))
            elif head == "b":
                self._inject("scanner", events_for_text(rest + "\n"))
            else:
                self._inject("keypad", events_for_keys(_key_names(self.keys, words)))
        except ValueError as exc:
            self.out.write(f"?? {exc}\n")
            return True
        await self.terminal.inputs.drain()
        await self.terminal.till.settle()
        self.draw()
        return True

    def _inject(self, role: str, events: list) -> None:  # type: ignore[type-arg]
        port = self.terminal.port(role)
        port.inject(events)
        port.expire(float("inf"))

    def draw(self) -> None:
        pole = self.terminal.pole
        lines = pole.simulator.lines if pole is not None and pole.simulator else ("", "")
        width = self.terminal.displays.columns
        frame = self.terminal.displays.frame
        out = ["+" + "-" * width + "+  pole display"]
        out += [f"|{align(line, width)}|" for line in lines]  # a Chinese character is 2 wide
        out.append("+" + "-" * width + "+")
        if frame is not None:
            who = f"{frame.member} ({frame.tier}, {frame.balance} points)" if frame.member \
                else "no member"
            out.append(f"LCD: {who} | {frame.prompt}")
        for printed in self.terminal.desk.printed[self.printed:]:
            out.append(f"--- receipt {printed.receipt_id}: {printed.result.message} ---")
            out.append(printed.text.rstrip("\n"))
            archive = self.terminal.config.receipts_dir / f"{printed.receipt_id}.txt"
            out.append(f"--- kept as {archive} (and .png) ---")
        self.printed = len(self.terminal.desk.printed)
        self.out.write("\n".join(out) + "\n")
        self.out.flush()


async def _lines(source: TextIO) -> asyncio.StreamReader | list[str]:
    """A stream over stdin when it can be waited on (terminal, pipe, socket); anything else
    (a regular file, /dev/null under nohup or a service) is read at once: epoll refuses such
    a file, and the console would wait for input that never comes."""
    fd = source.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
        return source.read().splitlines()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)
    return reader


def console_task(source: TextIO, out: TextIO) -> Callable[[Terminal, asyncio.Event], object]:
    async def attach(terminal: Terminal, stop: asyncio.Event) -> None:
        console = Console(terminal, out)
        out.write(HELP)
        console.draw()
        lines = await _lines(source)
        try:
            if isinstance(lines, list):
                for line in lines:
                    if not await console.command(line):
                        break
            else:
                while raw := await lines.readline():
                    if not await console.command(raw.decode(errors="replace")):
                        break
        finally:
            stop.set()  # end of input or quit: the daemon stops cleanly
    return attach


def simulate(state_dir: Path, config_path: Path | None = None) -> int:
    """The console over the demo state in ``state_dir``, or over ``config_path``'s terminal
    (its devices simulated, its ``[broker]``/``[hq]`` wired as the daemon wires them)."""
    if config_path is None:
        config = demo_config(state_dir.resolve())
    else:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            print(f"posterm run: {exc}", file=sys.stderr)
            return 2
    clock = system_clock(ZoneInfo("Asia/Shanghai"), trust=lambda: True)
    return asyncio.run(serve(config, clock=clock,
                             attach=console_task(sys.stdin, sys.stdout),  # type: ignore[arg-type]
                             prepare=seed_demo))
