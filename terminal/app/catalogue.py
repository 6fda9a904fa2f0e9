"""Everything the till says, in one place: a long form for the LCD and the log, and a short form
written for the customer's pole display, each in Chinese and English.

The pole's short form is two lines written for 20 columns, with a 16-column variant where the
20-column one does not fit; a pole that takes GB2312/GB18030 shows the Chinese form (a Chinese
character is two columns: 10 a line), an ASCII pole the English one, with names in pinyin
(:mod:`terminal.app.pole_text`). Nothing is ever cut to fit: ``tests/app/test_catalogue.py``
renders every message on 20x2 and 16x2 poles of both kinds with the widest values each parameter
takes (:data:`SAMPLES`) and checks the lines are the short form whole.

A parameter in a short form has a width (:data:`WIDTHS`): a longer value (a keyed code, a long
name) is shown by its end, marked with "~" (identifiers), or fitted (names); never the sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from terminal.app.refusal_words import detail_zh
from terminal.app.tier_words import TierName, tier_said
from terminal.drivers.textwidth import fit, text_width

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
POLE_WIDTHS = (20, 16)


class Name(str):
    """A person's or product's name: shown as it is where the pole can, in pinyin where not."""

    __slots__ = ()


@dataclass(frozen=True)
class Message:
    zh: str
    en: str
    pole_zh: str  # "line 1|line 2", written for 20 columns
    pole_en: str
    pole_zh16: str = ""  # the 16-column variant, where the 20-column one is wider
    pole_en16: str = ""

    def pole(self, language: Language, columns: int) -> str:
        narrow = self.pole_zh16 if language == "zh" else self.pole_en16
        if columns < 20 and narrow:
            return narrow
        return self.pole_zh if language == "zh" else self.pole_en


# The widest value each parameter of a short form takes; longer ones are shortened (above).
WIDTHS: dict[str, int] = {
    "card4": 4,
    "amount": 9,
    "total": 9,
    "points": 7,
    "balance": 7,
    "units": 3,
    "count": 4,
    "code": 14,
    "sale": 14,
    "refund": 14,
    "name": 13,
    "tier": 8,
    "label": 10,
    "who": 10,
    "done": 3,
    "number": 2,
    "operator": 4,
    "device": 8,
    "keyed": 16,
    "report": 1,
}
# Shown by their end: the end is what differs between two.
IDENTIFIERS = {"code", "sale", "refund", "keyed"}

# The widest values, for the test that renders every message.
SAMPLES: dict[str, object] = {
    "card4": "3456",
    "amount": "99999.99",
    "total": "99999.99",
    "name_zh": "2x 可口可乐",
    "name_en": "2x Coca-Cola",
    "points": "9999999",
    "units": "999",
    "count": "9999",
    "code": "69012345678920",
    "sale": "S001-T01-R0001",
    "name": Name("王小明 Wang"),
    "label": "Subtotal",
    "label_zh": "小计",
    "who": "cashier",
    "done": "99",
    "number": "99",
    "prompt": "Key your PIN, then Enter",
    "prompt_zh": "请输入密码后按确认",
    "detail": "the reader reported a read error",
    "detail_zh": "读卡器报告读取错误",
    "reason": "tracks disagree",
    "reason_zh": "各磁道不一致",
    "what": "Points adjustment",
    "what_zh": "积分调整",
    "tender": "card",
    "kind": "Refund",
    "day": "2026-03-05",
    "operator": "9999",
    "report": "Z",
    "problem": "printer not connected",
    "problem_zh": "打印机未连接",
    "tier": "Silver",
    "phone4": "5678",
    "balance": "9999999",
    "given": "99999.99",
    "keyed": "99999.99",
    "tender_zh": "银行卡",
    "tender_cap": "Card",
    "kind_zh": "退货",
    "refund": "S001-T01-R0001",
    "discount": " less 99999.99 discount",
    "discount_zh": "，已减会员折扣 99999.99",
    "max": "9999999",
    "deduction": "99999.99",
    "listing": "1 Cola 100pt, 2 Rice 900pt",
}

C = Message
CATALOGUE: dict[str, Message] = {
    # --- the standing prompt of each mode -------------------------------------------------
    "prompt.locked": C(
        "请输入工号后按确认",
        "Key your operator no., then Enter",
        "请输入工号|然后按确认",
        "Key operator no.|then Enter",
    ),
    "prompt.pin": C(
        "请输入密码后按确认（清除键换工号）",
        "Key your PIN, then Enter (Clear = other operator)",
        "请输入密码|然后按确认",
        "Key your PIN,|then Enter",
    ),
    "prompt.ready": C(
        "请刷会员卡，扫描或输入商品",
        "Swipe member card, scan or key an item",
        "请刷会员卡|或扫描商品",
        "Swipe member card|or scan an item",
        pole_en16="Swipe card or|scan an item",
    ),
    "prompt.manager": C(
        "请输入店长工号后按确认（清除键取消）",
        "Manager no., then Enter (Clear cancels)",
        "请输入店长工号|然后按确认",
        "Manager no.,|then Enter",
    ),
    "prompt.manager_pin": C(
        "请输入店长密码后按确认（清除键取消）",
        "Manager PIN, then Enter (Clear cancels)",
        "请店长输入密码|按确认，清除取消",
        "Manager PIN,|then Enter",
    ),
    "prompt.register": C(
        "新卡：输入手机号按确认即注册，清除键放弃",
        "Unknown card: key phone no. + Enter to register, Clear = no",
        "新卡：输入手机号|按确认注册",
        "New card: key|phone no. + Enter",
        pole_en16="New card: key|phone + Enter",
    ),
    "prompt.consent": C(
        "是否同意接收会员关怀短信？按 1 同意，按 0 不同意，再按确认（清除键跳过）",
        "SMS member offers? Key 1 = yes, 0 = no, then Enter (Clear skips)",
        "接收会员关怀短信？|按1同意 按0不同意",
        "Member SMS offers?|1=yes 0=no, Enter",
        pole_zh16="接收关怀短信？|1同意 0不同意",
        pole_en16="SMS offers?|1=yes 0=no+Enter",
    ),
    "prompt.subtotal": C(
        "输入积分按兑换，或付款：现金/银行卡",
        "Key points + Redeem, or pay: Cash / Card",
        "输入积分按兑换|或现金/银行卡",
        "Points + Redeem,|or Cash / Card",
    ),
    "prompt.refund_find": C(
        "退货：扫描小票或输入销售号按确认",
        "Refund: scan receipt or key sale no. + Enter",
        "退货：扫描小票|或输入销售号",
        "Refund: scan the|receipt or sale no.",
        pole_en16="Refund: scan|receipt/sale no.",
    ),
    "prompt.refund_lines": C(
        "确认=整单退，行号+确认=退一行，撤销=撤销整单",
        "Enter = whole sale, line no. + Enter = one line, Void = void sale",
        "确认键整单退货|行号+确认退一行",
        "Enter: whole sale|no.+Enter: one line",
        pole_en16="Enter=whole sale|no.+Enter=a line",
    ),
    "prompt.exchange": C(
        "输入礼品编号按确认（数量：n 数量键）",
        "Key goods no. + Enter (qty: n Quantity)",
        "输入礼品编号|然后按确认",
        "Key goods no.|then Enter",
    ),
    "prompt.adjust": C(
        "输入积分：确认键增加，折扣键扣减",
        "Key points: Enter adds, Discount takes off",
        "输入积分：确认加|折扣键扣减",
        "Key points: Enter|adds, Discount cuts",
        pole_en16="Enter adds pts|Discount cuts",
    ),
    "prompt.confirm_z": C(
        "Z报表将日结：按确认继续",
        "Z report closes the day: Enter to confirm",
        "Z报表将日结|按确认继续",
        "Z report closes|the day: Enter",
    ),
    "prompt.price_check": C(
        "查价：扫描或输入条码按确认",
        "Price check: scan or key code + Enter",
        "查价：请扫描|或输入条码",
        "Price check: scan|or key code + Enter",
        pole_en16="Price check:|scan or key code",
    ),
    # --- refusals of the till's own -------------------------------------------------------
    "action.not_here": C(
        "{label_zh}键在此不可用：{prompt_zh}",
        "{label} does nothing here: {prompt}",
        "此键现在不可用|请看收银屏",
        "{label}:|not now",
        pole_en16="{label}:|not now",
    ),
    "sign_in.first": C(
        "请先登录：{prompt_zh}",
        "Sign in first: {prompt}",
        "请先登录|输入工号按确认",
        "Sign in first:|key operator no.",
    ),
    "not_now": C(
        "现在不能这样操作：{prompt_zh}",
        "Not now: {prompt}",
        "现在不能这样操作|请看收银屏",
        "Not now:|see cashier screen",
        pole_en16="Not now: see|cashier screen",
    ),
    "sign_in.bad_number": C(
        "{detail_zh}：请输入工号后按确认",
        "{detail}: key your operator no., then Enter",
        "工号不对|请重新输入",
        "Operator no. bad:|key it again",
        pole_en16="Bad operator no.|key it again",
    ),
    "sign_in.unknown_operator": C(
        "本机没有工号 {operator}：请输入工号后按确认",
        "Operator {operator} is not known here: key your operator no., then Enter",
        "没有这个工号|请重新输入",
        "Operator unknown:|key your no.",
        pole_en16="Unknown operator|key your no.",
    ),
    "sign_in.operator": C(
        "工号 {operator}：{prompt_zh}",
        "Operator {operator}: {prompt}",
        "工号 {operator}|请输入密码",
        "Operator {operator}|key PIN + Enter",
        pole_en16="Operator {operator}|PIN + Enter",
    ),
    "sign_in.pin_needed": C(
        "工号 {operator}：请输入密码后按确认",
        "Operator {operator}: key your PIN, then Enter",
        "工号 {operator}|请输入密码",
        "Operator {operator}|key your PIN",
    ),
    "sign_in.unlocked": C(
        "工号 {operator} 已解锁：{prompt_zh}",
        "Operator {operator} unlocked: {prompt}",
        "工号 {operator}|已解锁",
        "Operator {operator}|unlocked",
    ),
    "sign_in.done": C(
        "已登录：{who}。{prompt_zh}",
        "Signed in: {who}. {prompt}",
        "已登录|{who}",
        "Signed in|{who}",
    ),
    "sign_out.done": C(
        "已退出。{prompt_zh}",
        "Signed out. {prompt}",
        "已退出|请输入密码",
        "Signed out|Key your PIN",
    ),
    "sign_out.sale_open": C(
        "请先结束或撤销这笔销售再退出",
        "Finish or void the sale before signing out",
        "请先结束或撤销|这笔销售",
        "Finish or void|the sale first",
    ),
    "manager.needed": C(
        "{what_zh}需要店长授权：请店长输入密码后按确认",
        "{what} needs a manager: manager PIN, then Enter",
        "需要店长授权|请店长输入密码",
        "Manager needed:|manager PIN+Enter",
        pole_en16="Manager needed:|PIN + Enter",
    ),
    "manager.not_manager": C(
        "这不是店长密码：{what_zh}未获授权",
        "That is not a manager PIN: {what} not authorised",
        "不是店长密码|未获授权",
        "Not a manager PIN|not authorised",
        pole_en16="No manager PIN:|not authorised",
    ),
    "member.how": C(
        "请刷卡、扫卡，或输入会员号后按会员键",
        "Swipe the card, scan it, or key the member no. then Member",
        "请刷会员卡|或输入会员号",
        "Swipe the card|or key member no.",
        pole_en16="Swipe the card|or key its no.",
    ),
    "member.unreachable": C(
        "卡 ****{card4}：本店没有此会员且总部连不上，可不积分销售或注册",
        "Card ****{card4}: member not known here and HQ unreachable: sell "
        "without points or register",
        "总部连不上|可先不积分销售",
        "HQ unreachable:|sell without pts",
    ),
    "member.unregistered": C(
        "卡 ****{card4} 未注册：输入手机号按确认注册，清除键放弃",
        "Card ****{card4} is not registered: key phone no. + Enter to register, Clear = no",
        "新卡未注册|输入手机号注册",
        "New card ****{card4}|key phone + Enter",
        pole_en16="Card ****{card4}|phone no.+Enter",
    ),
    "member.hq_refused": C(
        "卡 ****{card4}：总部的会员记录不符合当前规则：{detail_zh}",
        "Card ****{card4}: HQ's member record refused: {detail}",
        "会员记录有误|请联系总部",
        "Member record bad|please call HQ",
        pole_en16="Member record|bad: call HQ",
    ),
    "card.frozen": C(
        "卡 ****{card4} 已被总部冻结：{reason}",
        "Card ****{card4} is frozen by HQ: {reason}",
        "此卡已被总部冻结|请看收银屏",
        "Card frozen by HQ|see cashier screen",
        pole_en16="Card frozen|by HQ",
    ),
    "card.retired": C(
        "卡 ****{card4} 已被总部停用（{reason}）：请用会员的新卡",
        "Card ****{card4} is retired by HQ ({reason}): use the member's new card",
        "此卡已停用|请用会员新卡",
        "Card retired:|use the new card",
    ),
    "member.phone_needed": C(
        "请输入顾客手机号后按确认（清除键放弃）",
        "Key the customer's phone no., then Enter (Clear = no)",
        "请输入手机号|然后按确认",
        "Key phone no.|then Enter",
    ),
    "member.welcome": C(
        "注册成功：赠送 {points} 积分",
        "Registered: {points} points welcome bonus",
        "欢迎新会员|积分 {points}",
        "Welcome, new member|Points {points}",
        pole_en16="Welcome, member|Points {points}",
    ),
    "member.welcome_consent": C(
        "注册成功：赠送 {points} 积分。请问顾客是否同意接收会员关怀短信？按 1 同意，按 0 不同意，"
        "再按确认（清除键跳过）",
        "Registered: {points} points welcome bonus. Ask the customer: SMS member offers? "
        "Key 1 = yes, 0 = no, then Enter (Clear skips)",
        "接收会员关怀短信？|按1同意 按0不同意",
        "Member SMS offers?|1=yes 0=no, Enter",
        pole_zh16="接收关怀短信？|1同意 0不同意",
        pole_en16="SMS offers?|1=yes 0=no+Enter",
    ),
    "consent.answer_needed": C(
        "请顾客回答：按 1 同意接收会员关怀短信，按 0 不同意，再按确认（清除键跳过）",
        "The customer's answer: 1 = yes to SMS member offers, 0 = no, then Enter "
        "(Clear skips)",
        "请按1同意|或按0不同意",
        "Key 1 = yes|or 0 = no, Enter",
        pole_en16="Key 1 = yes|or 0 = no",
    ),
    "consent.yes": C(
        "已记录：同意接收会员关怀短信（回复 TD 可随时退订）",
        "Noted: yes to SMS member offers (reply TD to stop any time)",
        "已同意接收短信|回复TD可退订",
        "SMS offers: yes|reply TD to stop",
    ),
    "consent.no": C(
        "已记录：不接收会员关怀短信",
        "Noted: no SMS member offers",
        "已记录：不接收|会员关怀短信",
        "Noted: no SMS|offers will be sent",
        pole_en16="Noted: no SMS|offers",
    ),
    "member.shown": C(
        "{name}：{points} 积分，{tier}",
        "{name}: {points} points, {tier}",
        "{name}|积分 {points}[ {tier}]",
        "Hi {name}|Points {points}[ {tier}]",
    ),
    "member.card": C(
        "会员 ****{card4}：{points} 积分，{tier}",
        "Member ****{card4}: {points} points, {tier}",
        "会员 ****{card4}|积分 {points}[ {tier}]",
        "Member ****{card4}|Points {points}[ {tier}]",
    ),
    "member.by_phone": C(
        "{name}（手机尾号 {phone4}）：{points} 积分，{tier}",
        "{name} (phone ...{phone4}): {points} points, {tier}",
        "会员 ****{card4}|积分 {points}[ {tier}]",
        "Member ****{card4}|Points {points}[ {tier}]",
    ),
    "adjust.sale_open": C(
        "积分调整：请在没有销售进行时刷会员卡",
        "Points adjustment: swipe the member card with no sale in progress",
        "调整积分：请先|结束销售再刷卡",
        "Adjust points:|finish sale first",
        pole_en16="Adjust points:|end the sale",
    ),
    "exchange.subtotal_first": C(
        "请先按小计，再输入积分按兑换",
        "Press Subtotal first, then key points and Redeem",
        "请先按小计|再兑换积分",
        "Press Subtotal|first",
    ),
    "exchange.card_first": C(
        "请先刷会员卡，再兑换礼品",
        "Swipe the member card first, then Redeem for goods",
        "请先刷会员卡|再兑换礼品",
        "Swipe member card|first",
        pole_en16="Swipe the member|card first",
    ),
    "exchange.no_goods": C(
        "当前规则没有可用积分兑换的礼品",
        "The rules offer no goods for points",
        "没有可兑换的|礼品",
        "No goods to|exchange for points",
        pole_en16="No goods to|exchange",
    ),
    "exchange.units": C(
        "{units} 件：请输入礼品编号按确认",
        "{units} unit(s): now the goods no. + Enter",
        "{units} 件|输入礼品编号",
        "{units} unit(s):|key goods no.",
    ),
    "exchange.refused": C(
        "兑换被拒绝：{detail_zh}",
        "Exchange refused: {detail}",
        "兑换被拒绝|请看收银屏",
        "Exchange refused|see cashier screen",
        pole_en16="Exchange refused|see the screen",
    ),
    "exchange.done": C(
        "已用 {points} 积分兑换 {units} 件 {name}",
        "Exchanged {units} x {name} for {points} pts",
        "兑换成功|积分余额 {balance}",
        "Exchanged|Points {balance}",
    ),
    "refund.sale_open": C(
        "请先结束或撤销当前销售再退货",
        "Finish or void the sale in progress before a refund",
        "请先结束当前|销售再退货",
        "Finish the sale|before a refund",
    ),
    "refund.unknown_sale": C(
        "本机没有销售单 {sale}",
        "Sale {sale} is not recorded on this terminal",
        "本机没有|这张销售单",
        "Sale not found|on this till",
    ),
    "refund.units": C(
        "{units} 件：请输入行号按确认",
        "{units} unit(s): now the line no. + Enter",
        "{units} 件|输入行号按确认",
        "{units} unit(s):|key the line no.",
    ),
    "refund.line_needed": C(
        "请输入这些件数的行号后按确认",
        "Key the line no. for those units, then Enter",
        "请输入行号|然后按确认",
        "Key the line no.|then Enter",
    ),
    "refund.found": C(
        "销售单 {sale}，{count} 行，实付 {amount}。{prompt_zh}",
        "Sale {sale}, {count} lines, paid {amount}. {prompt}",
        "共 {count} 行|确认键整单退",
        "{count} lines:|Enter = all",
    ),
    "refund.done": C(
        "{kind_zh} {refund}（销售 {sale}）：退还顾客 {amount} 元",
        "{kind} {refund} of {sale}: {amount} back to the customer",
        "已退款 {amount}|单号 {refund}",
        "Refunded {amount}|No. {refund}",
        pole_en16="Refunded|{amount}",
        pole_zh16="已退款|{amount} 元",
    ),
    "drawer.by_hand": C(
        "请手动打开钱箱：{problem_zh}",
        "Open the drawer by hand: {problem}",
        "请手动打开钱箱|",
        "Open the drawer|by hand",
    ),
    "reprint.none": C(
        "还没有打印过小票",
        "No receipt printed yet to reprint",
        "还没有小票|可重印",
        "No receipt yet|to reprint",
    ),
    "reprint.not_kept": C(
        "没有保存 {sale} 的小票",
        "No receipt kept for {sale}",
        "没有这张小票|无法重印",
        "No receipt kept|{sale}",
    ),
    "reprint.started": C(
        "正在重印 {sale}", "Reprinting {sale}", "正在重印|{sale}", "Reprinting|{sale}"
    ),
    "reprint.kept_done": C(
        "已打印 {done} 张保存的小票",
        "{done} kept receipt(s) printed",
        "已补打小票|{done} 张",
        "Kept receipts|printed: {done}",
    ),
    "printer.problem": C(
        "打印机：{problem_zh}（已打印 {done} 张）",
        "Printer: {problem} ({done} printed)",
        "打印机故障|小票已保存",
        "Printer problem|receipts kept",
    ),
    "printer.kept": C(
        "打印机：{problem_zh}",
        "Printer: {problem}",
        "打印机故障|小票已保存",
        "Printer problem|receipt kept",
    ),
    "sale.code_first": C(
        "请先输入商品条码，再按加入",
        "Key the product code first, then Add",
        "请先输入条码|再按加入",
        "Key the code|then Add",
    ),
    "sale.unknown_product": C(
        "商品 {code} 不在商品目录中",
        "Unknown product {code}: not in the catalogue",
        "没有这个商品|{code}",
        "Unknown product|{code}",
    ),
    "sale.no_department": C(
        "本机没有设置部门 {number}",
        "Department {number} is not set up on this till",
        "没有这个部门|{number}",
        "No department {number}|on this till",
        pole_en16="No department|{number}",
    ),
    "sale.department_amount": C(
        "{detail_zh}，然后按部门键",
        "{detail}, then the department key",
        "请输入金额|再按部门键",
        "Key the amount|then the dept key",
        pole_en16="Key the amount|then Dept key",
    ),
    "sale.nothing_to_change": C(
        "没有可修改的商品：请先加入商品",
        "No item to change: add an item first",
        "没有商品可改|请先加入商品",
        "No item yet:|add an item first",
        pole_en16="No item yet:|add one first",
    ),
    "sale.quantity": C(
        "{detail_zh}；要删除一行请输入行号后按撤销",
        "{detail}; remove a line with its line no. + Void",
        "数量不对|删行：行号+撤销",
        "Bad quantity|line no.+Void",
    ),
    "sale.empty": C("这笔销售还没有商品", "No items in the sale yet", "还没有商品", "No items yet"),
    "redeem.no_member": C(
        "没有会员：兑换积分前请先刷会员卡",
        "No member: swipe the member card before redeeming",
        "请先刷会员卡|再兑换积分",
        "Swipe the member|card to redeem",
    ),
    "tender.cash_short": C(
        "现金 {given} 少于应付 {amount}",
        "Cash {given} is less than the {amount} due",
        "现金不够|应付 {amount}",
        "Cash too little|due {amount}",
    ),
    "tender.clear_keyed": C(
        "{tender_zh}支付应付金额：请先清除输入的 {keyed}",
        "{tender_cap} pays the amount due: clear the keyed {keyed} first",
        "请先清除输入|的金额",
        "Clear the keyed|amount first",
    ),
    "price.found": C(
        "{name}：{amount}（未加入销售）",
        "{name}: {amount} (not added)",
        "{name}|价格 {amount}",
        "{name}|Price {amount}",
    ),
    "price.how": C(
        "请扫描商品或输入条码后按确认",
        "Scan the product or key its code, then Enter",
        "请扫描商品|或输入条码",
        "Scan the product|or key its code",
    ),
    "report.done": C(
        "{report} 报表 {day} 已打印并保存",
        "{report} report for {day} printed and stored",
        "{report} 报表|已打印",
        "{report} report|printed",
    ),
    "void.nothing": C(
        "没有进行中的销售可撤销",
        "Nothing to void: no sale in progress",
        "没有进行中的|销售可撤销",
        "Nothing to void:|no sale yet",
    ),
    "sale.voided": C(
        "已撤销这笔销售。{prompt_zh}",
        "Sale voided. {prompt}",
        "已撤销销售|请刷卡或扫描",
        "Sale voided|scan next item",
    ),
    "quote.shown": C(
        "应付 {amount}{discount_zh}；积分余额 {balance}，最多可用 {max} 积分（{deduction} 元）",
        "Due {amount}{discount}; balance {balance}, up to {max} points "
        "({deduction}) may be redeemed",
        "应付 {amount}|积分 {balance}",
        "Due {amount}|Points {balance}",
    ),
    # A line keyed, scanned or removed: the LCD's words (the pole shows the name and the
    # amount right-aligned, laid out by the till).
    "sale.item": C(
        "{name_zh} {amount}，合计 {total}",
        "{name_en} {amount}, total {total}",
        "{name}|合计 {total}",
        "{name}|TOTAL {total}",
    ),
    "sale.removed": C(
        "已删除 {name_zh} -{amount}，合计 {total}",
        "Removed {name_en} -{amount}, total {total}",
        "删除 {name}|合计 {total}",
        "VOID {name}|TOTAL {total}",
    ),
    "sale.change": C(
        "销售 {sale}：找零 {amount}",
        "Sale {sale}: change {amount}",
        "找零 {amount}|谢谢惠顾",
        "Change {amount}|Thank you",
    ),
    "sale.paid": C(
        "销售 {sale} 已用{tender_zh}支付",
        "Sale {sale} paid by {tender}",
        "已付款|谢谢惠顾",
        "Paid|Thank you",
    ),
    "sale.receipt_kept": C(
        "打印机：{problem_zh}（小票已保存：按重印）",
        "Printer: {problem} (receipt kept: Reprint)",
        "|小票已存:按重印",
        "|Receipt kept:Reprint",
        pole_en16="|Kept: Reprint",
    ),
    "sale.drawer_by_hand": C(
        "请手动打开钱箱：{problem_zh}",
        "Open the drawer by hand: {problem}",
        "|请手动开钱箱",
        "|Drawer by hand",
    ),
    "exchange.listing": C(
        "可兑换：{listing}。{prompt_zh}",
        "{listing}. {prompt}",
        "输入礼品编号|然后按确认",
        "Goods no. + Enter|",
        pole_en16="Goods no.|then Enter",
    ),
    "keyed.echo": C(
        "已输入 {keyed}（{prompt_zh}）", "{prompt}: {keyed}", "请输入|{keyed}", "Keyed:|{keyed}"
    ),
    # --- what the card reader, scanner and printer report --------------------------------
    "swipe.unread": C(
        "读卡失败（{reason_zh}），请重新刷卡",
        "Card not read ({reason}), please swipe again",
        "读卡失败|请重新刷卡",
        "Card not read:|please swipe again",
        pole_en16="Card not read:|swipe again",
    ),
    "swipe.payment_card": C(
        "这是银行卡，不是会员卡：请用会员卡",
        "This is a payment card, not a member card: please use the member card",
        "这是银行卡|请用会员卡",
        "Payment card:|use the member card",
        pole_en16="Payment card:|use member card",
    ),
    "scan.unread": C(
        "条码读取失败（{reason_zh}），请重新扫描",
        "Barcode not read ({reason}), please scan again",
        "条码读取失败|请重新扫描",
        "Barcode not read:|please scan again",
        pole_en16="Barcode unread:|scan again",
    ),
    "storage.full": C(
        "磁盘已满：这笔没有记录。请清理终端空间后再试",
        "Disk full: nothing was recorded. Free space on the terminal, then try again",
        "磁盘已满|未记录，请再试",
        "Disk full: not|recorded, retry",
    ),
    # --- device notices (the pole cannot say it is gone itself: no short form) ------------
    "device.pole.gone": C("顾客显示屏已断开", "Customer display disconnected", "|", "|"),
    "device.pole.back": C(
        "顾客显示屏已恢复",
        "Customer display back",
        "|顾客显示屏已恢复",
        "|Pole display back",
        pole_en16="|Display back",
    ),
    "device.lcd.gone": C("液晶屏已断开", "LCD disconnected", "|液晶屏已断开", "|LCD disconnected"),
    "device.lcd.back": C("液晶屏已恢复", "LCD back", "|液晶屏已恢复", "|LCD back"),
    "device.msr.gone": C(
        "读卡器已断开——请输入会员号",
        "Card reader disconnected — key the member number",
        "|读卡器断开:输号",
        "|Reader off: key no.",
        pole_en16="|Reader off",
    ),
    "device.msr.back": C("读卡器已恢复", "Card reader back", "|读卡器已恢复", "|Card reader back"),
    "device.scanner.gone": C(
        "扫描枪已断开——请输入条码",
        "Scanner disconnected — key the code",
        "|扫描枪断开:输码",
        "|Scanner off: key it",
        pole_en16="|Scanner off",
    ),
    "device.scanner.back": C("扫描枪已恢复", "Scanner back", "|扫描枪已恢复", "|Scanner back"),
    "device.keypad.gone": C(
        "键盘已断开",
        "Keypad disconnected",
        "|键盘已断开",
        "|Keypad disconnected",
        pole_en16="|Keypad off",
    ),
    "device.keypad.back": C("键盘已恢复", "Keypad back", "|键盘已恢复", "|Keypad back"),
    # --- refusals of the points rules, by the rule they name -----------------------------
    "rule.refused": C(
        "不能办理：{detail_zh}",
        "{detail}",
        "不能办理|请看收银屏",
        "Not possible:|see cashier screen",
        pole_en16="Not possible:|see the screen",
    ),
    "rule.balance": C(
        "积分不够：{detail_zh}",
        "{detail}",
        "积分不够",
        "Not enough points",
        pole_en16="Not enough|points",
    ),
    "rule.redeem.min_points": C(
        "低于最少兑换积分：{detail_zh}",
        "{detail}",
        "低于最少|兑换积分",
        "Below the least|points to redeem",
    ),
    "rule.redeem.step_points": C(
        "兑换积分须为整数倍：{detail_zh}",
        "{detail}",
        "兑换积分须为|规定的整数倍",
        "Points must be a|multiple of step",
    ),
    "rule.redeem.max_percent_of_sale": C(
        "超过本单可抵扣上限：{detail_zh}",
        "{detail}",
        "超过本单|抵扣上限",
        "Over this sale's|points limit",
    ),
    "rule.redeem.per_member_per_day": C(
        "超过每日兑换上限：{detail_zh}",
        "{detail}",
        "超过每日|兑换上限",
        "Over today's|points limit",
    ),
    "rule.redeem.offline_allowance": C(
        "总部连不上，超过离线兑换额度：{detail_zh}",
        "{detail}",
        "总部连不上|超过离线额度",
        "HQ offline: over|offline limit",
    ),
    "rule.redeem.goods": C(
        "不是可兑换的礼品：{detail_zh}", "{detail}", "不是可兑换的|礼品", "Not goods for|points"
    ),
    "rule.redeem.goods.per_sale_limit": C(
        "超过每单兑换数量：{detail_zh}",
        "{detail}",
        "超过每单|兑换数量",
        "Over the per-sale|limit",
        pole_en16="Over per-sale|limit",
    ),
    "rule.redeem.goods.per_member_limit": C(
        "超过每位会员兑换数量：{detail_zh}",
        "{detail}",
        "超过会员|兑换数量",
        "Over the member's|limit",
        pole_en16="Over member's|limit",
    ),
    "rule.refund": C(
        "这笔已全部退货：{detail_zh}", "{detail}", "这笔已全部|退货", "Already fully|refunded"
    ),
    "rule.refund.lines.sku": C(
        "这件商品不在该销售单：{detail_zh}",
        "{detail}",
        "商品不在|该销售单",
        "Item not on|that sale",
    ),
    "rule.refund.lines.qty": C(
        "退货数量超过可退数量：{detail_zh}",
        "{detail}",
        "退货数量|超过可退数量",
        "More than is left|to refund",
        pole_en16="More than left|to refund",
    ),
    "rule.card": C(
        "卡号不对：{detail_zh}",
        "{detail}",
        "卡号不对|请重刷或重输",
        "Card no. not valid|swipe or key again",
        pole_en16="Bad card no.:|swipe again",
    ),
    "rule.input": C(
        "输入不对：{detail_zh}",
        "{detail}",
        "输入不对|请看收银屏",
        "Input not valid:|see cashier screen",
        pole_en16="Input not valid|see the screen",
    ),
    "rule.sign_in.pin": C(
        "密码不对：{detail_zh}",
        "{detail}",
        "密码不对|请重新输入",
        "PIN not known:|key it again",
    ),
    "rule.sign_in.lockout": C(
        "工号已锁定：{detail_zh}",
        "{detail}",
        "工号已锁定|请等待或找店长",
        "Operator locked:|ask a manager",
    ),
    "rule.sign_in.number": C(
        "没有这个工号：{detail_zh}",
        "{detail}",
        "没有这个工号|请重新输入",
        "Operator unknown:|key your no.",
        pole_en16="Unknown operator|key your no.",
    ),
    "rule.card.blocked": C(
        "此卡不能积分或兑换：{detail_zh}",
        "{detail}",
        "此卡已被冻结|请不用卡结账",
        "Card blocked:|sell without card",
        pole_en16="Card blocked:|sell without it",
    ),
    "rule.report.z": C(
        "今天的Z报表已打印过：{detail_zh}",
        "{detail}",
        "今日Z报表|已打印过",
        "Z report already|printed today",
    ),
    "rule.sale.hold": C(
        "总部的积分冻结与本单不符：{detail_zh}",
        "{detail}",
        "积分冻结不符|请重新兑换",
        "Points hold stale|redeem again",
        pole_en16="Points hold old:|redeem again",
    ),
    "rule.hq": C(
        "总部拒绝：{detail_zh}",
        "{detail}",
        "总部拒绝了|请看收银屏",
        "HQ refused:|see cashier screen",
        pole_en16="HQ refused:|see the screen",
    ),
    "rule.redeem": C(
        "现在不能兑换这么多积分：{detail_zh}",
        "{detail}",
        "现在不能兑换|这么多积分",
        "Cannot redeem|that many points",
        pole_en16="Cannot redeem|that many",
    ),
}

# Receipt, screen and pole labels (a word, not a sentence: laid out beside an amount).
LABELS: dict[str, tuple[str, str]] = {
    "TOTAL": ("合计", "TOTAL"),
    "SUBTOTAL": ("小计", "SUBTOTAL"),
    "DUE": ("应付", "DUE"),
    "PRICE": ("价格", "PRICE"),
    "CHANGE": ("找零", "CHANGE"),
    "PAID": ("已付", "PAID"),
    "REFUND": ("退款", "REFUND"),
    "THANKS": ("谢谢惠顾", "Thank you"),
    "POINTS": ("积分", "Points"),
    "PT": ("分", "pt"),
    "MAX": ("最多", "max"),
    "SALES": ("笔", "sales"),
    "VOID": ("删除", "VOID"),
    "MEMBER": ("会员", "Member"),
}

WHAT: dict[str, str] = {
    "Points adjustment": "积分调整",
    "Phone lookup": "手机号查询",
    "X report": "X报表",
    "Z report": "Z报表",
    "Refund": "退货",
    "Reprint": "重印",
    "Void sale": "撤销销售",
}
TENDERS_ZH = {"cash": "现金", "card": "银行卡", "other": "其他方式"}
# The keypad's actions (terminal.drivers.keymap) as a Chinese message names their keys.
KEYS_ZH = {
    "enter": "确认", "backspace": "退格", "clear": "清除", "add": "加入", "discount": "折扣",
    "quantity": "数量", "price_check": "查价", "member": "会员", "subtotal": "小计",
    "cash": "现金", "card": "银行卡", "redeem": "兑换", "void": "撤销", "refund": "退货",
    "reprint": "重印", "sign_in_out": "登录/退出", "balance": "余额", "decimal_point": "小数点",
    "other_tender": "其他付款",
}


def key_zh(action: str) -> str:
    """The key of keypad ``action`` in Chinese (a department's by its number); an action a
    keymap named otherwise by its own name."""
    department = re.fullmatch(r"department_(\d+)", action)
    if department:
        return f"部门{department.group(1)}"
    return KEYS_ZH.get(action, action)
REFUND_KINDS = {"refund": ("退货", "Refund"), "void": ("撤销", "Void")}


@dataclass(frozen=True)
class Said:
    """One message with its values: ``long`` for the LCD and log, ``pole`` for the pole."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    @property
    def message(self) -> Message:
        return CATALOGUE[self.key]

    def long(self, language: Language) -> str:
        template = self.message.zh if language == "zh" else self.message.en
        return template.format_map(_Values(self.params, None, language))

    def pole(
        self, language: Language, columns: int, show_name: NameShower = str
    ) -> tuple[str, str]:
        """The two pole lines; ``show_name`` shows a :class:`Name` as the pole can (pinyin)."""
        template = self.message.pole(language, columns)
        values = _Values(self.params, show_name, language)
        first, _, second = template.partition("|")
        return _line(first, values, columns), _line(second, values, columns)


NameShower = Callable[[str], str]
_OPTIONAL = re.compile(r"\[([^\]]*)\]")


def _line(template: str, values: _Values, columns: int) -> str:
    """One pole line; a part in [brackets] is shown whole where it fits, else left out."""
    whole = _OPTIONAL.sub(r"\1", template).format_map(values).strip()
    if text_width(whole) <= columns or not _OPTIONAL.search(template):
        return whole
    return _OPTIONAL.sub("", template).format_map(values).strip()


class _Values(dict[str, object]):
    """Template values in ``language`` (a :class:`TierName` said in it); on the pole
    (``shower`` given) each is held to its width."""

    def __init__(self, params: Mapping[str, object], shower: NameShower | None,
                 language: Language) -> None:
        super().__init__(params)
        self.shower = shower
        self.language = language

    def __getitem__(self, key: str) -> object:
        value = super().__getitem__(key)
        if isinstance(value, TierName):
            value = tier_said(value, self.language)
        if self.shower is None:
            return value
        text = self.shower(value) if isinstance(value, Name) else str(value)
        width = WIDTHS.get(key)
        if width is None or text_width(text) <= width:
            return text
        if key in IDENTIFIERS:
            return "~" + text[-(width - 1) :]
        return fit(text, width).rstrip()

    def __missing__(self, key: str) -> object:
        raise KeyError(f"message value {key!r} was not given")


def what_zh(what: str) -> str:
    """What a manager is asked to authorise, in Chinese ("Unlock operator 7" -> "解锁工号 7")."""
    if what.startswith("Unlock operator "):
        return f"解锁工号 {what.removeprefix('Unlock operator ')}"
    return WHAT[what]


# What the printer and the drawer report (drivers/printer.py, drivers/drawer.py), in Chinese.
_PROBLEMS_ZH = (
    ("printer not connected", "打印机未连接"),
    ("printer offline", "打印机离线"),
    ("out of paper", "打印机缺纸"),
    ("printer unplugged or off", "打印机被拔出或关闭"),
    ("receipt kept, reprint when fixed", "小票已保存，修好后重印"),
    ("drawer not kicked, the printer is unreachable", "钱箱未弹开，打印机连不上"),
    ("no cash drawer is configured", "没有配置钱箱"),
)


def problem_text(text: str) -> dict[str, str]:
    """A device's problem as the ``problem`` and ``problem_zh`` values of a message: the
    driver's own English, and its Chinese where the phrase is known (else the English)."""
    chinese = text
    for english, zh in _PROBLEMS_ZH:
        chinese = chinese.replace(english, zh)
    return {"problem": text, "problem_zh": chinese.replace(": ", "：")}


def said(key: str, **params: object) -> Said:
    if key not in CATALOGUE:
        raise KeyError(f"no message {key!r} in the catalogue")
    return Said(key, params)


def prompt(mode: str) -> Said:
    return said(f"prompt.{mode}")


def with_prompt(key: str, mode: str, **params: object) -> Said:
    """A message that ends with the mode's standing prompt, in both languages."""
    standing = prompt(mode)
    return said(key, prompt=standing.long("en"), prompt_zh=standing.long("zh"), **params)


_RULE_PREFIXES = (
    "redeem.goods.per_member_limit",
    "redeem.goods.per_sale_limit",
    "redeem.goods",
    "redeem.min_points",
    "redeem.step_points",
    "redeem.max_percent_of_sale",
    "redeem.per_member_per_day",
    "redeem.offline_allowance",
    "refund.lines.sku",
    "refund.lines.qty",
    "sign_in.pin",
    "sign_in.lockout",
    "sign_in.number",
    "card.blocked",
    "report.z",
    "sale.hold",
    "balance",
    "card",
    "redeem",
)


def refusal_facts(detail: str, rule: str = "",
                  values: Mapping[str, object] | None = None) -> dict[str, str]:
    """A refusal's facts as a message's ``detail`` (its own exact English words) and
    ``detail_zh`` (the same facts in Chinese where its words and values are known, else that
    English: terminal.app.refusal_words)."""
    return {"detail": detail, "detail_zh": detail_zh(detail, rule, values or {})}


def refusal(detail: str, rule: str = "", values: Mapping[str, object] | None = None) -> Said:
    """A refusal of the points rules (``Refused``), by the rule it names. Its own exact text
    (with the numbers) is the English long form; the Chinese one says the same facts in
    Chinese where the rule's ``values`` are known (terminal.app.refusal_words), else it is followed
    by that English."""
    if rule == "storage.full":
        return said("storage.full")
    facts = refusal_facts(detail, rule, values)
    if rule == "refund":
        return said("rule.refund", **facts)
    if rule.startswith("hq"):
        return said("rule.hq", **facts)
    for known in _RULE_PREFIXES:
        if rule == known or rule.startswith(known + "."):
            return said(f"rule.{known}", **facts)
    if rule:
        return said("rule.input", **facts)
    return said("rule.refused", **facts)
