"""Driver latency benchmark: prints p50/p99 against the targets and the machine's own floor.

(a) swipe: from feeding the last key event of a swipe (the Enter release path) to the decoded card
    number, through the real KeyDecoder, WedgeAssembler and parse_swipe. Floor: a bare Python loop
    over the same event objects (the cost of merely touching them).
(b) pole: from PoleDisplay.show() to the last byte read back on the pseudo-terminal's master side,
    through pyserial. Floor: a bare os.write of the same bytes on the slave fd and os.read back.

Run: .venv/bin/python bench/bench_drivers.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from terminal.drivers.keys import KeyDecoder, WedgeAssembler, events_for_text
from terminal.drivers.msr import parse_swipe
from terminal.drivers.pole import PoleConfig, encode_lines, open_pole

SWIPE = "%B8000123456^WANG/XIAOMING^3012101?;8000123456=3012101?\n"
TARGET_SWIPE_P99 = 0.001
TARGET_POLE_P99 = 0.005


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(
    rounds: int, prepare: Callable[[], object], measure: Callable[[object], None]
) -> list[float]:
    samples = []
    for _ in range(rounds):
        state = prepare()
        start = time.perf_counter()
        measure(state)
        samples.append(time.perf_counter() - start)
    return samples


def bench_swipe(rounds: int) -> tuple[list[float], list[float]]:
    events = events_for_text(SWIPE)
    # The Enter press is where the input completes; everything after it is key-up/SYN.
    last = max(i for i, e in enumerate(events) if e.value == 1)
    head, tail = events[:last], events[last:]

    def prepare() -> WedgeAssembler:
        assembler = WedgeAssembler(KeyDecoder())
        for event in head:
            assembler.feed(event)
        return assembler

    def measure(assembler: object) -> None:
        for event in tail:
            done = assembler.feed(event)  # type: ignore[attr-defined]
            if done is not None:
                assert parse_swipe(done.text).number == "8000123456"

    def floor(_state: object) -> None:
        for event in tail:
            _ = event.value

    return timed(rounds, prepare, measure), timed(rounds, lambda: None, floor)


def bench_pole(rounds: int) -> tuple[list[float], list[float]]:
    config = PoleConfig(backend="pty")
    display = open_pole(config)
    display.start()
    simulator = display.simulator
    assert simulator is not None
    lines = [(f"Item {i:03d} Cola", f"Total {i * 7 / 100:8.2f}") for i in range(rounds)]
    size = len(encode_lines(*lines[0], config))

    def drain(expected: int) -> None:
        got = 0
        while got < expected:
            got += simulator.pump()

    samples = []
    for line1, line2 in lines:
        start = time.perf_counter()
        display.show(line1, line2)
        drain(size)
        samples.append(time.perf_counter() - start)
    assert simulator.lines == lines[-1]

    payload = encode_lines(*lines[0], config)
    slave = os.open(simulator.slave_path, os.O_WRONLY | os.O_NOCTTY)
    floor = []
    for _ in range(rounds):
        start = time.perf_counter()
        os.write(slave, payload)
        drain(size)
        floor.append(time.perf_counter() - start)
    os.close(slave)
    display.close()
    return samples, floor


def report(name: str, samples: list[float], floor: list[float], target: float) -> None:
    p50, p99 = percentiles(samples)
    f50, f99 = percentiles(floor)
    verdict = "meets" if p99 <= target else "MISSES"
    print(f"{name}: p50 {p50 * 1e6:8.1f} us  p99 {p99 * 1e6:8.1f} us  "
          f"| target p99 {target * 1e3:.0f} ms: ratio {p99 / target:.3f} ({verdict})  "
          f"| floor p50 {f50 * 1e6:.1f} us p99 {f99 * 1e6:.1f} us: ratio p99 {p99 / f99:.1f}x")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    bench_swipe(100)  # warm up imports and caches
    swipe, swipe_floor = bench_swipe(rounds)
    pole, pole_floor = bench_pole(rounds)
    print(f"posterm driver latency, {rounds} rounds, Python {sys.version.split()[0]}")
    report("swipe last key -> card number", swipe, swipe_floor, TARGET_SWIPE_P99)
    report("pole show() -> last byte on pty", pole, pole_floor, TARGET_POLE_P99)


if __name__ == "__main__":
    main()
