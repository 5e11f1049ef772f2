"""Contacts: the normalized email that identifies one, and the single-contact operations.

A contact's email is its identity: imports upsert on it, the suppression list matches on it and
sends go to it. `normalize_email` is the one place that decides what "the same address" means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaigns.errors import InputError

MAX_EMAIL = 254  # RFC 5321 path limit minus the angle brackets
MAX_LOCAL = 64
# RFC 5322 dot-atom characters; non-ASCII letters are allowed too (RFC 6531, SMTPUTF8).
_LOCAL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+)*$"
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")

CONSENT_VALUES: Mapping[str, bool] = {
    "true": True, "yes": True, "y": True, "1": True, "t": True, "on": True, "opt-in": True,
    "false": False, "no": False, "n": False, "0": False, "f": False, "off": False, "opt-out": False,
}  # fmt: skip


def normalize_email(raw: str) -> str:
    """Strip and lower-case the whole address, then check its shape.

    The whole address is lower-cased, not only the domain: RFC 5321 lets a server treat local parts
    case-sensitively, but no mainstream mailbox provider does, and two contacts differing only in
    case are a duplicate far more often than two people. Internationalized domains are stored in
    their ASCII (IDNA) form so the same domain always compares equal.
    """
    if not isinstance(raw, str):
        raise InputError(f"an email address must be text, not {type(raw).__name__}", where="email")
    email = raw.strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    if not email:
        raise InputError("the email address is empty", where="email")
    if len(email) > MAX_EMAIL:
        raise InputError(f"the email address is longer than {MAX_EMAIL} characters", where="email")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InputError(f"not an email address (needs local@domain): {raw!r}", where="email")
    if len(local) > MAX_LOCAL:
        raise InputError(f"the part before @ is longer than {MAX_LOCAL} characters: {raw!r}", where="email")
    if not _LOCAL.match(local):
        raise InputError(f"not an email address (bad characters before @): {raw!r}", where="email")
    domain = domain.lower().rstrip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InputError(f"not an email address (bad domain): {raw!r}", where="email") from None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        raise InputError(f"not an email address (bad domain {domain!r}): {raw!r}", where="email")
    return f"{local.lower()}@{domain}"


def parse_timezone(raw: str) -> str:
    """An IANA zone name ("Europe/London"); empty means UTC."""
    name = raw.strip()
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {raw!r} (use an IANA name like Europe/London)", where="timezone"
        ) from None
    return name


def parse_consent(raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    value = CONSENT_VALUES.get(str(raw).strip().lower())
    if value is None:
        raise InputError(f"consent must be yes/no, true/false or 1/0, not {raw!r}", where="consent")
    return value
