"""Record ids (terminal.loyalty.ids): random bits taken from os.urandom in chunks must never
repeat, across threads and across a fork (HQ's collector forks its member-request process)."""

from __future__ import annotations

import os
import threading

from terminal.loyalty.ids import new_id


def random_part(record_id: str) -> str:
    """The id's random bits (all but the milliseconds and the version)."""
    digits = record_id.replace("-", "")
    return digits[13:]


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    new_id()  # the parent's chunk is filled: a child that kept it would hand out the same bits
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        try:
            os.write(write, "".join(random_part(new_id()) for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    mine = {random_part(new_id()) for _ in range(50)}
    with os.fdopen(read) as answer:
        text = answer.read()
    os.waitpid(child, 0)
    theirs = {text[n:n + 19] for n in range(0, len(text), 19)}
    assert len(theirs) == 50 and not mine & theirs


def test_ids_from_threads_are_distinct() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [random_part(record_id) for into in made for record_id in into]
    assert len(set(every)) == len(every)
