"""Every message the till can say, on 20x2 and 16x2 poles of both kinds: it fits, and what shows
is the message's short form written for that pole, never the long form cut to fit."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from terminal.app.catalogue import (
    CATALOGUE,
    LABELS,
    POLE_WIDTHS,
    SAMPLES,
    WIDTHS,
    Said,
    problem_text,
    refusal,
    said,
)
from terminal.app.pole_text import latin_name, name_for, pinyin, pole_language
from terminal.drivers.pole import PoleConfig, PoleDecoder, encode_lines
from terminal.drivers.textwidth import align, text_width

from .conftest import TillBench, check_golden

POLES = [(charset, columns) for charset in ("ascii", "gb18030") for columns in POLE_WIDTHS]
FIELDS = re.compile(r"{(\w+)}")


# Words a whole message never ends on: "please use the", "Refund needs a" were cut sentences.
DANGLING_EN = {"the", "a", "an", "to", "or", "and", "of", "for", "with", "by", "please", "use",
               "needs", "is", "then", "your", "not"}
DANGLING_ZH = "的和或与请把在是了：，"


def cut_mid_sentence(lines: tuple[str, str], language: str) -> bool:
    """Whether a pole's lines end (or a first line ends) where no sentence can."""
    text = [line for line in lines if line]
    if not text:
        return False
    if language == "zh":
        return text[-1][-1] in DANGLING_ZH
    last = text[-1].rstrip(".").split()[-1].lower()
    return last in DANGLING_EN or text[-1].endswith((",", "-"))


def test_the_cut_sentences_of_the_issue_are_caught() -> None:
    assert cut_mid_sentence(("This is a payment", "please use the"), "en")
    assert cut_mid_sentence(("Refund needs a", ""), "en")
    assert cut_mid_sentence(("刷卡后请", ""), "zh")
    assert not cut_mid_sentence(("Payment card:", "use the member card"), "en")


def sample(key: str) -> Said:
    message = CATALOGUE[key]
    names = {f for text in (message.zh, message.en, message.pole_zh, message.pole_en,
                            message.pole_zh16, message.pole_en16) for f in FIELDS.findall(text)}
    return said(key, **{name: SAMPLES[name] for name in names})


def on_pole(what: Said, charset: str, columns: int) -> tuple[str, str]:
    """What a pole of that kind shows, decoded from the bytes the driver sends it."""
    config = PoleConfig(columns=columns, charset=charset)
    language = pole_language(charset)
    lines = what.pole(language, columns, name_for(language))
    decoder = PoleDecoder(columns, charset=charset)
    decoder.feed(encode_lines(*lines, config))
    assert decoder.unknown == [], decoder.unknown
    return decoder.lines


def test_every_parameter_of_a_short_form_has_a_width_and_every_one_a_sample() -> None:
    for key, message in CATALOGUE.items():
        for text in (message.zh, message.en, message.pole_zh, message.pole_en):
            for name in FIELDS.findall(text):
                assert name in SAMPLES, f"{key}: no sample value for {{{name}}}"
        for text in (message.pole_zh, message.pole_en, message.pole_zh16, message.pole_en16):
            for name in FIELDS.findall(text):
                assert name in WIDTHS, f"{key}: {{{name}}} on the pole has no width"


@pytest.mark.parametrize(("charset", "columns"), POLES)
def test_every_message_fits_the_pole_as_its_short_form(charset: str, columns: int) -> None:
    language = pole_language(charset)
    for key in CATALOGUE:
        what = sample(key)
        expected = what.pole(language, columns, name_for(language))
        shown = on_pole(what, charset, columns)
        for line in expected:
            assert text_width(line) <= columns, f"{key} on {columns} columns: {line!r}"
        # Exactly the short form, whole: nothing was cut by the driver to make it fit.
        assert shown == expected, f"{key}: {shown} is not {expected}"
        assert not cut_mid_sentence(shown, language), f"{key} stops mid-sentence: {shown}"
        if language == "en":
            assert all(c in string.printable for c in "".join(shown)), (key, shown)


def test_the_chinese_and_english_forms_say_the_same_things() -> None:
    chinese_only = {"prompt_zh", "what_zh", "tender_zh", "kind_zh", "discount_zh", "problem_zh"}
    english_only = {"prompt", "what", "tender", "kind", "discount", "problem", "tender_cap"}
    # a refusal's facts, a device's reason and a key's name said in Chinese
    in_chinese = {"detail_zh": "detail", "reason_zh": "reason", "label_zh": "label",
                  "name_zh": "name_en"}  # and a bilingual name's Chinese words
    for key, message in CATALOGUE.items():
        chinese = {in_chinese.get(name, name) for name in FIELDS.findall(message.zh)}
        assert chinese - chinese_only == set(FIELDS.findall(message.en)) - english_only, key
        assert any("\u4e00" <= c <= "\u9fff" for c in message.zh), f"{key}: zh is not Chinese"
    for zh, en in LABELS.values():
        assert text_width(zh) <= 8 and text_width(en) <= 9


def test_a_value_too_wide_is_shortened_never_the_sentence() -> None:
    long_code = said("sale.unknown_product", code="12345678901234567890")
    assert long_code.pole("en", 16, str) == ("Unknown product", "~8901234567890")
    assert long_code.long("en") == "Unknown product 12345678901234567890: not in the catalogue"


def test_names_on_an_ascii_pole_are_pinyin_or_their_latin_words() -> None:
    assert latin_name("草莓 Strawberries") == "Strawberries"
    assert pinyin("牛奶") == "NiuNai"
    show = name_for("en")
    assert show("牛奶") == "NiuNai" and show("可口可乐 Coca-Cola 330ml") == "Coca-Cola 330ml"
    assert name_for("zh")("牛奶") == "牛奶" and name_for("zh")("草莓 Strawberries") == "草莓"
    assert on_pole(said("price.found", name=SAMPLES["name"].__class__("牛奶"), amount="3.50"),
                   "ascii", 20) == ("NiuNai", "Price 3.50")


def test_pole_frames_golden() -> None:
    """Every message as the customer sees it, on each pole: a file a person can read."""
    frames = []
    for charset, columns in POLES:
        for key in CATALOGUE:
            first, second = on_pole(sample(key), charset, columns)
            frames.append(f"{charset:7} {columns} {key:34} |{align(first, columns)}|"
                          f"{align(second, columns)}|")
    check_golden("pole_frames.txt", "\n".join(frames) + "\n")


def test_the_app_says_only_what_the_catalogue_holds() -> None:
    """No sentence for the cashier is written outside the catalogue: the till's modules pass
    catalogue keys to say() and refuse(), never text."""
    app = Path(__file__).parents[2] / "terminal" / "app"
    for module in app.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        for call in re.findall(r"\.(?:say|refuse)\(\s*([^)]{0,40})", text):
            assert not call.startswith(("\"", "f\"", "'")), f"{module.name}: {call}"
        for key in re.findall(r"said\(\"([\w.]+)\"", text):
            assert key in CATALOGUE, f"{module.name}: {key}"


def test_a_chinese_pole_speaks_chinese_and_an_ascii_one_pinyin(tmp_path: Path,
                                                                examples: Path) -> None:
    (tmp_path / "gb").mkdir()
    (tmp_path / "ascii").mkdir()
    chinese = TillBench(tmp_path / "gb", examples, {"pole": {"backend": "pty",
                                                             "charset": "gb18030"}})
    ascii_pole = TillBench(tmp_path / "ascii", examples, {"pole": {"backend": "pty",
                                                                   "columns": 16}})
    try:
        for bench in (chinese, ascii_pole):
            bench.do("1 enter 1234 enter", "s", "b 6900000000014")
        assert chinese.pole == ("草莓           12.50", "合计           12.50")
        assert ascii_pole.pole == ("Strawberri 12.50", "TOTAL      12.50")
        for bench in (chinese, ascii_pole):
            bench.do("t %B4111111111111111^TEST/CARD^2812101?")
        assert chinese.pole == ("这是银行卡", "请用会员卡")
        assert ascii_pole.pole == ("Payment card:", "use member card")
    finally:
        chinese.close()
        ascii_pole.close()


def test_an_optional_part_is_left_out_whole_where_it_does_not_fit() -> None:
    member = said("member.card", card4="3456", points=1100, tier="diamond")
    assert member.pole("en", 20) == ("Member ****3456", "Points 1100 diamond")
    assert member.pole("en", 16) == ("Member ****3456", "Points 1100")


def test_a_device_s_problem_is_said_in_chinese_too() -> None:
    what = said("printer.kept", **problem_text("out of paper: receipt kept, reprint when fixed"))
    assert what.long("zh") == "打印机：打印机缺纸：小票已保存，修好后重印"
    assert what.long("en") == "Printer: out of paper: receipt kept, reprint when fixed"
    unknown = said("drawer.by_hand", **problem_text("pin 5 shorted"))
    assert unknown.long("zh") == "请手动打开钱箱：pin 5 shorted"  # the driver's words as they are


@pytest.mark.parametrize(("rule", "key"), [
    ("card.blocked", "rule.card.blocked"), ("card", "rule.card"),
    ("redeem.goods.per_sale_limit", "rule.redeem.goods.per_sale_limit"),
    ("redeem", "rule.redeem"), ("report.z", "rule.report.z"), ("hq.hold", "rule.hq"),
    ("storage.full", "storage.full"), ("register.phone", "rule.input"), ("", "rule.refused"),
])
def test_a_refusal_is_said_by_the_rule_it_names(rule: str, key: str) -> None:
    what = refusal("the engine's exact words (12 points)", rule)
    assert what.key == key
    if key != "storage.full":
        assert what.long("en") == "the engine's exact words (12 points)"  # numbers kept
