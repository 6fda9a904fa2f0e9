"""HQ's refusals on the wire, through a real broker and collector: a till that asks for codes
(``MemberRequest.codes``, as this till's MemberClient does) gets each refusal's ``code`` and
``values`` beside HQ's English, and its Chinese words are made from them; a till before codes
(no ``codes`` in its request) gets exactly the fields its strict parser knows, so it does not
take a refused hold for HQ not answering; a request HQ cannot parse is refused with no code."""

from __future__ import annotations

import json
import uuid

import pytest

from terminal.app.refusal_words import detail_zh
from terminal.loyalty.errors import RedeemRefused
from terminal.loyalty.store.models import Member
from terminal.protocol.messages import MemberRequest, MemberResponse
from terminal.protocol.topics import Topics
from tests.sync.conftest import mqtt_client, run
from tests.sync.harness import Chain

T = Topics()
CARD = "MEMBER0042"
# The fields of a MemberResponse a till before codes knows (its parser refuses any other).
BEFORE_CODES = {"op", "ok", "hq_time", "member", "balance", "tier", "hold_id", "error", "states",
                "through", "more"}


def test_hq_sends_codes_to_a_till_that_asks_and_none_to_one_that_does_not(
        pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker, per_member_per_day=20_000)
        till, _ = chain.till(), chain.hq()
        async with chain:
            await till.register(CARD)
            await till.sell(300_000, CARD)
            await chain.drained()
            hashed = await till.run(lambda: Member.get(Member.card_last4 == CARD[-4:]).card_hash)
            full = (await till.link.member_balance(hashed)).balance

            # This till's own link: HQ's code and values reach the refusal, and its Chinese.
            with pytest.raises(RedeemRefused) as refused:
                await till.link.hold(hashed, full + 100, "sale-1")
            said = f"insufficient points: {full} available"
            assert refused.value.values == {"said": said, "code": "hold.points",
                                            "available": full}
            assert str(refused.value) == f"HQ refused the hold: {said}"
            assert detail_zh(str(refused.value), refused.value.rule, refused.value.values) == \
                f"积分冻结：积分不够，可用 {full} 积分"
            with pytest.raises(RedeemRefused) as refused:
                await till.link.hold(hashed, 30_000, "sale-2")
            assert detail_zh(str(refused.value), refused.value.rule, refused.value.values) == \
                "积分冻结：冻结 30000 积分超过会员每天可兑换的 20000 积分"

            # Another till (its own rate of requests at HQ), asking by hand.
            async with mqtt_client(pki, broker, "S001/T02") as raw:
                async def ask(payload: bytes) -> tuple[dict[str, object], MemberResponse]:
                    reply = await raw.request(T.member_request("S001", "T02"), payload,
                                              response_topic=T.member_response("S001", "T02"),
                                              timeout=30)
                    return json.loads(reply.payload), MemberResponse.from_json(reply.payload)

                unknown = MemberRequest("lookup", "0" * 64)
                wire, answer = await ask(MemberRequest(**{**vars(unknown),
                                                          "codes": True}).to_json())
                assert (answer.code, answer.values, answer.error) == \
                    ("member.unknown", None, "unknown member")
                wire, answer = await ask(unknown.to_json())  # a till before codes
                assert set(wire) <= BEFORE_CODES and answer.error == "unknown member", wire
                void = MemberRequest("void", hold_id=str(uuid.uuid4()))
                wire, answer = await ask(MemberRequest(**{**vars(void),
                                                          "codes": True}).to_json())
                assert (answer.code, answer.error) == ("hold.unknown", "unknown hold")
                hold = MemberRequest("hold", hashed, full + 100, str(uuid.uuid4()))
                wire, answer = await ask(hold.to_json())
                assert set(wire) <= BEFORE_CODES and answer.error == said, wire
                # A request HQ cannot parse: refused in English, without a code (whether the
                # till reads codes is in what HQ could not read).
                wire, answer = await ask(b'{"op": "lookup", "codes": true}')
                assert set(wire) <= BEFORE_CODES, wire
                assert answer.error == "member_request.member: is required", answer
    run(scenario(), timeout=60)
