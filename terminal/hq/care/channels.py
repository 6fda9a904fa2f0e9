"""The channels a message leaves by: an SMS gateway over HTTP, and email over SMTP.

Each ``send(message_id, address, subject, text)`` returns when the gateway or the server took the
message, or raises :class:`ChannelError`, transient (try again later: a timeout, a refused
connection, HTTP 408/429/5xx, SMTP 4xx) or not (HTTP 4xx, SMTP 5xx). The message id travels with
the message (``Idempotency-Key`` to the gateway, ``Message-ID`` in the email), so a message sent
again after a crash is the same message to whoever receives it. Neither logs an address or a text.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from terminal.hq.care.config import EmailSection, SmsSection

MESSAGE_ID_DOMAIN = "care.posterm"


class ChannelError(Exception):
    def __init__(self, code: str, transient: bool) -> None:
        super().__init__(code)
        self.code, self.transient = code, transient


class Channel(Protocol):
    def send(self, message_id: str, address: str, subject: str, text: str) -> None: ...


class SmsGateway:
    """POST ``{"id", "to", "text"}`` as JSON to the gateway's URL, with the message id as the
    ``Idempotency-Key`` header and the key as a bearer token."""

    def __init__(self, section: SmsSection) -> None:
        if not section.url.startswith(("http://", "https://")):
            raise ValueError("[sms] url: an http:// or https:// URL is needed to send SMS")
        self.section = section

    def send(self, message_id: str, address: str, subject: str, text: str) -> None:
        body = json.dumps({"id": message_id, "to": address, "text": text},
                          ensure_ascii=False).encode()
        request = urllib.request.Request(self.section.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": message_id,
            "Authorization": f"Bearer {self.section.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=self.section.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ChannelError(f"http_{exc.code}",
                               exc.code in (408, 429) or exc.code >= 500) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ChannelError(f"unreachable:{type(exc).__name__}", True) from None

    def replies(self, after: str) -> tuple[list[Reply], str]:
        """Members' replies after the cursor ``after`` and the next cursor (none read when no
        ``replies_url`` is configured)."""
        if not self.section.replies_url:
            return [], after
        return read_replies(self.section, after)


@dataclass(frozen=True)
class Reply:
    """A member's text back to the gateway: the gateway's id for it (the cursor to read after),
    the number it came from, its text and when (µs)."""

    id: str
    phone: str
    text: str
    at_us: int


def read_replies(section: SmsSection, after: str) -> tuple[list[Reply], str]:
    """GET ``replies_url?after=CURSOR`` (bearer key): ``{"replies": [{"id", "from", "text",
    "at_us"}], "next": CURSOR}``, the replies after the cursor ("" from the first) in the order
    received, and the cursor to read after them; a reply of another form is refused, whole."""
    request = urllib.request.Request(
        f"{section.replies_url}?{urllib.parse.urlencode({'after': after})}",
        headers={"Authorization": f"Bearer {section.api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=section.timeout) as response:
            data = json.loads(response.read())
        replies = [Reply(str(row["id"]), str(row["from"]), str(row["text"]), int(row["at_us"]))
                   for row in data["replies"]]
        return replies, str(data.get("next") or (replies[-1].id if replies else after))
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ChannelError(f"http_{exc.code}", True) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ChannelError(f"unreachable:{type(exc).__name__}", True) from None
    except (ValueError, KeyError, TypeError):
        raise ChannelError("bad_replies", True) from None


class SmtpMail:
    """One SMTP session per message (stdlib smtplib), STARTTLS and login when configured."""

    def __init__(self, section: EmailSection) -> None:
        if not section.host:
            raise ValueError("[email] host: an SMTP server is needed to send email")
        self.section = section

    def send(self, message_id: str, address: str, subject: str, text: str) -> None:
        section = self.section
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = section.sender, address, subject
        mail["Message-ID"] = f"<{message_id}@{MESSAGE_ID_DOMAIN}>"
        mail["Date"] = formatdate(localtime=False)
        mail.set_content(text)
        try:
            with smtplib.SMTP(section.host, section.port, timeout=section.timeout) as smtp:
                if section.starttls:
                    smtp.starttls()
                if section.username:
                    smtp.login(section.username, section.password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise ChannelError("smtp_recipient_refused", False) from None
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"smtp_{exc.smtp_code}", exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"unreachable:{type(exc).__name__}", True) from None
