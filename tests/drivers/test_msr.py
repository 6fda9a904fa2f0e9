from __future__ import annotations

import logging
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.drivers.keys import KeyDecoder, WedgeAssembler, events_for_text
from terminal.drivers.msr import (
    CardRead,
    InputRefused,
    PaymentCardRefused,
    SwipeReadError,
    is_payment_pan,
    luhn_valid,
    parse_swipe,
)

MEMBER = "%B8000123456^WANG/XIAOMING^3012101?;8000123456=3012101?\n"
VISA = (
    "%B4111111111111111^CARDHOLDER/TEST^2812101000000000?"
    ";4111111111111111=28121010000000000000?\n"
)


def test_contract_examples() -> None:
    assert parse_swipe(MEMBER) == CardRead("8000123456", "WANG XIAOMING", (1, 2))
    with pytest.raises(SwipeReadError, match="swipe again"):
        parse_swipe(";80001234\n")
    with pytest.raises(PaymentCardRefused, match="payment card"):
        parse_swipe(VISA)


@pytest.mark.parametrize(
    ("text", "number", "tracks"),
    [
        (";8000123456=3012101?", "8000123456", (2,)),
        (";8000123456?\r\n", "8000123456", (2,)),
        ("%B8000123456^WANG/XIAOMING^3012101?", "8000123456", (1,)),
        ("MSR01;8000123456=3012101?\n", "8000123456", (2,)),  # reader prefix
        ("%E?;8000123456=3012101?\n", "8000123456", (2,)),  # track 1 unreadable, track 2 fine
        (";8000123456=1?;018000123456=1=2?\n", "8000123456", (2, 3)),
        ("+018000123456=99?\n", "8000123456", (3,)),
    ],
)
def test_track_combinations(text: str, number: str, tracks: tuple[int, ...]) -> None:
    read = parse_swipe(text)
    assert (read.number, read.tracks) == (number, tracks)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (";80001234\n", "damaged or incomplete track"),
        ("hello\n", "no card track found"),
        ("%E?;E?\n", "the reader reported a read error"),
        ("%B8000123456^WANG/X^30?;8000123457=30?", "tracks disagree"),
        (";8000123456=30?garbage", "damaged or incomplete track"),
        (";=30?", "damaged or incomplete track"),
        ("+01=3?", "damaged track 3"),
        ("", "no card track found"),
    ],
)
def test_read_errors_are_specific(text: str, reason: str) -> None:
    with pytest.raises(SwipeReadError) as caught:
        parse_swipe(text)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "pan",
    ["4111111111111111", "5500000000000004", "340000000000009", "6200000000000005",
     "2223000048400011", "3530111333300000", "6011000990139424"],
)
def test_payment_cards_refused_even_when_garbled(pan: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for text in (f";{pan}=2812?", f"%B{pan}^X/Y^28", f"junk{pan}"):
        with pytest.raises(PaymentCardRefused) as caught:
            parse_swipe(text)
        assert pan not in str(caught.value) and pan not in repr(caught.value)
        assert pan not in caplog.text


def test_luhn_and_ranges() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert not is_payment_pan("8000123456")  # loyalty: too short and prefix 8
    assert not is_payment_pan("8000000000000002")  # Luhn-valid, but 8 is no payment range
    assert not is_payment_pan("4111111111111112")


def test_card_repr_masks_number() -> None:
    read = parse_swipe(MEMBER)
    assert "8000123456" not in repr(read) and read.masked == "******3456"


def test_swipe_through_real_key_decoding() -> None:
    assembler = WedgeAssembler(KeyDecoder())
    inputs = [r for e in events_for_text(MEMBER) if (r := assembler.feed(e))]
    assert len(inputs) == 1 and inputs[0].kind == "burst"
    assert parse_swipe(inputs[0].text).number == "8000123456"


track_chars = st.sampled_from([*"0123456789%;+?=^/ABEWXYZ \n\r", "\x00", "é", "٣", "王"])
member_numbers = st.from_regex(r"[789][0-9]{5,18}", fullmatch=True)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(track_chars, max_size=80) | st.text(max_size=80))
def test_hostile_streams_only_raise_typed_errors(text: str) -> None:
    try:
        read = parse_swipe(text)
    except InputRefused as refused:
        for run in re.findall(r"[0-9]+", text):
            if is_payment_pan(run):
                assert run not in str(refused) and run not in repr(refused)
        return
    # Whatever is returned was on the stripe verbatim, and never a payment number.
    assert read.number and read.number in text and not is_payment_pan(read.number)


@settings(max_examples=300)
@given(member_numbers, st.integers(min_value=0, max_value=200), st.sampled_from("0123456789;?=^%X"),
       st.sampled_from(["replace", "delete", "insert"]))
def test_one_damaged_character_never_gives_a_wrong_number(
    number: str, where: int, char: str, how: str
) -> None:
    clean = f"%B{number}^WANG/XIAOMING^3012101?;{number}=3012101?\n"
    at = where % len(clean)
    damaged = {
        "replace": clean[:at] + char + clean[at + 1:],
        "delete": clean[:at] + clean[at + 1:],
        "insert": clean[:at] + char + clean[at:],
    }[how]
    try:
        read = parse_swipe(damaged)
    except SwipeReadError:
        return
    except PaymentCardRefused:
        # Conservative by design: damage that leaves a payment-like digit run is refused.
        assert any(is_payment_pan(run) for run in re.findall(r"[0-9]+", damaged))
        return
    assert read.number == number


@settings(max_examples=200)
@given(st.from_regex(r"4[0-9]{14}", fullmatch=True))
def test_payment_pans_never_echoed(body: str) -> None:
    pan = body + str(next(d for d in range(10) if luhn_valid(body + str(d))))
    for text in (f"%B{pan}^A/B^2812?;{pan}=2812?\n", f";{pan}", f"%B{pan}^"):
        with pytest.raises(PaymentCardRefused) as caught:
            parse_swipe(text)
        assert pan not in str(caught.value) + repr(caught.value) + repr(caught.value.args)
