"""How the member-request process of ``posterm-hq collect --member-requests apart`` asks Linux
for a CPU promptly (issue 11 (c)).

A till's hold is a few short wake-ups (the broker's message read, the statement sent, its answer
read, the response sent), each of which waits for a CPU while the backlog's bulk work keeps both
cores busy. Two things decide how long:

- **The scheduling group.** With the kernel's autogroups (``/proc/sys/kernel/sched_autogroup_
  enabled``, on unless the service's cgroup has the CPU controller) CPU time is shared between
  sessions first and between a session's processes only then; the collector's session holds the
  ingest process, always runnable under a backlog, so the member-request process woke inside a
  group that was already queued and waited for that group's turn: niceness orders it before the
  ingest inside the group, not before anything outside it. :func:`own_session` makes the process
  a session of its own (``setsid``), as PostgreSQL makes each backend: a group that sleeps
  between requests, placed at its wake-up by what it is owed, as the holds' backends and the
  broker are.
- **The slice** (Linux 6.12 and later, EEVDF): a task's requested run time (``sched_setattr``'s
  ``sched_runtime`` for SCHED_OTHER) sets its virtual deadline; a waking task with a shorter
  slice than the running one preempts it. :func:`short_slice` asks :data:`SLICE_NS`, the ingest
  keeps the kernel's default (1.4 ms on this 2-CPU machine). No privilege is needed; on older
  kernels or elsewhere it does nothing.

Neither changes what the process does, nor its CPU share: only how soon it runs when it wakes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

SLICE_NS = 100_000  # the shortest the kernel allows (0.1 ms; at most 100 ms)
# sched_setattr(2) by its number: glibc has no wrapper before 2.41 (Debian 12 ships 2.36) and
# Python's os module none at all. The numbers are the kernel's own, fixed per architecture
# (arch/*/kernel syscall tables; aarch64 and riscv64 share the generic table).
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274, "armv7l": 380, "riscv64": 274}


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


def own_session() -> bool:
    """Make this process a session (and so an autogroup) of its own; False if it leads one
    already (it is then its own group, or systemd's)."""
    try:
        os.setsid()
    except OSError:
        return False
    return True


def short_slice(slice_ns: int = SLICE_NS) -> bool:
    """Ask the kernel for a slice of ``slice_ns`` for this thread and the threads it starts
    after (SCHED_OTHER at its current niceness); False where the call fails (kernels before
    6.12 take it and keep their own slice: /proc/PID/sched's ``se.slice`` says which)."""
    number = _SCHED_SETATTR.get(platform.machine())
    if number is None or not hasattr(os, "sched_getscheduler"):
        return False
    attr = _SchedAttr(size=ctypes.sizeof(_SchedAttr), sched_policy=os.SCHED_OTHER,
                      sched_nice=os.getpriority(os.PRIO_PROCESS, 0), sched_runtime=slice_ns)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, 0, ctypes.byref(attr), 0) != 0:
        log.info("no slice of %d ns: %s", slice_ns, os.strerror(ctypes.get_errno()))
        return False
    return True


def answer_promptly() -> tuple[bool, bool]:
    """The member-request process's scheduling (see the module's doc): its own session, a short
    slice. Says what it got."""
    session, sliced = own_session(), short_slice()
    log.info("member-request process (pid %d): own session %s, slice of %d ns %s", os.getpid(),
             "yes" if session else "no", SLICE_NS, "yes" if sliced else "no")
    return session, sliced
