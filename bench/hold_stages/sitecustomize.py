"""A till's hold taken apart, stage by stage, in a real bench_ingest.py (c) run (session 12).

Loaded as ``sitecustomize`` by every Python process of the run (the bench, its tills, the
collector's processes) when ``PYTHONPATH`` has this directory and ``HOLD_STAGES`` names an
output directory; nothing happens without it. Each process appends to ``PID.txt`` there the
CLOCK_MONOTONIC time (shared by all processes) of each stage of a hold, keyed by hold id: the
till's publish, the collector's task parsing the request, the hold thread entering and leaving
``ChainLedger.answer`` (with that thread's and its server backend's run-queue waits from
/proc schedstat, and each psycopg wait over 0.2 ms) or, since session 13, the loop's
``LoopHolds.answer`` (the loop thread's run-queue wait), the response built, the till parsing
the answer; and every full (generation 2) collection. ``stages.py DIR`` joins them:

    HOLD_STAGES=/tmp/stages PYTHONPATH=bench/hold_stages .venv/bin/python \
        bench/bench_ingest.py --parts c --backlog 100000 --idle 300
    .venv/bin/python bench/hold_stages/stages.py /tmp/stages
"""

import os

OUT = os.environ.get("HOLD_STAGES")


def _install() -> None:
    import gc
    import threading
    import time

    files: dict[int, object] = {}

    def rec(*fields: object) -> None:
        pid = os.getpid()
        f = files.get(pid)
        if f is None:
            f = files[pid] = open(f"{OUT}/{pid}.txt", "a", buffering=1)  # noqa: SIM115
        f.write(" ".join(str(x) for x in (time.monotonic_ns(), threading.current_thread().name,
                                           *fields)) + "\n")

    def runq(path: str = "/proc/thread-self/schedstat") -> int:
        try:
            with open(path) as s:
                return int(s.read().split()[1])
        except OSError:
            return -1

    gen2: dict[int, int] = {}

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            gen2[os.getpid()] = time.monotonic_ns()
        else:
            start = gen2.pop(os.getpid(), None)
            if start is not None:
                rec("gc2", start, time.monotonic_ns() - start, info.get("collected"))

    gc.callbacks.append(on_gc)

    import psycopg

    from terminal.hq import chain_ledger, holds
    from terminal.protocol import messages

    req_to_json = messages.MemberRequest.to_json
    req_from_json = messages.MemberRequest.from_json.__func__
    resp_to_json = messages.MemberResponse.to_json
    resp_from_json = messages.MemberResponse.from_json.__func__

    def to_json(self):  # the till: about to publish
        if self.op == "hold":
            rec("pub", self.hold_id)
        return req_to_json(self)

    def from_json(cls, raw):  # the collector: the request's task parses it
        request = req_from_json(cls, raw)
        if request.op == "hold":
            rec("recv", request.hold_id)
        return request

    def r_to_json(self):  # the collector: answered, about to publish
        if self.op == "hold":
            rec("resp", self.hold_id)
        return resp_to_json(self)

    def r_from_json(cls, raw):  # the till: the answer parsed
        response = resp_from_json(cls, raw)
        if response.op == "hold":
            rec("ans", response.hold_id)
        return response

    messages.MemberRequest.to_json = to_json
    messages.MemberRequest.from_json = classmethod(from_json)
    messages.MemberResponse.to_json = r_to_json
    messages.MemberResponse.from_json = classmethod(r_from_json)

    local = threading.local()
    answer = chain_ledger.ChainLedger.answer

    def traced_answer(self, request, store, terminal):
        if request.op != "hold":
            return answer(self, request, store, terminal)
        local.hold = request.hold_id
        local.waits = []
        conn = self.db.connection()
        backend = f"/proc/{conn.info.backend_pid}/schedstat"
        q0, b0 = runq(), runq(backend)
        rec("in", request.hold_id)
        try:
            return answer(self, request, store, terminal)
        finally:
            q1, b1 = runq(), runq(backend)
            rec("out", request.hold_id, q1 - q0, b1 - b0,
                ",".join(f"{w}" for w in local.waits))
            local.hold = None

    chain_ledger.ChainLedger.answer = traced_answer

    wait = psycopg.Connection.wait

    def traced_wait(self, gen, *args, **kwargs):
        if getattr(local, "hold", None) is None:
            return wait(self, gen, *args, **kwargs)
        start = time.monotonic_ns()
        try:
            return wait(self, gen, *args, **kwargs)
        finally:
            took = time.monotonic_ns() - start
            if took > 200_000:
                local.waits.append(f"{took / 1e6:.2f}")

    psycopg.Connection.wait = traced_wait
    _ = holds

    # Since session 13 a hold is answered on the collector's loop (terminal.hq.loop_holds):
    # "in" and "out" there; the run-queue wait is the loop thread's, the backend's is not
    # known (0), and each psycopg wait of the hold's task over 0.2 ms is counted as above.
    try:
        from terminal.hq import loop_holds
    except ImportError:  # a tree from before it
        return
    import contextvars

    task_hold: contextvars.ContextVar[str | None] = contextvars.ContextVar("hold", default=None)
    task_waits: contextvars.ContextVar[list[str]] = contextvars.ContextVar("waits")
    loop_answer = loop_holds.LoopHolds.answer

    async def traced_loop_answer(self, request, store, terminal):
        if request.op != "hold":
            return await loop_answer(self, request, store, terminal)
        task_hold.set(request.hold_id)
        waits: list[str] = []
        task_waits.set(waits)
        q0 = runq()
        rec("in", request.hold_id, holds.lock_key(request))
        try:
            return await loop_answer(self, request, store, terminal)
        finally:
            rec("out", request.hold_id, runq() - q0, 0, ",".join(waits))
            task_hold.set(None)

    loop_holds.LoopHolds.answer = traced_loop_answer
    async_wait = psycopg.AsyncConnection.wait

    async def traced_async_wait(self, gen, *args, **kwargs):
        if task_hold.get() is None:
            return await async_wait(self, gen, *args, **kwargs)
        start = time.monotonic_ns()
        try:
            return await async_wait(self, gen, *args, **kwargs)
        finally:
            took = time.monotonic_ns() - start
            if took > 200_000:
                task_waits.get().append(f"{took / 1e6:.2f}")

    psycopg.AsyncConnection.wait = traced_async_wait

    # The bench's PostgreSQL log (its lock waits, with PGOPTIONS="-c log_lock_waits=on -c
    # deadlock_timeout=2ms" in the run's environment) copied to OUT before the server's
    # directory goes.
    try:
        from tests.support import postgres
    except ImportError:
        return
    stop = postgres.Postgres.stop

    def traced_stop(self, *args, **kwargs):
        try:
            with open(f"{OUT}/postgres.log", "a") as f:
                f.write(self.log_text())
        except OSError:
            pass
        return stop(self, *args, **kwargs)

    postgres.Postgres.stop = traced_stop


if OUT:
    _install()
