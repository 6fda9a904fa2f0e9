"""Issue 16's proof: generated event bodies thrown at a real collector never stall it.

An attacker holding S001/T01's certificate publishes mutations of that till's real events
(registrations, member sales, a redemption, a refund, an adjustment; one value replaced, a key
dropped or added, at any depth, envelope included) and the real events themselves under new ids,
while an honest till of store S002 rings up a sale after every barrage. Each honest sale must be
applied and acked within ``HONEST_WITHIN`` seconds throughout, the bound the issue sets; every
hostile event is applied, refused with a reason, or left for a dependency, and the collector logs
no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.hostile import json_values, mutate
from tests.faults.support import Counts, scaled
from tests.hq.test_ingest_batches import till_events
from tests.sync.harness import until

from .support import HqDatabase, attacker, collector, drained, honest_till

HONEST_WITHIN = 2.0  # seconds from a sale to HQ's ack of it, while the barrage goes on
# Besides any JSON value: what breaks a database column, a text or a clock.
EDGES = st.sampled_from([2**31, 2**63, -2**63 - 1, 2**64, -1, 0, "\ud800", "a\x00b", "\x07",
                         "x" * 5000, "伞" * 300, [], {}, 12345, True, "",
                         "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00"])
VALUES = st.one_of(json_values, EDGES)


def hostile_event(documents: list[dict[str, Any]], draw: st.DrawFn) -> bytes:
    document = dict(draw(st.sampled_from(documents)))
    document["id"] = str(uuid.uuid4())  # not a duplicate of one HQ has seen
    if draw(st.booleans()):
        document = mutate(document, draw, VALUES)
    return json.dumps(document).encode()


def test_generated_events_never_keep_an_honest_till_waiting(tmp_path: Path, pki: Any,
                                                            broker: Any, hq_db: str) -> None:
    documents = [json.loads(event.to_json()) for event in till_events(tmp_path)]
    counts = Counts("hostile-events-at-hq")
    honest_sales: list[str] = []
    loop = asyncio.new_event_loop()
    scene = contextlib.AsyncExitStack()

    async def setup() -> tuple[Any, Any]:
        attack = await scene.enter_async_context(attacker(pki, broker))
        till = await scene.enter_async_context(honest_till(tmp_path, pki, broker))
        return attack, till

    async def barrage(payloads: list[bytes]) -> None:
        for payload in payloads:
            await attack.publish(payload)
        await till.sell(100 + len(honest_sales))
        honest_sales.append((await till.events())[-1])
        await until(lambda: drained(till), HONEST_WITHIN, every=0.01)

    @settings(max_examples=scaled(40), derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def barrages(data: st.DataObject) -> None:
        payloads = [hostile_event(documents, data.draw)
                    for _ in range(data.draw(st.integers(1, 6)))]
        counts.inputs += len(payloads)
        loop.run_until_complete(barrage(payloads))

    with collector(tmp_path, pki, broker, hq_db) as hq:
        try:
            attack, till = loop.run_until_complete(setup())
            barrages()
        except BaseException:
            print(hq.log()[-4000:])
            raise
        finally:
            loop.run_until_complete(scene.aclose())
            loop.close()
            counts.sales, counts.inputs_crashed = len(honest_sales), hq.log().count("Traceback")
            counts.write()
        log = hq.log()
    outcomes = HqDatabase(hq_db).outcomes()
    assert honest_sales and all(outcomes[sale][0] == "applied" for sale in honest_sales)
    assert "Traceback" not in log and " ERROR " not in log, log[-4000:]
