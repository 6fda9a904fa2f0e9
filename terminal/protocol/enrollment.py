"""The enrollment exchange: a new box's request under the shared claim identity, HQ's answer.

The box sends, on ``Topics.enroll_request()`` with an MQTT 5 response topic
``Topics.enroll_response(nonce)``::

    {"v": 1, "store": "S001", "terminal": "T03", "code": "ABCD-EFGH-JKLM", "csr": "-----BEGIN ..."}

HQ answers ``{"v": 1, "ok": true, "certificate": "<leaf + issuing CA, PEM>"}`` or
``{"v": 1, "ok": false, "reason": "code_used", "detail": "..."}``. The box shows a refusal in its
own words (``REFUSALS``, Chinese first), so HQ sends only the reason and an English detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSION = 1

# reason -> (zh-CN, en): what the status page and the pole display show.
REFUSALS: dict[str, tuple[str, str]] = {
    "code_unknown": ("登记码无效，请向总部索取新码",
                     "enrollment code not recognised: ask HQ for a new one"),
    "code_used": ("登记码已被使用，请向总部索取新码",
                  "enrollment code already used: ask HQ for a new one"),
    "code_expired": ("登记码已过期，请向总部索取新码",
                     "enrollment code expired: ask HQ for a new one"),
    "wrong_terminal": ("登记码属于另一台终端，请核对门店和终端号",
                       "enrollment code is for another terminal: check store and terminal"),
    "cn_mismatch": ("证书请求与门店/终端号不符",
                    "the certificate request does not name this terminal"),
    "bad_request": ("登记请求无效", "the enrollment request is malformed"),
    "hq_error": ("总部暂时无法登记，请稍后重启", "HQ could not enroll now: restart later"),
}


# reason -> (zh-CN, en) short enough for a 20-column pole display.
POLE: dict[str, tuple[str, str]] = {
    "code_unknown": ("登记码无效", "CODE NOT VALID"),
    "code_used": ("登记码已使用", "CODE ALREADY USED"),
    "code_expired": ("登记码已过期", "CODE EXPIRED"),
    "wrong_terminal": ("登记码非本机", "CODE FOR OTHER TILL"),
    "cn_mismatch": ("证书请求不符", "REQUEST MISMATCH"),
    "bad_request": ("登记请求无效", "BAD REQUEST"),
    "hq_error": ("总部未应答", "HQ DID NOT ANSWER"),
}


class EnrollmentMessageError(ValueError):
    """A request or answer that does not have the shape above."""


@dataclass(frozen=True)
class EnrollRequest:
    store: str
    terminal: str
    code: str
    csr: str

    def to_json(self) -> bytes:
        return json.dumps({"v": VERSION, "store": self.store, "terminal": self.terminal,
                           "code": self.code, "csr": self.csr}).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> EnrollRequest:
        data = _object(payload)
        fields = {key: data.get(key) for key in ("store", "terminal", "code", "csr")}
        if not all(isinstance(value, str) and value for value in fields.values()):
            raise EnrollmentMessageError("store, terminal, code and csr must be non-empty strings")
        return cls(**fields)


@dataclass(frozen=True)
class EnrollAnswer:
    ok: bool
    certificate: str = ""
    reason: str = ""
    detail: str = ""

    @classmethod
    def granted(cls, certificate: str) -> EnrollAnswer:
        return cls(True, certificate=certificate)

    @classmethod
    def refused(cls, reason: str, detail: str) -> EnrollAnswer:
        if reason not in REFUSALS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        return cls(False, reason=reason, detail=detail)

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"v": VERSION, "ok": self.ok}
        body.update({"certificate": self.certificate} if self.ok
                    else {"reason": self.reason, "detail": self.detail})
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> EnrollAnswer:
        data = _object(payload)
        if data.get("ok") is True and isinstance(data.get("certificate"), str):
            return cls.granted(data["certificate"])
        if data.get("ok") is False and data.get("reason") in REFUSALS:
            return cls.refused(data["reason"], str(data.get("detail", "")))
        raise EnrollmentMessageError("an answer is ok with a certificate, or a known reason")

    def words(self) -> tuple[str, str]:
        """The refusal in Chinese and English, for the status page and the pole display."""
        return REFUSALS[self.reason]


def _object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise EnrollmentMessageError("not JSON") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise EnrollmentMessageError(f"not a version {VERSION} enrollment message")
    return data
