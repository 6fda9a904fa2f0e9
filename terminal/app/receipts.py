"""Receipts and reports as documents (``terminal.drivers.document``): built here, printed by
``printing.ReceiptDesk``. Chinese first, English after, as the chain's receipts are read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from terminal.app.pole_text import chinese_name
from terminal.app.tier_words import tier_both, tier_zh
from terminal.drivers.document import Document
from terminal.loyalty.earning import EarnSteps
from terminal.loyalty.money import yuan
from terminal.loyalty.operations import (
    ExchangeResult,
    MemberView,
    RefundResult,
    SaleRequest,
    SaleResult,
)

# Code 128: a sale id (S001-T01-0001) at two dots a module is 356 dots wide, inside a 58 mm
# printer's 384; in Code 39 it is 390 to 480 (by the wide:narrow ratio), and a printer drops a
# barcode that overflows.
SALE_ID_SYMBOLOGY = "CODE128"

# A receipt number fit for Code 128 on 58 mm paper (S001-T01-R0001 is 14 characters).
_SCANNABLE = re.compile(r"[0-9A-Za-z-]{1,16}")

TENDER_NAMES = {"cash": "现金 Cash", "card": "银行卡 Card", "other": "其他 Other"}


@dataclass(frozen=True)
class Header:
    """Who printed the receipt, where and when."""

    programme: str
    store: str
    terminal: str
    operator: str  # the name the operator is greeted by (their id when none is set)
    at: datetime


def _header(doc: Document, head: Header, what: str) -> Document:
    doc.title(head.programme)
    doc.line(f"门店 {head.store}  终端 {head.terminal}", "center")
    doc.line(what, "center")
    doc.line(f"{head.at:%Y-%m-%d %H:%M}  收银 {head.operator}", "center")
    return doc.separator()


def _member_block(doc: Document, view: MemberView) -> None:
    doc.line(f"会员 Member {view.name or ''} ****{view.card_last4}".replace("  ", " "))
    doc.columns("积分余额 Balance", f"{view.balance}")
    if view.debt:
        doc.columns("欠分 Owed", f"{view.debt}")
    doc.columns("等级 Tier", tier_both(view.tier), weights=(2, 3))  # 钻石会员 diamond: 16
    if view.next_tier is not None and view.spend_to_next_fen is not None:
        doc.line(f"再消费 {yuan(view.spend_to_next_fen)} 元升级{tier_zh(view.next_tier)}")
        doc.line(f"Spend {yuan(view.spend_to_next_fen)} more for {view.next_tier}")
    for soon in view.expiring:
        doc.line(f"{soon.points} 积分将于 {soon.expires_at:%Y-%m-%d} 到期")
        doc.line(f"{soon.points} points expire on {soon.expires_at:%Y-%m-%d}")


def sale_receipt(head: Header, req: SaleRequest, result: SaleResult, tendered_fen: int,
                 change_fen: int) -> Document:
    doc = _header(Document(), head, f"销售 {result.id}")
    doc.columns("商品 Item", "数量", "金额")
    for line in req.lines:
        doc.columns(line.name or line.sku, str(line.qty), yuan(line.list_fen))
    doc.separator("=")
    doc.columns("合计 Total", yuan(result.list_fen))
    if result.discount_fen:
        tier = tier_zh(result.member.tier) if result.member else ""
        doc.columns(f"会员折扣 Discount {tier}", f"-{yuan(result.discount_fen)}")
    if result.deduction_fen:
        doc.columns(f"积分抵扣 {result.points_redeemed} pts", f"-{yuan(result.deduction_fen)}")
    doc.columns("应付 Due", yuan(result.paid_fen))
    doc.columns(TENDER_NAMES[req.tender], yuan(tendered_fen))
    if req.tender == "cash":
        doc.columns("找零 Change", yuan(change_fen))
    if result.member is not None:
        doc.separator()
        doc.columns("本次积分 Earned", f"+{result.points_earned}")
        if result.earned is not None:
            explain_points(doc, result.earned)
        else:
            doc.line("本单未达积分门槛 This sale is below the minimum for points")
        if result.birthday:
            doc.line("生日快乐 Happy birthday!")
        if result.points_redeemed:
            doc.columns("使用积分 Redeemed", f"-{result.points_redeemed}")
        _member_block(doc, result.member)
    doc.separator()
    doc.line("退货扫码 Scan for refunds", "center")
    doc.barcode(result.id, SALE_ID_SYMBOLOGY)
    return doc.feed(2).cut()


_ROUNDING = {"floor": "舍去小数 Rounded down", "ceil": "小数进位 Rounded up",
             "round": "四舍五入 Rounded"}
_MULTIPLIER = {"tier": "会员等级 Tier", "promotion": "促销 Promotion", "birthday": "生日 Birthday"}
_CAPS = {"per_sale": "每单上限 Cap per sale", "per_member_per_day": "每日上限 Daily cap"}


def number(value: Fraction) -> str:
    """An exact number as a person reads it: 2.15, 362.064, 3. Only one whose decimals never
    end (1/3) is shown to three places, marked "~"; the points are rounded once, from the exact
    total, as the receipt says."""
    if value.denominator == 1:
        return str(value.numerator)
    denominator, places = value.denominator, 0
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"~{float(value):.3f}"
    while (value * 10**places).denominator != 1:
        places += 1
    scaled = value * 10**places
    whole, rest = divmod(scaled.numerator, 10**places)
    return f"{whole}.{rest:0{places}d}"


def explain_points(doc: Document, steps: EarnSteps) -> None:
    """How the points were earned, in words, from the very numbers they were computed from:
    each line's amount times its category's multiplier, the sale's multipliers (tier,
    promotion, birthday), the one rounding, the fixed bonus, a cap."""
    rate = number(steps.points_per_yuan)
    paid = steps.basis == "paid"
    doc.line("积分计算 How the points add up")
    doc.line(f"{'实付' if paid else '原价'}每元 {rate} 分，乘以品类倍数")
    doc.line(f"{rate} pt per yuan {'paid' if paid else 'at list price'}, times the item's "
             "multiplier")
    for line in steps.lines:
        name = chinese_name(line.name) if line.name else line.sku
        if line.excluded:
            doc.columns(f"{name} 不积分 no points", "0")
            continue
        doc.columns(name, f"{yuan(line.amount_fen)}x{number(line.multiplier)}",
                    number(line.points), weights=(3, 2, 1))
    base = sum((line.points for line in steps.lines), Fraction(0))
    if steps.multipliers:
        doc.columns("积分小计 Subtotal", number(base), weights=(2, 1))
        for kind, name, times in steps.multipliers:
            if kind == "promotion":  # a promotion's name is long: a line of its own
                doc.line(f"{_MULTIPLIER[kind]}: {name}")
                doc.columns("  倍数 times", f"x{number(times)}")
            else:  # a tier by its Chinese word (the English one would not fit beside it)
                shown = tier_zh(name) if kind == "tier" else name
                doc.columns(f"{_MULTIPLIER[kind]} {shown}".rstrip(), f"x{number(times)}")
    doc.columns("积分合计 Points", number(steps.total), weights=(2, 1))
    if steps.total != steps.rounded:
        doc.columns(_ROUNDING[steps.rounding], str(steps.rounded))
    if steps.fixed:
        doc.columns("指定商品奖励 Bonus items", f"+{steps.fixed}")
    if steps.cap is not None:
        doc.columns(_CAPS[steps.cap[0]], str(steps.cap[1]))


def refund_receipt(head: Header, result: RefundResult, names: dict[str, str]) -> Document:
    what = "撤销 Void" if result.kind == "void" else "退货 Refund"
    doc = _header(Document(), head, f"{what} {result.id}")
    doc.line(f"原销售 Sale {result.sale}")
    for sku, qty, fen in result.lines:
        doc.columns(names.get(sku) or sku, str(qty), f"-{yuan(fen)}")
    doc.separator("=")
    doc.columns("退款 Refunded", yuan(result.refunded_fen))
    if result.member is not None:
        if result.points_reversed:
            doc.columns("扣回积分 Reversed", f"-{result.points_reversed}")
        if result.points_restored:
            doc.columns("退回积分 Returned", f"+{result.points_restored}")
        _member_block(doc, result.member)
    if _SCANNABLE.fullmatch(result.id):  # refunds before numbering carry a UUID: no barcode
        doc.separator()
        doc.line("撤销单号 Void no." if result.kind == "void" else "退货单号 Refund no.", "center")
        doc.barcode(result.id, SALE_ID_SYMBOLOGY)
    return doc.feed(2).cut()


def exchange_receipt(head: Header, result: ExchangeResult) -> Document:
    doc = _header(Document(), head, "积分兑换 Exchange")
    doc.columns(result.name, str(result.qty), f"-{result.points} pts")
    doc.separator()
    _member_block(doc, result.member)
    return doc.feed(2).cut()


def statement_receipt(head: Header, statement: dict[str, Any], last: int = 8) -> Document:
    view: MemberView = statement["member"]
    doc = _header(Document(), head, "积分明细 Statement")
    _member_block(doc, view)
    doc.separator()
    for entry in statement["entries"][-last:]:
        doc.columns(f"{entry['time'][:10]} {entry['kind']}", f"{entry['points']:+d}")
    return doc.feed(2).cut()


def adjustment_receipt(head: Header, view: MemberView, points: int) -> Document:
    doc = _header(Document(), head, "积分调整 Adjustment")
    doc.columns("调整 Adjusted", f"{points:+d}")
    _member_block(doc, view)
    return doc.feed(2).cut()


def report_receipt(head: Header, kind: str, body: dict[str, Any]) -> Document:
    title = "日结 Z report (day closed)" if kind == "Z" else "读数 X report"
    doc = _header(Document(), head, title)
    sales, refunds, points = body["sales"], body["refunds"], body["points"]
    doc.line(f"营业日 Day {body['day']}")
    doc.columns("销售笔数 Sales", str(sales["count"]))
    doc.columns("原价 List", yuan(sales["list_fen"]))
    doc.columns("折扣 Discounts", yuan(sales["discount_fen"]))
    doc.columns("积分抵扣 Deductions", yuan(sales["deduction_fen"]))
    doc.columns("实收 Paid", yuan(sales["paid_fen"]))
    doc.columns(f"退货 Refunds ({refunds['count']})", yuan(refunds["refunded_fen"]))
    doc.separator()
    for key, label in (("issued", "发放 Issued"), ("redeemed", "使用 Redeemed"),
                       ("expired", "过期 Expired"), ("reversed", "扣回 Reversed"),
                       ("restored", "退回 Restored"), ("adjusted", "调整 Adjusted")):
        doc.columns(f"积分{label}", str(points[key]))
    doc.columns("积分负债 Liability", f"{body['liability_points']} pts")
    doc.columns("", yuan(body["liability_fen"]))
    return doc.feed(2).cut()


def reprint(lines: list[str], receipt_id: str) -> Document:
    """An archived receipt again, line for line as first printed, marked as a copy."""
    doc = Document().line("*** 重印 COPY ***", "center", bold=True)
    skip = {f"|||| {receipt_id} ||||", "- - - cut - - -"}
    for text in lines:
        if text.strip() not in skip:  # the barcode is printed again as a real one below
            doc.line(text)
    if receipt_id.isascii() and receipt_id.isprintable():
        doc.barcode(receipt_id, SALE_ID_SYMBOLOGY)
    return doc.feed(2).cut()
