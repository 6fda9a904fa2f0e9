"""A refusal's facts in Chinese, for a Chinese LCD: the engine's, the till's own and HQ's.

A refusal (``terminal.core.refusal.Refused``) carries its English words (the English LCD and
the log keep them exactly) and the values they name. Its Chinese words are chosen by ``why``
among those values where a rule refuses in more than one way, else by the rule; a refusal with
no words here, or without the values its words need, is followed by its English as before.

HQ's refusal of a hold reaches the till as HQ's English sentence with its code and values
(terminal.protocol.hq_refusals); :data:`HQ_ZH` words each code. A refusal without a code (an
HQ before codes) or with a code not known here keeps HQ's English sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from terminal.loyalty.money import yuan

Words = Callable[[Mapping[str, object]], str]

# What a number keyed at the till is for (terminal.app.keyed's ``what``), in Chinese.
KEYED_ZH = {
    "amount": "金额",
    "cash tendered": "收款金额",
    "quantity": "数量",
    "units": "退货件数",
    "line no.": "行号",
    "operator no.": "工号",
    "sale no.": "销售单号",
    "refund no.": "退货单号",
    "goods no.": "礼品序号",
    "points": "积分",
}

# Refusals whose words name no value, by why.
FIXED_ZH = {
    "swipe.no_track": "没有读到磁道",
    "swipe.damaged": "磁道损坏或不完整",
    "swipe.read_error": "读卡器报告读取错误",
    "swipe.empty": "磁道是空的",
    "swipe.disagree": "各磁道不一致",
    "swipe.no_number": "磁道上没有卡号",
    "swipe.damaged_3": "第 3 磁道损坏",
    "scan.empty": "没有扫到内容",
    "scan.too_long": "条码太长",
    "scan.unreadable": "有无法识别的字符",
    "card.missing": "没有卡号",
    "card.form": "卡号为 4 到 32 位字母或数字",
    "phone.form": "手机号为 5 到 15 位数字，前面可有 +",
    "consent.address": "短信订阅须用会员登记的手机号",
    "void.empty": "这笔销售没有可删除的行",
    "sale.lines.none": "这笔销售没有商品",
    "sale.card": "没有会员的销售不能兑换积分",
    "refund.lines": "退货没有指明商品",
    "adjust.reason": "调整须写明原因",
    "adjust.operator": "调整须写明操作员",
    "sign_in.key": "密码密钥不是设置本机操作员时所用的：请恢复该密钥，或重新设置每位操作员的密码",
}


def _yuan(fen: object) -> str:
    return yuan(fen) if isinstance(fen, int) else str(fen)


def _keyed(what: object) -> str:
    return KEYED_ZH[str(what)]


def _card(v: Mapping[str, object]) -> str:
    """A card as the engine names it: its whole number when short, else by its last digits."""
    return f"卡 {v['card']} " if "card" in v else f"尾号 {v['last4']} 的卡"


_HQ_STATES_ZH = {"frozen": "冻结", "retired": "停用", "posted": "入账", "voided": "作废",
                 "expired": "过期", "pending": "待结"}

# HQ's refusals by their code (terminal.protocol.hq_refusals: HQ's one table of codes, with
# its English), each said from the values HQ sent with it.
HQ_ZH: dict[str, str | Words] = {
    "member.form": "会员须以卡号摘要指明",
    "member.unknown": "总部没有这位会员",
    "card.frozen": "此卡已在总部冻结（{reason}）",
    "card.retired": "此卡已在总部停用（{reason}）",
    "hold.points": "积分不够，可用 {available} 积分",
    "redeem.per_member_per_day": "冻结 {points} 积分超过会员每天可兑换的 {cap} 积分",
    "holds.max_per_till": "本机已有 {count} 笔冻结未结，达到上限",
    "holds.max_points_per_till": "本机已冻结 {held} 积分，再冻结 {points} 积分超过上限 {cap}",
    "holds.max_per_member": "该会员已有 {count} 笔冻结未结，达到上限",
    "holds.max_per_till_member_per_hour": "本机过去一小时已为该会员申请 {count} 笔冻结，达到上限",
    "hold.other_till": "冻结编号属于另一台收银机",
    "hold.other_request": "冻结编号已用于另一位会员或另一积分数",
    "hold.settled": lambda v: f"该冻结已{_HQ_STATES_ZH[str(v['state'])]}",
    "hold.unknown": "总部没有这笔冻结",
    "hold.posted": "该冻结已由其销售入账",
    "hold.post": "冻结由销售记录入账，不能单独请求",
    "hq.database": "总部数据库出错（详情见日志）",
    "request.malformed": "总部看不懂本机的请求（详情见日志）",
}


def hq_zh(values: Mapping[str, object]) -> str:
    """HQ's refusal in Chinese, by the ``code`` HQ sent and its values; KeyError where HQ sent
    no code (an HQ before codes), a code not known here (a newer HQ's) or not the values its
    words need: the till then shows HQ's English sentence."""
    words = HQ_ZH[str(values["code"])]
    return words.format(**values) if isinstance(words, str) else words(values)


# Refusals' words from their values: by ``why`` where given, else by the rule that said no.
DETAILS_ZH: dict[str, str | Words] = {
    # --- redemption and refunds (the engine's) -------------------------------------------
    "balance": "兑换 {points} 积分，积分余额 {balance}",
    "redeem.min_points": "兑换 {points} 积分，最少 {least} 积分",
    "redeem.step_points": "兑换 {points} 积分，须为 {step} 的整数倍",
    "redeem.max_percent_of_sale": lambda v: (
        f"{v['points']} 积分抵 {_yuan(v['fen'])} 元，本单最多抵应付 {_yuan(v['due_fen'])} 元的 "
        f"{v['percent']}%，即 {_yuan(v['cap_fen'])} 元"),
    "redeem.per_member_per_day": (
        "兑换 {points} 积分，每人每天最多 {limit} 积分，今天还可兑换 {left} 积分"),
    "redeem.offline_allowance": (
        "兑换 {points} 积分，离线每天最多 {limit} 积分，今天还可兑换 {left} 积分"),
    "redeem.goods": "商品编码 {sku}",
    "redeem.goods.per_sale_limit": (
        "{sku} 兑换 {qty} 件，每单最多 {limit} 件"),
    "redeem.goods.per_member_limit": (
        "{sku} 已兑换 {before} 件，再兑换 {qty} 件超过每位会员 {limit} 件"),
    "refund": "销售单 {sale}",
    "refund.lines.sku": "商品 {sku}，销售单 {sale}",
    "refund.lines.qty": (
        "{sku} 要退 {units} 件，销售单 {sale} 还可退 {left} 件"),
    "redeem": lambda v: (
        f"兑换 {v['points']} 积分，现在最多可兑换 {v['most']} 积分" if "points" in v
        else f"本单没有可兑换的积分（积分余额 {v['balance']}）"),
    "redeem.points.whole": "兑换积分须为整数，不是 {points}",
    "redeem.points.negative": "兑换积分不能为负数（{points}）",
    "exchange.qty": "兑换数量 {qty} 须为 1 或以上的整数",
    "refund.lines.units": "退 {sku}：{units} 不是整数件数",
    "refund.sale": "本机没有销售单 {sale}",
    "refund.id": "退货单 {refund} 已经记录",
    # --- signing in ------------------------------------------------------------------------
    "sign_in.number": "本机没有工号 {number}，请输入工号后按确认",
    "sign_in.number.unlock": "本机没有工号 {number}",
    "sign_in.pin": "请重新输入密码后按确认（还可试 {left} 次）",
    "sign_in.lockout": (
        "工号 {number} 连续 {failures} 次密码错误，锁定到 {until}：请等待，或请店长解锁（撤销键）"),
    "sign_in.lockout.unlock": "工号 {number} 没有被锁定：请输入密码后按确认",
    # --- cards and members -------------------------------------------------------------------
    "card.unknown": lambda v: f"{_card(v)}不属于任何会员",
    "card.member": lambda v: f"{_card(v)}已经是会员",
    "phone.unknown": "没有会员的手机号尾号是 {phone4}",
    "phone.taken": "尾号 {phone4} 的手机号已登记给另一位会员",
    "register.name": "会员姓名最多 {most} 个字",
    "register.birthday": "生日 {birthday} 不是过去的日期",
    "import.tier": "总部的等级 {tier} 不是现行规则中的等级",
    "consent.channel": "收银机没有关怀渠道 {channel}",
    # --- the sale and the keyed numbers ------------------------------------------------------
    "keyed.missing": lambda v: f"请先输入{_keyed(v['what'])}",
    "keyed.two_points": "{text} 不是金额：有两个小数点",
    "keyed.decimals": "{text} 超过两位小数（分）",
    "keyed.zero": lambda v: f"{_keyed(v['what'])}须大于 0.00",
    "keyed.over": "{text} 元超过上限 {most} 元",
    "keyed.whole": lambda v: f"{_keyed(v['what'])}须为整数，不是 {v['text']}",
    "keyed.range": lambda v: (
        f"{_keyed(v['what'])} {v['value']} 不在 {v['low']} 到 {v['high']} 之间"),
    "sale.lines.most": "一笔销售最多 {most} 行",
    "sale.lines": "这笔销售有 {count} 行，最多 {most} 行",
    "sale.lines.sku": "第 {line} 行没有商品编码",
    "sale.lines.qty": (
        "第 {line} 行（{sku}）：数量 {qty} 不是 1 到 {most} 的整数"),
    "sale.lines.price_fen": (
        "第 {line} 行（{sku}）：价格 {fen} 分不是 0 到 {most} 的整数"),
    "sale.id": "销售单 {sale} 已经记录",
    "exchange.id": "兑换单 {exchange} 已经记录",
    "report.z": "营业日 {day}",
    # --- a manager's adjustment --------------------------------------------------------------
    "adjust.points.whole": "调整积分须为非零整数，不是 {points}",
    "adjust.points.over": "调整 {points} 积分超过上限 {most}",
    "adjust.points.overdraw": "调整 {points} 积分会透支余额（{balance}）",
    # --- HQ's refusals ---------------------------------------------------------------------
    "hq.hold": lambda v: f"积分冻结：{hq_zh(v)}",
    "scan.check_digit": "{symbology} 条码校验位不对",
    "scan.not_valid": "不是有效的 {symbology} 条码",
}


def detail_zh(detail: str, rule: str, values: Mapping[str, object]) -> str:
    """The refusal's facts in Chinese where its words and values are known, else ``detail``."""
    why = str(values.get("why", rule))
    if why in FIXED_ZH and "why" in values:
        return FIXED_ZH[why]
    words = DETAILS_ZH.get(why)
    if words is None or not values:
        return detail
    try:
        return words.format(**values) if isinstance(words, str) else words(values)
    except KeyError:  # a value the words need was not given, or HQ said something else
        return detail
