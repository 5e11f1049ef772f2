"""One email as bytes on the wire: tracked links, open pixel, unsubscribe headers, MIME.

The MIME is assembled directly (headers encoded with the standard library, bodies quoted-printable
via binascii) because `email.message` costs about 1 ms per message, which alone would cap a worker
near 1,000 emails/s. Tests parse every message back with the standard library's parser.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import html as html_lib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.sending import headers as hdr
from campaigns.sending.dkim import DkimSigner

HREF = re.compile(r"""(href\s*=\s*)(["'])(https?://[^"'\s]+)\2""", re.IGNORECASE)
_ANCHOR = re.compile(
    r"""<a\b[^>]*?\bhref\s*=\s*(["'])(https?://[^"'\s]+)\1[^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL
)
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|table)>|<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")
_BLANKS = re.compile(r"\n\s*\n+")


@dataclass(frozen=True)
class OutgoingMessage:
    send_id: int
    sender: str
    recipient: str
    message_id: str
    data: bytes


def links_in(html: str) -> set[str]:
    return {m.group(3) for m in HREF.finditer(html)}


def _anchor_text(match: re.Match[str]) -> str:
    url = match.group(2)
    label = _TAGS.sub("", match.group(3)).strip()
    return f"{label} ({url})" if label and label != url else url


def html_to_text(html: str) -> str:
    """The plain-text part: every link kept as its (already tracked) URL after the link's words."""
    text = _ANCHOR.sub(_anchor_text, html)
    text = _BLOCK_END.sub("\n", text)
    text = _TAGS.sub("", text)
    text = html_lib.unescape(text)
    text = _SPACES.sub(" ", text)
    return _BLANKS.sub("\n\n", text).strip() + "\n"


def _qp(text: str) -> bytes:
    body = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return body.replace(b"\n", b"\r\n")


_PART_HEAD = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'


class MessageBuilder:
    """Built once per batch for one campaign; `build` is called per contact on the send path."""

    def __init__(
        self,
        *,
        signer: TokenSigner,
        base_url: str,
        campaign_id: int,
        from_email: str,
        from_name: str,
        link_ids: dict[str, int],
        message_id_key: str,
        dkim: DkimSigner | None = None,
        return_path: Callable[[int], str] | None = None,
        web_version: Callable[[int], str] | None = None,
        unsubscribe_mailto: Callable[[int], str] | None = None,
    ) -> None:
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self.tracking_prefix = f"{self.base_url}/t/"
        self.campaign_id = campaign_id
        self.from_email = from_email
        self.from_header = hdr.address(from_name, from_email)
        self.domain = from_email.rpartition("@")[2] or "mailramp.local"
        self.link_ids = link_ids
        self._mid_key = message_id_key.encode()
        self.dkim = dkim
        # the envelope sender per send: a VERP address that names the send, so a bounce finds it
        self.return_path = return_path
        # the signed "view in browser" URL per send (campaigns.sending.webview)
        self.web_version = web_version
        # the mailto: half of List-Unsubscribe per send (campaigns.sending.unsubscribe_mail)
        self.unsubscribe_mailto = unsubscribe_mailto

    def message_id(self, contact_id: int) -> str:
        """Deterministic: a retried send of the same (campaign, contact) carries the same Message-ID."""
        digest = hmac.new(self._mid_key, f"{self.campaign_id}:{contact_id}".encode(), hashlib.sha256)
        return f"<mr.{self.campaign_id}.{contact_id}.{digest.hexdigest()[:16]}@{self.domain}>"

    def url(self, path: str, ref: TrackingRef) -> str:
        return f"{self.base_url}/t/{path}/{self.signer.sign(ref)}"

    def unsubscribe_url(self, send_id: int) -> str:
        return f"{self.tracking_prefix}u/{self.signer.sign_parts('unsubscribe', send_id)}"

    def is_tracking_url(self, url: str) -> bool:
        """One of our own /t/ links (unsubscribe, web version...): never wrapped nor registered."""
        return url.startswith(self.tracking_prefix)

    def track_links(self, html: str, send_id: int, item_by_url: dict[str, int]) -> str:
        prefix, sign, link_ids = f"{self.tracking_prefix}c/", self.signer.sign_parts, self.link_ids

        def swap(match: re.Match[str]) -> str:
            url = match.group(3)
            link_id = link_ids.get(url)
            if link_id is None or url.startswith(self.tracking_prefix):
                return match.group(0)
            token = sign("click", send_id, link_id, item_by_url.get(url))
            return f"{match.group(1)}{match.group(2)}{prefix}{token}{match.group(2)}"

        return HREF.sub(swap, html)

    def build(
        self,
        *,
        send_id: int,
        contact_id: int,
        email: str,
        name: str,
        subject: str,
        html: str,
        item_by_url: dict[str, int],
        unsubscribe_url: str | None = None,
        web_version_url: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> OutgoingMessage:
        """`extra_headers`: (name, value) pairs, each through `headers.line`."""
        unsubscribe = unsubscribe_url or self.unsubscribe_url(send_id)
        html = self.track_links(html, send_id, item_by_url)
        web = web_version_url or (self.web_version(send_id) if self.web_version else None)
        if web and web not in html:
            html = _insert_after_body_start(
                html,
                f'<p style="font-size:12px;text-align:center"><a href="{web}">View this email in your browser</a></p>',
            )
        pixel = f'<img src="{self.tracking_prefix}o/{self.signer.sign_parts("open", send_id)}" width="1" height="1" alt="">'
        footer = (
            f'<p style="font-size:12px"><a href="{unsubscribe}">Unsubscribe</a></p>'
            if unsubscribe not in html
            else ""
        )
        html = _insert_before_body_end(html, footer + pixel)
        text = html_to_text(html)
        if unsubscribe not in text:
            text += f"\nUnsubscribe: {unsubscribe}\n"
        message_id = self.message_id(contact_id)
        list_unsubscribe = f"<{unsubscribe}>"
        if self.unsubscribe_mailto is not None:
            list_unsubscribe += f", <mailto:{self.unsubscribe_mailto(send_id)}?subject=unsubscribe>"
        lines = [
            f"From: {self.from_header}",
            f"To: {hdr.address(name, email)}",
            f"Subject: {hdr.text(subject)}",
            f"Date: {_date_now()}",
            f"Message-ID: {message_id}",
            f"List-Unsubscribe: {list_unsubscribe}",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            f"X-Mailramp-Campaign: {self.campaign_id}",
            *(hdr.line(k, v) for k, v in extra_headers),
        ]
        boundary = f"=_mr{send_id}_{message_id[4:20]}"
        data = _assemble(lines, [("plain", text), ("html", html)], boundary)
        if self.dkim is not None:
            data = self.dkim.sign(data)
        sender = self.return_path(send_id) if self.return_path else self.from_email
        return OutgoingMessage(send_id, sender, email, message_id, data)

    def build_notice(
        self,
        *,
        email: str,
        name: str,
        subject: str,
        text: str,
        message_id_seed: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> OutgoingMessage:
        """A transactional message (a signup's confirmation): plain text, `Auto-Submitted`, no
        tracking and no List-Unsubscribe (the person has not subscribed), but the same From, Date,
        Message-ID at the sending domain, header door, CRLF and DKIM as a campaign's."""
        digest = hmac.new(self._mid_key, message_id_seed.encode(), hashlib.sha256).hexdigest()[:24]
        message_id = f"<mr.n.{digest}@{self.domain}>"
        lines = [
            f"From: {self.from_header}",
            f"To: {hdr.address(name, email)}",
            f"Subject: {hdr.text(subject)}",
            f"Date: {_date_now()}",
            f"Message-ID: {message_id}",
            "Auto-Submitted: auto-generated",
            *(hdr.line(k, v) for k, v in extra_headers),
        ]
        data = _assemble(lines, [("plain", text)], "")
        if self.dkim is not None:
            data = self.dkim.sign(data)
        return OutgoingMessage(0, self.from_email, email, message_id, data)


def _assemble(lines: list[str], parts: list[tuple[str, str]], boundary: str) -> bytes:
    """Headers and quoted-printable parts, CRLF throughout; one part is sent bare, several as
    multipart/alternative."""
    head = "\r\n".join([*lines, "MIME-Version: 1.0"])
    if len(parts) == 1:
        kind, body = parts[0]
        return head.encode("ascii") + b"\r\n" + _PART_HEAD.format(kind).encode() + _qp(body)
    sep = f"--{boundary}\r\n".encode()
    chunks = [
        head.encode("ascii"),
        f'\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
    ]
    for kind, body in parts:
        chunks += [sep, _PART_HEAD.format(kind).encode(), _qp(body), b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def _insert_before_body_end(html: str, snippet: str) -> str:
    """Inside the body: before `</body>`, else before `</html>`, else at the end."""
    lower = html.lower()
    index = lower.rfind("</body")
    if index < 0:
        index = lower.rfind("</html")
    if index < 0:
        return html + snippet
    return html[:index] + snippet + html[index:]


_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def _insert_after_body_start(html: str, snippet: str) -> str:
    match = _BODY_START.search(html)
    if match is None:
        return snippet + html
    return html[: match.end()] + snippet + html[match.end() :]


_date_cache: tuple[int, str] = (0, "")


def _date_now() -> str:
    """The Date header, formatted once a second rather than once a message."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, localtime=False, usegmt=True))
    return _date_cache[1]
